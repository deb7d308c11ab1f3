import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import { isSessionMethod, runSessionMethod, type SessionMethod } from '../../core/session-methods.js';
import type { SnapshotSink } from '../../core/session-types.js';
import type { Session } from '../../core/session.js';
import { RowcastError } from '../../errors.js';
import type { RequestOf } from '../../protocol/index.js';
import { parseRequest } from '../../protocol/parse-client-frame.js';
import type { Channel, PhoenixConnection } from './phoenix-connection.js';
import { PHOENIX_ENCODERS } from './phoenix-encoder.js';
import { closed, push, reply, runChannelMessage } from './phoenix-socket.js';
import type { PhoenixMessage } from './phoenix-wire.js';

type Socket = WebSocket<PhoenixConnection>;

/** Methods the `rowcast` channel takes as pushes, with `/live`'s attributes. */
const ROWCAST_METHODS: ReadonlySet<string> = new Set(['list-topic', 'get-topic', 'create-topic', 'destroy-topic', 'refresh-token']);
/** Methods a `topic:<name>` channel takes as pushes, for its topic: `/live`'s attributes without `topicName`. */
const CUSTOM_TOPIC_METHODS: ReadonlySet<string> = new Set(['new-message', 'history', 'track', 'untrack', 'presence']);

/**
 * Runs one message of a Phoenix client (see runChannelMessage): joins of
 * `table:`, `topic:` and `rowcast`, leaves, and pushes on joined topics.
 */
export function runPhoenixMessage(ws: Socket, session: Session, message: PhoenixMessage, logger: Logger): Promise<void> | undefined {
  const conn = ws.getUserData();
  return runChannelMessage(
    ws,
    message,
    {
      channels: conn.channels,
      join: (m) => join(ws, session, m),
      leave: (channel) => leave(ws, session, message.topic, channel),
      push: (channel, m) => channelPush(ws, session, channel, m),
    },
    logger,
  );
}

function join(ws: Socket, session: Session, message: PhoenixMessage): Promise<void> | undefined {
  const conn = ws.getUserData();
  const previous = conn.channels.get(message.topic);
  if (previous) {
    leave(ws, session, message.topic, previous);
    closed(ws, message.topic, previous);
  }
  if (message.topic === 'rowcast') {
    conn.channels.set('rowcast', { joinRef: message.joinRef, name: '', handle: null });
    return reply(ws, message, 'ok', {});
  }
  const [, prefix, name] = /^(table|topic):(.+)$/.exec(message.topic) ?? [];
  if (prefix === undefined || name === undefined || name.includes(',')) return reply(ws, message, 'error', { reason: 'unmatched topic' });
  const { filter, events, since, snapshot, aggregate } = (isObject(message.payload) ? message.payload : {}) as Record<string, unknown>;
  const parsed = parseRequest('subscribe', undefined, { topicName: name, ...defined({ filter, events, since, snapshot, aggregate }) });
  if (!parsed.ok) throw new RowcastError(parsed.error.code, parsed.error.message);
  const attributes = (parsed.request as RequestOf<'subscribe'>).attributes;
  return session.subscribe(
    {
      topics: [name],
      kind: prefix === 'table' ? 'table' : 'custom',
      ...defined({ filter: attributes.filter, events: attributes.events, since: attributes.since }),
      encoder: PHOENIX_ENCODERS[conn.vsn],
      ...(attributes.snapshot === true ? { snapshot: subscribeSink(ws, message) } : {}),
      ...(attributes.aggregate !== undefined ? { aggregate: { spec: attributes.aggregate, sink: subscribeSink(ws, message) } } : {}),
    },
    ({ handles, answer, replay }) => {
      conn.channels.set(message.topic, { joinRef: message.joinRef, name, handle: handles[0]! });
      if (conn.closed) return;
      ws.cork(() => {
        if (answer !== null) reply(ws, message, 'ok', answer);
        for (const frame of replay) ws.send(frame, false);
        const state = session.presenceSnapshot(name);
        if (state !== null) ws.send(PHOENIX_ENCODERS[conn.vsn].encodePresence!(name, 'state', state), false);
      });
    },
  );
}

/**
 * A snapshot's or an aggregate's join reply and frames (`snapshot`, `aggregate_*` pushes on the channel). A
 * failure after the reply ends the channel as a revoked subscription does:
 * a `revoked` push, then `phx_close`.
 */
function subscribeSink(ws: Socket, message: PhoenixMessage): SnapshotSink {
  const conn = ws.getUserData();
  return {
    answered: (answer) => {
      if (!conn.closed) ws.cork(() => reply(ws, message, 'ok', answer));
    },
    page: (frame) => {
      if (!conn.closed) ws.cork(() => ws.send(frame, false));
    },
    failed: (_topic, reason) => {
      if (conn.closed) return;
      ws.cork(() => {
        push(ws, { joinRef: message.joinRef, ref: null, topic: message.topic, event: 'revoked', payload: { reason } });
        closed(ws, message.topic, message);
      });
    },
  };
}

function leave(ws: Socket, session: Session, topic: string, channel: Channel): void {
  ws.getUserData().channels.delete(topic);
  if (channel.handle) session.unsubscribe(channel.handle);
}

/** A push on a joined channel: `new-message` and `history` on `topic:<name>`; `/live`'s topic methods on `rowcast`. */
function channelPush(ws: Socket, session: Session, channel: Channel, message: PhoenixMessage): Promise<void> | undefined {
  const payload = isObject(message.payload) ? message.payload : {};
  let method: string;
  let attributes: Record<string, unknown>;
  if (message.topic === 'rowcast' && ROWCAST_METHODS.has(message.event)) {
    method = message.event;
    attributes = payload;
  } else if (message.topic.startsWith('topic:') && CUSTOM_TOPIC_METHODS.has(message.event)) {
    method = message.event;
    attributes = { ...payload, topicName: channel.name };
  } else {
    throw new RowcastError('UNKNOWN_METHOD', `${JSON.stringify(message.event.slice(0, 64))} is not an event of ${message.topic.startsWith('table:') ? 'a table channel' : message.topic}`);
  }
  const parsed = parseRequest(method, undefined, attributes);
  if (!parsed.ok) throw new RowcastError(parsed.error.code, parsed.error.message);
  if (!isSessionMethod(parsed.request.method)) throw new RowcastError('UNKNOWN_METHOD', `${method} is not a session method`);
  const result = runSessionMethod(session, parsed.request as RequestOf<SessionMethod>);
  if (!(result instanceof Promise)) return reply(ws, message, 'ok', result);
  return result.then((data) => reply(ws, message, 'ok', data));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** `value` without its undefined fields. */
function defined<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
