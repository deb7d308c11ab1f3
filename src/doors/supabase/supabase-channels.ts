import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import type { RowcastCore } from '../../core/rowcast-core.js';
import type { SessionPort, SubscriptionHandle } from '../../core/session-types.js';
import { RowcastError } from '../../errors.js';
import { closed, reply, runChannelMessage } from '../phoenix/phoenix-socket.js';
import type { PhoenixMessage } from '../phoenix/phoenix-wire.js';
import { channelTopic } from './channel-topic.js';
import { readBindings } from './postgres-changes.js';
import { postgrestFilter } from './postgrest-filter.js';
import type { JoinedBinding, SupabaseChannel, SupabaseConnection } from './supabase-connection.js';
import { systemFrame, type SupabaseEncoders } from './supabase-encoder.js';

type Socket = WebSocket<SupabaseConnection>;

/** What the Supabase door's channels need. */
export interface SupabaseContext {
  readonly core: RowcastCore;
  readonly encoders: SupabaseEncoders;
  readonly logger: Logger;
}

const PREFIX = 'realtime:';

/**
 * Runs one message of a Supabase client (see runChannelMessage): joins of
 * `realtime:<name>`, leaves, and pushes on joined channels (`access_token`,
 * `broadcast`).
 */
export function runSupabaseMessage(ws: Socket, context: SupabaseContext, message: PhoenixMessage): Promise<void> | undefined {
  const conn = ws.getUserData();
  return runChannelMessage(
    ws,
    message,
    {
      channels: conn.channels,
      join: (m) => join(ws, context, m),
      leave: (channel) => endChannel(ws, context, channel),
      push: (channel, m) => channelPush(ws, context, channel, m),
    },
    context.logger,
  );
}

/**
 * A join: the channel's own session (for the join's `access_token`, else the
 * socket's user), its custom topic when one has its name, and a
 * subscription per `postgres_changes` binding. A binding that cannot be
 * served gets a `system` error after the reply; the others work.
 */
