/**
 * The error codes of the /live protocol (DESIGN.md §3). Every error a client
 * can see carries one of these; tests assert on the code, never the message.
 */
export type ErrorCode =
  | 'INVALID_MESSAGE'
  | 'UNKNOWN_METHOD'
  | 'INVALID_ATTRIBUTES'
  | 'TOPIC_NOT_FOUND'
  | 'FORBIDDEN'
  | 'TOPIC_EXISTS'
  | 'READ_ONLY_TOPIC'
  | 'TOPIC_FULL'
  | 'LIMIT_EXCEEDED'
  | 'RATE_LIMIT_EXCEEDED'
  | 'TOKEN_INVALID'
  | 'INTERNAL';

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
