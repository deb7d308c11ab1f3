/**
 * The error codes of the /live protocol and the HTTP routes (README, "Error
 * codes"). Every error a client can see carries one of these; tests assert on
 * the code, never the message. `NOT_FOUND` answers an HTTP request for no
 * route; `EVENT_DROPPED` tells admins of a table topic that a change could
 * not be serialized and was not delivered.
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
  | 'NOT_FOUND'
  | 'EVENT_DROPPED'
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
