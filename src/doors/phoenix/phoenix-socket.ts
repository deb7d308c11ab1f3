import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import { RowcastError } from '../../errors.js';
import { admitFrame, type DoorConnection, type FrameLimits } from '../door-socket.js';
import { encodeMessage, type Decoded, type PhoenixMessage, type Vsn } from './phoenix-wire.js';

/*
 * What every door on Phoenix's framing (Phoenix Channels, Supabase Realtime)
 * does alike with its socket: send a message, answer one, turn a failure into
 * the error reply, and take a frame in (heartbeats at once, the rest in order).
 */

/** The state of a socket on Phoenix's framing. */
export interface PhoenixFramed extends DoorConnection<PhoenixMessage> {
  readonly vsn: Vsn;
}

type Socket = WebSocket<PhoenixFramed>;

/** Sends one message (corked: it may run after an await; skipped on a closed socket). */
export function push(ws: Socket, message: PhoenixMessage): void {
  const conn = ws.getUserData();
  if (conn.closed) return;
  const text = encodeMessage(conn.vsn, message);
  ws.cork(() => ws.send(text, false));
}

/** `phx_reply` to `message`. */
export function reply(ws: Socket, message: PhoenixMessage, status: 'ok' | 'error', response: unknown): undefined {
  push(ws, { joinRef: message.joinRef, ref: message.ref, topic: message.topic, event: 'phx_reply', payload: { status, response } });
  return undefined;
}

/** A failure as Phoenix's error reply: `{"reason": "<CODE>: <message>"}`; anything but a RowcastError is INTERNAL with a correlation id. */
export function fail(ws: Socket, message: PhoenixMessage, error: unknown, logger: Logger): void {
  let reason: string;
  if (error instanceof RowcastError) reason = `${error.code}: ${error.message}`;
  else {
    const correlationId = randomUUID();
    logger.error({ err: error, correlationId, connection: ws.getUserData().id, event: message.event }, 'request failed');
    reason = `INTERNAL: internal error (correlation id ${correlationId})`;
  }
  reply(ws, message, 'error', { reason });
}

/** A handler's unexpected failure, as a `phx_error` on the `phoenix` topic (for door-socket's `guard`). */
export function internalError(ws: Socket): (message: string) => void {
  return (message) => push(ws, { joinRef: null, ref: null, topic: 'phoenix', event: 'phx_error', payload: { reason: `INTERNAL: ${message}` } });
}

/** How a door reads its frames and what limits them. */
export interface FrameIntake {
  readonly frames: FrameLimits;
  readonly rateLimitPerSecond: number;
  readonly decode: (vsn: Vsn, data: ArrayBuffer, isBinary: boolean) => Decoded;
  readonly logger: Logger;
}

/**
 * One frame in: size and rate checks, decoding (a frame that is no message
 * is answered on `phoenix` with `INVALID_MESSAGE`), a heartbeat answered at
 * once, anything else into the connection's queue (answered with
 * `RATE_LIMIT_EXCEEDED` past the rate, or the queue's refusal past its bound).
 */
export function receiveFrame(ws: Socket, intake: FrameIntake, data: ArrayBuffer, isBinary: boolean): void {
  const conn = ws.getUserData();
  const retryAfter = admitFrame(ws, conn, intake.frames, data.byteLength);
  if (retryAfter === null) return;
  const decoded = intake.decode(conn.vsn, data, isBinary);
  if (!decoded.ok) {
    push(ws, { joinRef: null, ref: null, topic: 'phoenix', event: 'phx_reply', payload: { status: 'error', response: { reason: `INVALID_MESSAGE: ${decoded.reason}` } } });
    return;
  }
  const { message } = decoded;
  if (retryAfter > 0) {
    fail(ws, message, new RowcastError('RATE_LIMIT_EXCEEDED', `over ${intake.rateLimitPerSecond} messages per second: retry after ${retryAfter} ms`), intake.logger);
    return;
  }
  if (message.topic === 'phoenix' && message.event === 'heartbeat') {
    push(ws, { joinRef: null, ref: message.ref, topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} } });
    return;
  }
  try {
    conn.queue!.push(message, data.byteLength);
  } catch (error) {
    fail(ws, message, error, intake.logger);
  }
}
