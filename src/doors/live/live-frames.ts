import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import { RowcastError } from '../../errors.js';
import type { ErrorBody, Method, RequestId, ResponseData, ServerFrame } from '../../protocol/index.js';
import type { RequestHead } from '../../protocol/parse-client-frame.js';
import type { LiveConnection } from './live-connection.js';

/** Sends one frame (the caller corks when it is outside a uWS handler). */
export function send(ws: WebSocket<LiveConnection>, frame: ServerFrame): void {
  ws.send(JSON.stringify(frame), false);
}

/** The successful `response` frame of a request, echoing its `id`. */
export function okFrame<M extends Method>(request: { readonly id: RequestId | undefined; readonly method: M }, data: ResponseData[M]): ServerFrame {
  return (request.id === undefined ? { type: 'response', method: request.method, ok: true, data } : { type: 'response', id: request.id, method: request.method, ok: true, data }) as ServerFrame;
}

/**
 * The frame that refuses a frame: a `response` with its id (and method)
 * when it was a request, else an `error` frame.
 */
export function refusalFrame(head: RequestHead | null, error: ErrorBody): ServerFrame {
  if (!head) return { type: 'error', error };
  const frame: ServerFrame = { type: 'response', ...(head.id !== undefined ? { id: head.id } : {}), ...(head.method !== undefined ? { method: head.method } : {}), ok: false, error };
  return frame;
}

/**
 * The one way a failure reaches a `/live` client: a {@link RowcastError} as
 * its code and message, anything else as `INTERNAL` with a correlation id
 * that the error log line carries too. Nothing is sent on a closed socket.
 */
export function answerFailure(ws: WebSocket<LiveConnection>, head: RequestHead | null, error: unknown, logger: Logger): void {
  const conn = ws.getUserData();
  let body: ErrorBody;
  if (error instanceof RowcastError) body = { code: error.code, message: error.message };
  else {
    const correlationId = randomUUID();
    logger.error({ err: error, correlationId, connection: conn.id, method: head?.method }, 'request failed');
    body = { code: 'INTERNAL', message: `internal error (correlation id ${correlationId})` };
  }
  if (conn.closed) return;
  ws.cork(() => send(ws, refusalFrame(head, body)));
}
