import type { ErrorCode } from './protocol/index.js';

export type { ErrorCode } from './protocol/index.js';

/**
 * An error a client is told about: a stable `code` and a human message.
 *
 * @example
 * throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${name}`);
 */
export class RowcastError extends Error {
  override readonly name = 'RowcastError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * A condition that stops the server from starting (bad configuration, a
 * database without logical replication, ...). The message says what to change.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}
