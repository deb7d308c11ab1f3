import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import type { SnapshotSink } from '../../core/session-types.js';
import type { Session } from '../../core/session.js';
import { isSessionMethod, runSessionMethod, type SessionMethod } from '../../core/session-methods.js';
import type { ClientRequest, RequestOf, ResponseData } from '../../protocol/index.js';
import type { LiveConnection } from './live-connection.js';
import { RowcastError } from '../../errors.js';
import { liveEncoder, namedEncoder } from './live-encoder.js';
import { answerFailure, okFrame, send } from './live-frames.js';

/**
 * Runs one `/live` request for `session` and answers it. Returns the
 * promise of the answer when it is asynchronous (the connection's queue
 * waits for it before running the next request).
 */
export function runLiveRequest(ws: WebSocket<LiveConnection>, session: Session, request: ClientRequest, logger: Logger): Promise<void> | undefined {
  const conn = ws.getUserData();
  try {
    switch (request.method) {
      case 'ping':
        ws.cork(() => send(ws, { type: 'pong', ...(request.id !== undefined ? { id: request.id } : {}) }));
        return undefined;
      case 'subscribe':
        return subscribe(ws, session, request).catch((error: unknown) => answerFailure(ws, request, error, logger));
      case 'unsubscribe': {
        const removed = splitNames(request.attributes.topicName).filter((name) => {
          const key = subscriptionKey(name, request.attributes.as);
          const handle = conn.subscriptions.get(key);
          if (!handle) return false;
          conn.subscriptions.delete(key);
          return session.unsubscribe(handle);
        });
        answer(ws, request, { topics: removed }, logger);
        return undefined;
      }
      default: {
        if (!isSessionMethod(request.method)) return undefined;
        const result = runSessionMethod(session, request as RequestOf<SessionMethod>);
        if (!(result instanceof Promise)) {
          answer(ws, request as RequestOf<SessionMethod>, result, logger);
          return undefined;
        }
        return result.then(
          (data) => answer(ws, request as RequestOf<SessionMethod>, data, logger),
          (error: unknown) => answerFailure(ws, request, error, logger),
        );
      }
    }
  } catch (error) {
    answerFailure(ws, request, error, logger);
    return undefined;
  }
}

/**
 * `subscribe`: the answer and the frames missed since `since` are sent in
 * the step that makes the subscription live, so the first live event
 * follows them with nothing between and nothing twice. Subscribing again to
 * a topic replaces the connection's earlier subscription to it.
 */
function subscribe(ws: WebSocket<LiveConnection>, session: Session, request: RequestOf<'subscribe'>): Promise<void> {
  const conn = ws.getUserData();
  const { filter, events, since, snapshot, aggregate, as } = request.attributes;
  const topics = splitNames(request.attributes.topicName);
  if (as !== undefined && topics.length !== 1) return Promise.reject(new RowcastError('INVALID_ATTRIBUTES', 'as: names a subscription of one table topic'));
  return session.subscribe(
    {
      topics,
      // A named subscription is of one table topic (a custom topic's presence frames carry no name).
      ...(as !== undefined ? { kind: 'table' as const } : {}),
      ...(filter !== undefined ? { filter } : {}),
      ...(events !== undefined ? { events } : {}),
      ...(since !== undefined ? { since } : {}),
      encoder: as === undefined ? liveEncoder : namedEncoder(as),
      replaces: (topic) => conn.subscriptions.get(subscriptionKey(topic, as)),
      ...(snapshot === true ? { snapshot: subscribeSink(ws, request) } : {}),
      ...(aggregate !== undefined ? { aggregate: { spec: aggregate, sink: subscribeSink(ws, request) } } : {}),
    },
    ({ handles, answer: data, replay }) => {
      for (const handle of handles) conn.subscriptions.set(subscriptionKey(handle.topic, as), handle);
      if (conn.closed) return;
      ws.cork(() => {
        if (data !== null) send(ws, okFrame(request, named(data, as)));
        for (const frame of replay) ws.send(frame, false);
        for (const handle of handles) {
          const state = session.presenceSnapshot(handle.topic);
          if (state !== null) ws.send(liveEncoder.encodePresence!(handle.topic, 'state', state), false);
        }
      });
    },
  );
}

/** Where a snapshot's or an aggregate's answer and frames go: straight to the socket; a failure after the answer is told as a revoked subscription. */
function subscribeSink(ws: WebSocket<LiveConnection>, request: RequestOf<'subscribe'>): SnapshotSink {
  const conn = ws.getUserData();
  return {
    answered: (data) => {
      if (!conn.closed) ws.cork(() => send(ws, okFrame(request, named(data, request.attributes.as))));
    },
    page: (frame) => {
      if (!conn.closed) ws.cork(() => ws.send(frame, false));
    },
    failed: (topic, reason) => {
      const { as } = request.attributes;
      if (!conn.closed) ws.cork(() => send(ws, { type: 'subscription', ...(as !== undefined ? { as } : {}), topic, status: 'revoked', reason }));
    },
  };
}

/**
 * Where a connection keeps a subscription: by topic, and by its name for a
 * named one (`as`), so that one connection may hold several of a topic.
 */
export function subscriptionKey(topic: string, as: string | undefined): string {
  return as === undefined ? topic : `${as}\u0000${topic}`;
}

/** The name (`as`) of the subscription kept under `key`, if it has one. */
export function nameOfKey(key: string): string | undefined {
  const at = key.indexOf('\u0000');
  return at < 0 ? undefined : key.slice(0, at);
}

/** The subscribe answer, with the subscription's name when it has one. */
function named(data: ResponseData['subscribe'], as: string | undefined): ResponseData['subscribe'] {
  return as === undefined ? data : { ...data, as };
}

/** Answers a request with its data (skipped on a closed socket); data that cannot be serialized is answered `INTERNAL`. */
function answer<M extends Exclude<ClientRequest['method'], 'ping'>>(
  ws: WebSocket<LiveConnection>,
  request: { readonly id: ClientRequest['id']; readonly method: M },
  data: ResponseData[M],
  logger: Logger,
): void {
  if (ws.getUserData().closed) return;
  let frame: string;
  try {
    frame = JSON.stringify(okFrame(request, data));
  } catch (error) {
    answerFailure(ws, request, error, logger);
    return;
  }
  ws.cork(() => ws.send(frame, false));
}

/** `"order, document,order"` → `['order', 'document']`. */
function splitNames(list: string): string[] {
  return [...new Set(list.split(',').map((n) => n.trim()).filter((n) => n.length > 0))];
}
