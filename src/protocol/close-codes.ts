/**
 * The WebSocket close codes rowcast uses, and what a client should do on
 * each. Any other code (1006: the connection broke) means: reconnect and
 * resume with `since`.
 */
export const CLOSE_CODES = {
  /** The server is shutting down: reconnect (to another node) and resume with `since`. */
  SHUTTING_DOWN: 1001,
  /** Kept flooding while rate limited, or closed by an admin. */
  POLICY_VIOLATION: 1008,
  /** A frame over `MAX_MESSAGE_BYTES`. */
  MESSAGE_TOO_BIG: 1009,
  /** Cluster mode: this node missed part of the cluster stream; reconnect and resume with `since` (expect `resumed: false`). */
  STREAM_GAP: 1012,
  /** Slow consumer: the send buffer passed its limit; reconnect and resume with `since`. */
  SLOW_CONSUMER: 1013,
  /** The token expired (or, with `AUTH_FIRST_FRAME`, the `auth` frame was wrong, late or not first): reconnect with a new one (or send `refresh-token` before `exp`). */
  TOKEN_EXPIRED: 4001,
} as const;

/** One of the values of {@link CLOSE_CODES}. */
export type CloseCode = (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES];
