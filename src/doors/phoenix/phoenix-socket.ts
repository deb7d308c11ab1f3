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

/** What a door on Phoenix's framing does with a channel's messages (see {@link runChannelMessage}). */
export interface ChannelHandlers<C extends { readonly joinRef: string | null }> {
  /** The door's joined channels, by topic. */
  readonly channels: ReadonlyMap<string, C>;
  join(message: PhoenixMessage): Promise<void> | undefined;
  /** Ends a joined channel (its subscriptions); the reply and `phx_close` are sent here. */
  leave(channel: C): void;
  push(channel: C, message: PhoenixMessage): Promise<void> | undefined;
}

/**
 * Runs one message as Phoenix's own socket does (docs/phoenix.md, "Protocol
 * rules"): `phx_join`, `phx_leave` (answered ok, then `phx_close`, also on a
 * topic not joined), and pushes on joined topics; a push with a stale
 * `join_ref` is ignored, one on a topic not joined is `unmatched topic`. A
 * binary payload is refused, and a failure becomes the error reply. Returns
 * a promise while the answer is pending (the connection's queue waits).
 */
export function runChannelMessage<C extends { readonly joinRef: string | null }>(ws: Socket, message: PhoenixMessage, handlers: ChannelHandlers<C>, logger: Logger): Promise<void> | undefined {
  const channel = handlers.channels.get(message.topic);
  const run = (): Promise<void> | undefined => {
    if (message.payload instanceof Uint8Array) throw new RowcastError('INVALID_MESSAGE', 'a binary payload is not accepted here: send JSON');
    switch (message.event) {
      case 'phx_join':
        return handlers.join(message);
      case 'phx_leave':
        if (channel) handlers.leave(channel);
        reply(ws, message, 'ok', {});
        if (channel) closed(ws, message.topic, channel);
        return undefined;
      default:
        if (!channel) return reply(ws, message, 'error', { reason: 'unmatched topic' });
        if (message.joinRef !== null && message.joinRef !== channel.joinRef) return undefined; // stale: Phoenix ignores it
        return handlers.push(channel, message);
    }
  };
  try {
    return run()?.catch((error: unknown) => fail(ws, message, error, logger));
  } catch (error) {
    fail(ws, message, error, logger);
    return undefined;
  }
}

/** `phx_close` of a channel's join on `topic`. */
export function closed(ws: Socket, topic: string, channel: { readonly joinRef: string | null }): void {
  push(ws, { joinRef: channel.joinRef, ref: channel.joinRef, topic, event: 'phx_close', payload: {} });
}