async function join(ws: Socket, context: SupabaseContext, message: PhoenixMessage): Promise<void> {
  const conn = ws.getUserData();
  const { core } = context;
  if (!message.topic.startsWith(PREFIX) || message.topic.length === PREFIX.length) return void reply(ws, message, 'error', { reason: 'unmatched topic' });
  const payload = objectOr(message.payload);
  const config = objectOr(payload['config']);
  const read = readBindings(config['postgres_changes'], core.maxSubscriptions);
  if (!read.ok) throw new RowcastError('INVALID_ATTRIBUTES', read.reason);
  const token = payload['access_token'];
  const principal = typeof token === 'string' && token !== '' ? core.authenticate(token) : conn.principal;
  const previous = conn.channels.get(message.topic);
  if (!previous && conn.channels.size >= core.maxSubscriptions) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${core.maxSubscriptions} channels per connection (MAX_SUBSCRIPTIONS)`);
  }
  if (previous) {
    endChannel(ws, context, previous);
    closed(ws, message.topic, previous);
  }
  const broadcast = objectOr(config['broadcast']);
  const presenceKey = objectOr(config['presence'])['key'];
  const channel: SupabaseChannel = {
    topic: message.topic,
    name: message.topic.slice(PREFIX.length),
    joinRef: message.joinRef,
    session: conn.session!, // replaced at once by the channel's own
    bindings: read.bindings.map((binding) => ({ binding, handles: [] })),
    topicHandle: null,
    broadcast: { self: broadcast['self'] === true, ack: broadcast['ack'] === true },
    presenceKey: typeof presenceKey === 'string' && presenceKey !== '' ? presenceKey : randomUUID(),
    encoders: [],
    pending: [],
    revokedByRefresh: null,
    closed: false,
  };
  channel.session = core.openSession({ id: conn.id, client: conn.client }, principal, channelPort(ws, context, channel), conn.session!);
  conn.channels.set(message.topic, channel);
  const problems: string[] = [];
  try {
    await joinTopic(context, conn, channel, config['private'] === true);
    for (const joined of channel.bindings) {
      const problem = await subscribeBinding(context, conn, channel, joined);
      if (problem !== null) problems.push(`${describe(joined)}: ${problem}`);
    }
  } catch (error) {
    endChannel(ws, context, channel);
    throw error;
  }
  if (conn.closed || channel.closed) return;
  ws.cork(() => {
    reply(ws, message, 'ok', { postgres_changes: channel.bindings.map(({ binding }) => ({ ...binding.echo, id: binding.id })) });
    if (channel.bindings.length > problems.length) ws.send(systemFrame(conn.vsn, channel.topic, 'postgres_changes', 'ok', 'Subscribed to PostgreSQL'), false);
    for (const problem of problems) ws.send(systemFrame(conn.vsn, channel.topic, 'postgres_changes', 'error', problem), false);
    // The presence state after every join, before the diffs that continue it (the uWS topics below).
    const topic = channel.topicHandle;
    const state = topic ? channel.session.presenceSnapshot(topic.topic) : null;
    if (state !== null) ws.send(topic!.group.encoder.encodePresence!(topic!.topic, 'state', state), false);
    const pending = channel.pending ?? [];
    channel.pending = null;
    for (const uwsTopic of pending) hold(ws, uwsTopic);
  });
}

/**
 * A channel's broadcast: the custom topic of its name (whose readers may
 * join) or else its open channel (see channelTopic). Messages arrive as
 * broadcasts; with `self: false` not on the socket that sent them.
 */
async function joinTopic(context: SupabaseContext, conn: SupabaseConnection, channel: SupabaseChannel, isPrivate: boolean): Promise<void> {
  const topic = channelTopic(context.core, channel.name, isPrivate);
  if (topic === null) return;
  const encoder = context.encoders.broadcasts(conn.vsn, channel.topic, channel.broadcast.self);
  channel.encoders.push(encoder);
  await channel.session.subscribe({ topics: [topic], kind: 'custom', encoder }, ({ handles }) => {
    channel.topicHandle = handles[0] ?? null;
  });
}

/** Subscribes one binding (sharing the subscription of an identical one); returns why it failed, or null. */
async function subscribeBinding(context: SupabaseContext, conn: SupabaseConnection, channel: SupabaseChannel, joined: JoinedBinding): Promise<string | null> {
  const { binding } = joined;
  if (binding.problem !== null) return binding.problem;
  const twin = channel.bindings.find((other) => other !== joined && other.binding.id === binding.id && other.handles.length > 0);
  if (twin) {
    joined.handles = twin.handles;
    return null;
  }
  const shapes = binding.table === '*' ? readableTables(context, channel, binding.schema) : context.core.tablesIn(binding.schema).filter((shape) => shape.table === binding.table);
  if (shapes.length === 0) {
    return binding.table === '*' ? `TOPIC_NOT_FOUND: no table of schema ${binding.schema} may be read` : `TOPIC_NOT_FOUND: no topic named ${JSON.stringify(`${binding.schema}.${binding.table}`)}`;
  }
  let filter;
  if (binding.filter !== null) {
    const typeOf = (column: string) => shapes.flatMap((shape) => shape.columns).find((c) => c.name === column)?.type;
    const parsed = postgrestFilter(binding.filter, typeOf);
    if (!parsed.ok) return `INVALID_FILTER: ${parsed.reason}`;
    filter = parsed.filter;
  }
  const encoder = context.encoders.changes(conn.vsn, channel.topic, binding.id);
  channel.encoders.push(encoder);
  try {
    await channel.session.subscribe(
      { topics: shapes.map((shape) => shape.name), kind: 'table', ...(filter ? { filter } : {}), ...(binding.events ? { events: binding.events } : {}), encoder },
      ({ handles }) => {
        joined.handles = [...handles];
      },
    );
  } catch (error) {
    if (error instanceof RowcastError) return `${error.code}: ${error.message}`;
    throw error;
  }
  return null;
}

function readableTables(context: SupabaseContext, channel: SupabaseChannel, schema: string) {
  const readable = new Set(channel.session.listTopics().topics.filter((topic) => topic.kind === 'table').map((topic) => topic.name));
  return context.core.tablesIn(schema).filter((shape) => readable.has(shape.name));
}

/** A binding as a `system` message names it: `INSERT on public.todos (id=eq.1)`. */
function describe({ binding }: JoinedBinding): string {
  const { event, schema, table = '*', filter } = binding.echo;
  const text = (value: unknown) => (typeof value === 'string' ? value : (JSON.stringify(value) ?? '?').slice(0, 64));
  return `${text(event)} on ${text(schema)}.${text(table)}${typeof filter === 'string' && filter !== '' ? ` (${filter})` : ''}`;
}

/** A push on a joined channel. */
function channelPush(ws: Socket, context: SupabaseContext, channel: SupabaseChannel, message: PhoenixMessage): Promise<void> | undefined {
  const payload = objectOr(message.payload);
  switch (message.event) {
    case 'access_token':
      return refresh(ws, context, channel, payload['access_token']);
    case 'broadcast':
      return send(ws, context, channel, message, payload);
    case 'presence':
      return presence(ws, channel, message, payload);
    default:
      throw new RowcastError('UNKNOWN_METHOD', `${JSON.stringify(message.event.slice(0, 64))} is not an event of a channel`);
  }
}

/**
 * `access_token`: the channel's session takes the new token (same `sub`). A
 * token that is invalid, expired, for another user, or that no longer reads
 * what the channel holds ends the channel: a `system` error, then `phx_close`.
 */
function refresh(ws: Socket, context: SupabaseContext, channel: SupabaseChannel, token: unknown): undefined {
  if (typeof token !== 'string' || token === '') return undefined;
  channel.revokedByRefresh = [];
  let problem: string | null = null;
  try {
    channel.session.refreshToken(token);
    if (channel.revokedByRefresh.length > 0) problem = `FORBIDDEN: the new token may not read ${channel.revokedByRefresh.join(', ')}`;
  } catch (error) {
    if (!(error instanceof RowcastError)) throw error;
    problem = `${error.code}: ${error.message}`;
  } finally {
    channel.revokedByRefresh = null;
  }
  if (problem !== null) closeChannel(ws, context, channel, problem);
  return undefined;
}

/** `broadcast`: published to the channel's topic (a custom topic's writers only); answered when `ack` is on. */
function send(ws: Socket, context: SupabaseContext, channel: SupabaseChannel, message: PhoenixMessage, payload: Record<string, unknown>): Promise<void> {
  const event = payload['event'];
  if (typeof event !== 'string' || event === '' || event.length > 255) throw new RowcastError('INVALID_MESSAGE', 'a broadcast has an event: a string of 1 to 255 characters');
  if (channel.topicHandle === null) {
    throw new RowcastError('TOPIC_NOT_FOUND', `this channel has nothing to broadcast to: its custom topic ${JSON.stringify(channel.name)} was withdrawn, or there is none and open channels are off (OPEN_CHANNELS)`);
  }
  const { ack } = channel.broadcast;
  return channel.session.publish(channel.topicHandle.topic, { event, payload: payload['payload'] ?? null }).then(
    () => void (ack ? reply(ws, message, 'ok', {}) : undefined),
    (error: unknown) => {
      if (ack || !(error instanceof RowcastError)) throw error;
      pushSystem(ws, channel, 'broadcast', `${error.code}: ${error.message}`);
    },
  );
}

/** `presence` pushes: `track` (the channel's meta, as its key) and `untrack`; answered ok. */
function presence(ws: Socket, channel: SupabaseChannel, message: PhoenixMessage, payload: Record<string, unknown>): undefined {
  if (channel.topicHandle === null) {
    throw new RowcastError('TOPIC_NOT_FOUND', `this channel has no presence: its custom topic ${JSON.stringify(channel.name)} was withdrawn, or there is none and open channels are off (OPEN_CHANNELS)`);
  }
  const topic = channel.topicHandle.topic;
  switch (payload['event']) {
    case 'track': {
      const meta = payload['payload'] ?? {};
      if (meta === null || typeof meta !== 'object' || Array.isArray(meta) || meta instanceof Uint8Array) throw new RowcastError('INVALID_ATTRIBUTES', 'a tracked presence is a JSON object');
      channel.session.track(topic, meta as Record<string, unknown>, channel.presenceKey);
      break;
    }
    case 'untrack':
      channel.session.untrack(topic);
      break;
    default:
      throw new RowcastError('INVALID_MESSAGE', 'a presence push is {"type":"presence","event":"track"|"untrack","payload":{…}}');
  }
  reply(ws, message, 'ok', {});
  return undefined;
}

/** How the core reaches one channel: its subscriptions' uWS topics on the shared socket, and its end. */
function channelPort(ws: Socket, context: SupabaseContext, channel: SupabaseChannel): SessionPort {
  const conn = ws.getUserData();
  return {
    door: 'supabase',
    subscribeTopic: (uwsTopic) => {
      if (channel.pending) channel.pending.push(uwsTopic);
      else hold(ws, uwsTopic);
    },
    unsubscribeTopic: (uwsTopic) => {
      const at = channel.pending?.indexOf(uwsTopic) ?? -1;
      if (at >= 0) channel.pending!.splice(at, 1);
      else if (!channel.pending) release(ws, uwsTopic);
    },
    bufferedBytes: () => (conn.closed ? 0 : ws.getBufferedAmount()),
    revoked: (handle, reason) => revoked(ws, channel, handle, reason),
    // The channel's token expired: the channel ends (the socket and its other channels go on).
    close: (_code, reason) => closeChannel(ws, context, channel, `TOKEN_EXPIRED: ${reason}`),
  };
}

/** The core ended one of the channel's subscriptions: a `system` error names it (an `access_token` push collects them instead). */
function revoked(ws: Socket, channel: SupabaseChannel, handle: SubscriptionHandle, reason: string): void {
  if (channel.topicHandle === handle) {
    channel.topicHandle = null;
    if (channel.revokedByRefresh) channel.revokedByRefresh.push(handle.topic);
    else pushSystem(ws, channel, 'broadcast', `REVOKED: ${handle.topic}: ${reason}`);
    return;
  }
  for (const joined of channel.bindings) {
    if (!joined.handles.includes(handle)) continue;
    joined.handles = joined.handles.filter((held) => held !== handle);
    if (channel.revokedByRefresh) channel.revokedByRefresh.push(describe(joined));
    else pushSystem(ws, channel, 'postgres_changes', `REVOKED: ${describe(joined)}: ${reason}`);
  }
}

/** Ends a channel the server withdraws: a `system` error saying why, then `phx_close`. */
function closeChannel(ws: Socket, context: SupabaseContext, channel: SupabaseChannel, problem: string): void {
  if (channel.closed) return;
  pushSystem(ws, channel, 'system', problem);
  closed(ws, channel.topic, channel);
  endChannel(ws, context, channel);
}

/** A channel ends: its session (and so its subscriptions) and its encoders. */
function endChannel(ws: Socket, context: SupabaseContext, channel: SupabaseChannel): void {
  if (channel.closed) return;
  channel.closed = true;
  const conn = ws.getUserData();
  if (conn.channels.get(channel.topic) === channel) conn.channels.delete(channel.topic);
  context.core.closeSession(channel.session);
  for (const encoder of channel.encoders.splice(0)) context.encoders.release(encoder);
}

/** Every channel of a closed socket ends (their sessions ended with the socket's). */
export function endChannels(ws: Socket, context: SupabaseContext): void {
  for (const channel of [...ws.getUserData().channels.values()]) endChannel(ws, context, channel);
}

/** The socket subscribes to `uwsTopic` with the first channel that uses it. */
function hold(ws: Socket, uwsTopic: string): void {
  const conn = ws.getUserData();
  const count = conn.held.get(uwsTopic) ?? 0;
  conn.held.set(uwsTopic, count + 1);
  if (count === 0 && !conn.closed) ws.subscribe(uwsTopic);
}

/** …and unsubscribes with the last. */
function release(ws: Socket, uwsTopic: string): void {
  const conn = ws.getUserData();
  const count = (conn.held.get(uwsTopic) ?? 1) - 1;
  if (count > 0) return void conn.held.set(uwsTopic, count);
  conn.held.delete(uwsTopic);
  if (!conn.closed) ws.unsubscribe(uwsTopic);
}

function pushSystem(ws: Socket, channel: SupabaseChannel, extension: string, message: string): void {
  const conn = ws.getUserData();
  if (conn.closed) return;
  const frame = systemFrame(conn.vsn, channel.topic, extension, 'error', message);
  ws.cork(() => ws.send(frame, false));
}

function objectOr(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array) ? (value as Record<string, unknown>) : {};
}
