/**
 * Every error code a client can see, on `/live` and over HTTP (docs/protocol.md lists
 * cause and remedy of each). Tests
 * assert on the code, never the message.
 */
export const ERROR_CODES = [
  'INVALID_MESSAGE',
  'UNKNOWN_METHOD',
  'INVALID_ATTRIBUTES',
  'TOPIC_NOT_FOUND',
  'FORBIDDEN',
  'TOPIC_EXISTS',
  'READ_ONLY_TOPIC',
  'TOPIC_FULL',
  'LIMIT_EXCEEDED',
  'RATE_LIMIT_EXCEEDED',
  'TOKEN_INVALID',
  /** `snapshot: true` on a topic that has none (a custom topic: use `history`), or on a door that cannot send one. */
  'SNAPSHOT_UNSUPPORTED',
  /** HTTP: no such route or file. */
  'NOT_FOUND',
  /** An `error` frame to a table topic's admins: a change could not be serialized and reached no one. */
  'EVENT_DROPPED',
  /** A bug or an unavailable dependency; the message carries a correlation id that the server log has too. */
  'INTERNAL',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];
