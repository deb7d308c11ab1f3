import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ANONYMOUS, type Principal } from '../auth/principal.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Database } from '../db/database.js';
import { RowcastError } from '../errors.js';
import type { Event, FrameEncoder } from '../events/event.js';
import type { EventLog } from '../log/event-log.js';
import type { ReplayWindow } from '../log/replay-window.js';
import { adminPartition, customTopicAudience, grantedPartitions } from '../policies/audience-partitions.js';
import { CLOSE_CODES, type CloseCode, type PresenceState, type RequestOf } from '../protocol/index.js';
import { parseRequest } from '../protocol/parse-client-frame.js';
import { customTopicPartitions } from '../topics/custom-topic-access.js';
import type { MessagePositions } from '../log/message-positions.js';
import type { MessageReplay } from '../log/message-replay.js';
import type { MessageWriter } from '../topics/message-writer.js';
import type { CustomTopic, TableTopic, TopicRegistry } from '../topics/topic-registry.js';
import { BackpressureGauge, type Pacer } from './backpressure-gauge.js';
import type { ClientLimits } from './client-limits.js';
import type { CoreContext, DirectMessages } from './core-context.js';
import { Deliveries } from './deliveries.js';
import { routeEvents, type Publisher, type RouterCounters } from './event-router.js';
import { ExpirySweep } from './expiry-sweep.js';
import { PresenceStore } from './presence/presence-store.js';
import { PresenceTracking } from './presence/presence-tracking.js';
import { revoke } from './revoke.js';
import { isSessionMethod, runSessionMethod, type SessionMethod } from './session-methods.js';
import type { SessionInfo, SessionPort, SessionState, SnapshotService, SnapshotStats, SubscriptionHandle } from './session-types.js';
import type { HookConnection, Hooks } from './hooks.js';
import { Session } from './session.js';
import { SubscriptionIndex, uwsTopic } from './subscription-index.js';
import { topicNamed } from './topic-access.js';

/** What the core is built from: the node's topics, stream and database, and its limits. */
export interface CoreOptions {
  readonly registry: TopicRegistry;
  readonly log: EventLog;
  readonly window: ReplayWindow;
  readonly replay: MessageReplay;
  readonly positions: MessagePositions;
  readonly messages: MessageWriter;
  readonly db: Database;
  readonly verifyToken: TokenVerifier;
  /** Hands an ephemeral topic's message to the event log (or the cluster stream). */
  readonly publishEphemeral: (topic: CustomTopic, sender: string | null, message: unknown, origin: string | null) => Promise<Event>;
  readonly catchUp: CoreContext['catchUp'];
  readonly streamCaughtUp: CoreContext['streamCaughtUp'];
  readonly streamPassed: CoreContext['streamPassed'];
  /** The host app's hooks (library mode). */
  readonly hooks: Hooks;
  /** Snapshots (`null`: `snapshot: true` is answered SNAPSHOT_UNSUPPORTED). */
  readonly snapshots: SnapshotService | null;
  /** Where events are published: uWS's fan-out to every subscribed socket (all of the node's apps). */
  readonly publisher: Publisher;
  /** The encoder whose unfiltered subscriptions use the bare partition names (`/live`'s). */
  readonly defaultEncoder: FrameEncoder;
  readonly allowAnonymous: boolean;
  /** This node's id in a cluster (presence entries carry it). */
  readonly nodeId: string;
  /** How long presence changes wait to be sent together (`PRESENCE_BATCH_MS`). */
  readonly presenceBatchMs: number;
  readonly limits: ClientLimits;
  readonly maxSubscriptions: number;
  readonly maxChatMessageBytes: number;
  /** Who may send direct messages, and how many each inbox keeps (default: admins, 100). */
  readonly direct?: DirectMessages;
  /** Unsent bytes per socket before it is closed as a slow consumer (`MAX_BACKPRESSURE_BYTES`). */
  readonly maxBackpressureBytes: number;
  /**
   * The node's open sessions (every door's): made before the core, because
   * the replication stream's flow control ({@link BackpressureGauge}) reads
   * them and the stream exists before the core.
   */
  readonly sessions: Set<Session>;
  /** Flow control over `sessions`. */
  readonly gauge: BackpressureGauge;
  readonly logger: Logger;
}

/** A connection as the admin API lists it. */
export interface ConnectionInfo {
  readonly id: string;
  readonly client: string;
  /** The door it came through (`live`, …). */
  readonly door: string;
  readonly user: { readonly sub: string | null; readonly role: string | null };
  readonly subscriptions: string[];
  readonly bufferedBytes: number;
}

/** A connection as `GET /admin/connections/:id` shows it. */
export interface ConnectionDetail extends Omit<ConnectionInfo, 'subscriptions'> {
  readonly principal: { readonly sub: string | null; readonly role: string | null; readonly isAdmin: boolean; readonly expiresAt: number | null; readonly claims: Readonly<Record<string, unknown>> };
  /** Each subscription (a door may hold several on a topic): its topic, its group's canonical key (filter and events; `null`: neither), its audience partitions. */
  readonly subscriptions: Array<{ readonly topic: string; readonly group: string | null; readonly partitions: string[] }>;
  readonly presences: Array<{ readonly topic: string; readonly key: string; readonly ref: string; readonly meta: unknown }>;
}

/** A table topic as a door's frames describe it. */
export type TableShape = Pick<TableTopic, 'name' | 'schema' | 'table' | 'columns' | 'primaryKey'>;

/** The methods the admin API runs (same validation and errors as the socket). */
export type AdminMethod = Extract<SessionMethod, 'list-topic' | 'get-topic' | 'create-topic' | 'destroy-topic' | 'new-message' | 'direct-message' | 'history' | 'presence'>;

/**
 * The core API that every door calls (docs/architecture.md, "Doors"):
 * authenticate a connection, open a {@link Session} for it (subscribe,
 * unsubscribe, publish, history, topics, token refresh), and everything that
 * is the same whatever the protocol: permissions, limits, replay, the router
 * and its metrics, flow control, token expiry, and revalidation when a read
 * rule changes.
 */
export interface RowcastCore {
  readonly limits: ClientLimits;
  readonly maxSubscriptions: number;
  /**
   * The principal of a connection's token (`''`: none): `TOKEN_INVALID`
   * when it is missing (and anonymous connections are off) or invalid,
   * `FORBIDDEN` for a valid token without `sub` while anonymous connections
   * are off.
   */
  authenticate(token: string): Principal;
  /** The host's hooks (library mode): a door's upgrade waits for `authenticate` when there is one. */
  readonly hooks: Hooks;
  /**
   * A session for a door's new connection; `port` is how the core reaches
   * it. With `parent`, a further session within that connection, acting for
   * another principal (the Supabase door's channels): it is not a connection
   * of its own (not counted, not listed apart), its subscriptions count
   * towards the connection's limits, and it ends with the parent. Its token's
   * expiry closes it through its own port.
   */
  openSession(info: SessionInfo, principal: Principal, port: SessionPort, parent?: Session): Session;
  /** The door's socket (or, for a session within one, its channel) closed, with `code` for a socket: the session ends. */
  closeSession(session: Session, code?: number): void;
  /** Open sessions. */
  readonly sessions: ReadonlySet<Session>;
  /** Runs an admin API method for `principal`, with no connection (same validation and errors as the socket). */
  call(principal: Principal, method: AdminMethod, attributes: unknown): Promise<unknown>;
  connections(): ConnectionInfo[];
  /** One connection in detail (its principal, each subscription with its filter, its presences), or `undefined`. */
  connection(id: string): ConnectionDetail | undefined;
  /** Closes connection `id` with 1008; `false` when there is none. */
  closeConnection(id: string, reason: string): boolean;
  /**
   * Sends connection `id` a `direct` frame from `from` (kept nowhere, no
   * `seq`): `sent`, `none` when there is no such connection, `unsupported`
   * when its door has no direct frames. `LIMIT_EXCEEDED` past `MAX_CHAT_MESSAGE_BYTES`.
   */
  messageConnection(id: string, from: string | null, message: unknown): 'sent' | 'none' | 'unsupported';
  /** Closes every connection with 1012 (clients reconnect and resume with `since`). */
  disconnectAll(reason: string): void;
  /** Closes every connection with 1001 and stops the timers. */
  shutdown(): void;
  /** Flow control for the replication stream. */
  readonly pacer: Pacer;
  /** What the router counted. */
  readonly counters: RouterCounters;
  slowConsumersClosed(): number;
  /**
   * What a door's frames say about table topic `name` (schema, table,
   * columns with their Postgres types), or undefined when there is none.
   * It grants nothing: a door uses it to render events it was given.
   */
  tableShape(name: string): TableShape | undefined;
  /** The table topics of a schema (readable or not: the core checks each subscription). */
  tablesIn(schema: string): TableShape[];
  /** Whether a topic named `name` exists, and of which kind (it grants nothing). */
  topicKind(name: string): 'table' | 'custom' | undefined;
  /** Sessions subscribed to a topic and its distinct filter groups. */
  topicStats(topic: string): { subscribers: number; filterGroups: number };
  /** Snapshots being read and waiting, live aggregates (zeros when the node serves none). */
  snapshotStats(): SnapshotStats;
  /** Who is present where, on every node (the cluster's presence sync keeps the other nodes' part). */
  readonly presence: PresenceStore;
  /** Who is present on `topic`, as its subscribers were last told (the inspector's view). */
  presenceOf(topic: string): PresenceState;
}

/**
 * Builds the core: the subscription index and the router on the event log,
 * flow control and token expiry over the sessions, and revalidation of
 * subscriptions when the registry says a read rule changed.
 */
export function createCore(options: CoreOptions): RowcastCore {
  const { sessions, gauge } = options;
  const index = new SubscriptionIndex(options.defaultEncoder);
  const presenceStore = new PresenceStore({ node: options.nodeId, batchMs: options.presenceBatchMs, publish: (topic, diff) => publishPresence(options.publisher, index, topic, diff) });
  const deliveries = new Deliveries();
  const expiry = new ExpirySweep<SessionState>((session) => {
    if (!session.closed) session.port.close(CLOSE_CODES.TOKEN_EXPIRED, 'token expired: send refresh-token before exp, or reconnect with a new token');
  });
  const context = coreContext(options, index, deliveries, expiry, presenceStore);
  index.onEnd((handle) => context.presence.subscriptionEnded(handle));
  index.onEnd((handle) => options.snapshots?.ended(handle));
  // Connections by id, for the router to find a message's origin.
  const byId = new Map<string, Session>();
  const counters = route(options, index, deliveries, (origin) => byId.get(origin)?.port);
  options.registry.onPolicyChange((topic) => revalidate(context, topic));

  return {
    limits: options.limits,
    maxSubscriptions: options.maxSubscriptions,
    sessions,
    pacer: gauge,
    counters,
    slowConsumersClosed: () => gauge.slowConsumersClosed,
    topicStats: (topic) => index.stats(topic),
    presence: presenceStore,
    presenceOf: (topic) => JSON.parse(presenceStore.stateJson(topic)) as PresenceState,
    snapshotStats: () => options.snapshots?.stats() ?? { running: 0, waiting: 0, aggregates: 0, aggregateRows: 0 },
    tableShape: (name) => options.registry.get(name),
    tablesIn: (schema) => options.registry.list().filter((topic) => topic.schema === schema),
    topicKind: (name) => topicNamed(options.registry, name)?.kind,
    authenticate: (token) => authenticate(options, token),
    hooks: options.hooks,
    openSession: (info, principal, port, parent) => {
      const session = new Session(context, info, principal, port, parent ?? null);
      if (parent) parent.children.add(session);
      else {
        sessions.add(session);
        byId.set(info.id, session);
        options.hooks.connected(hookConnection(session));
      }
      expiry.set(session, principal.expiresAt);
      return session;
    },
    closeSession: (session, code) => {
      if (sessions.has(session)) options.hooks.closed(hookConnection(session), code ?? 1005);
      sessions.delete(session);
      if (byId.get(session.id) === session) byId.delete(session.id);
      for (const member of [session, ...session.children]) expiry.delete(member);
      session.close();
    },
    call: (principal, method, attributes) => callDetached(context, principal, method, attributes),
    connections: () => [...sessions].map(connectionInfo),
    connection: (id) => {
      const session = byId.get(id);
      if (!session) return undefined;
      const members = [...session.connection];
      return {
        ...connectionInfo(session),
        principal: { sub: session.principal.sub, role: session.principal.role, isAdmin: session.principal.isAdmin, expiresAt: session.principal.expiresAt, claims: session.principal.claims },
        subscriptions: members.flatMap((member) => [...member.handles].map((handle) => ({ topic: handle.topic, group: handle.group.key === '' ? null : handle.group.key, partitions: [...handle.partitions] }))),
        presences: members.flatMap((member) => context.presence.of(member)),
      };
    },
    messageConnection: (id, from, message) => {
      const session = byId.get(id);
      if (!session || session.closed) return 'none';
      if (!session.port.direct) return 'unsupported';
      const json = JSON.stringify(message);
      if (json === undefined) throw new RowcastError('INVALID_ATTRIBUTES', 'message: a JSON value');
      const bytes = Buffer.byteLength(json);
      if (bytes > options.maxChatMessageBytes) throw new RowcastError('LIMIT_EXCEEDED', `message is ${bytes} bytes; at most ${options.maxChatMessageBytes}`);
      session.port.direct({ type: 'direct', from, id: randomUUID(), seq: null, message, createdAt: new Date().toISOString() });
      return 'sent';
    },
    closeConnection: (id, reason) => {
      for (const session of sessions) {
        if (session.id !== id) continue;
        session.port.close(CLOSE_CODES.POLICY_VIOLATION, reason);
        return true;
      }
      return false;
    },
    disconnectAll: (reason) => closeAll(sessions, CLOSE_CODES.STREAM_GAP, reason),
    shutdown: () => {
      expiry.stop();
      presenceStore.stop();
      closeAll(sessions, CLOSE_CODES.SHUTTING_DOWN, 'server shutting down');
    },
  };
}

/** A session as the hooks see its connection. */
function hookConnection(session: Session): HookConnection {
  return { id: session.id, client: session.client, door: session.port.door, principal: session.principal };
}

/** What every session's methods share. */
function coreContext(options: CoreOptions, index: SubscriptionIndex, deliveries: Deliveries, expiry: ExpirySweep<SessionState>, presenceStore: PresenceStore): CoreContext {
  return {
    presenceStore,
    presence: new PresenceTracking({ store: presenceStore, limits: options.limits.presence, customTopic: (name) => options.registry.custom(name) }),
    registry: options.registry,
    index,
    limits: options.limits,
    maxSubscriptions: options.maxSubscriptions,
    maxChatMessageBytes: options.maxChatMessageBytes,
    direct: options.direct ?? { who: 'admin', history: 100 },
    maxReplayBytes: Math.floor(options.maxBackpressureBytes / 2),
    catchUp: options.catchUp,
    streamCaughtUp: options.streamCaughtUp,
    streamPassed: options.streamPassed,
    snapshots: options.snapshots,
    hooks: options.hooks,
    window: options.window,
    replay: options.replay,
    positions: options.positions,
    db: options.db,
    messages: options.messages,
    publishEphemeral: options.publishEphemeral,
    delivered: (id) => deliveries.wait(id),
    verifyToken: options.verifyToken,
    tokenRefreshed: (session) => expiry.set(session, session.principal.expiresAt),
    logger: options.logger,
  };
}

/** The router on the event log: stored messages count as delivered once routed; a dropped event is told to the topic's admins. */
function route(options: CoreOptions, index: SubscriptionIndex, deliveries: Deliveries, originPort: (origin: string) => SessionPort | undefined): RouterCounters {
  const { logger, publisher } = options;
  return routeEvents((listener) => options.log.subscribe(listener), publisher, index, {
    originPort,
    onMessage: (event) => deliveries.delivered(event.id!, event.seq),
    onDropped: (event, error) => {
      logger.error({ err: error, topic: event.topic, seq: event.seq, id: safeId(event) }, 'a change could not be serialized: not delivered, admins told');
      // Every admin subscription of the topic, whatever its door and filter, holds the admin partition.
      const admin = adminPartition(event.topic);
      for (const group of index.groupsIn(event.topic, admin)?.keys() ?? []) {
        publisher.publish(uwsTopic(admin, group.id), group.encoder.encodeDropped(event), false);
      }
    },
  });
}

/** A presence diff of custom topic `topic` to each of its subscription groups whose door speaks presence (its one audience partition). */
function publishPresence(publisher: Publisher, index: SubscriptionIndex, topic: string, diff: string): void {
  for (const partition of customTopicAudience(topic)) {
    for (const group of index.groupsIn(topic, partition)?.keys() ?? []) {
      const frame = group.encoder.encodePresence?.(topic, 'diff', diff);
      if (frame !== undefined) publisher.publish(uwsTopic(partition, group.id), frame, false);
    }
  }
}

/** See {@link RowcastCore.call}: a session method run for `principal` without a connection (nothing to subscribe, nothing to tell). */
async function callDetached(context: CoreContext, principal: Principal, method: string, attributes: unknown): Promise<unknown> {
  const parsed = parseRequest(method, undefined, attributes ?? {});
  if (!parsed.ok) throw new RowcastError(parsed.error.code, parsed.error.message);
  const { request } = parsed;
  if (!isSessionMethod(request.method)) throw new RowcastError('UNKNOWN_METHOD', `the admin API does not run ${request.method}`);
  const session = new Session(context, { id: 'admin-api', client: 'admin-api' }, principal, DETACHED);
  return runSessionMethod(session, request as RequestOf<SessionMethod>);
}

function connectionInfo(session: Session): ConnectionInfo {
  return {
    id: session.id,
    client: session.client,
    door: session.port.door,
    user: { sub: session.principal.sub, role: session.principal.role },
    subscriptions: [...new Set([...session.connection].flatMap((member) => [...member.handles].map((handle) => handle.topic)))],
    bufferedBytes: session.port.bufferedBytes(),
  };
}

/** Closes every session's connection with `code`. */
export function closeAll(sessions: ReadonlySet<Session>, code: CloseCode, reason: string): void {
  for (const session of [...sessions]) session.port.close(code, reason);
}

/** Flow control between the replication stream and every session's socket, with rowcast's thresholds. */
export function flowControl(sessions: ReadonlySet<Session>, maxBackpressureBytes: number, logger: Logger): BackpressureGauge {
  return new BackpressureGauge(sessions, {
    highWaterBytes: Math.floor(maxBackpressureBytes / 4),
    maxBytes: maxBackpressureBytes,
    graceMs: 5000,
    stallMs: 500,
    sweepIntervalMs: 20,
    sweepCpuShare: 0.01,
    logger,
  });
}

/** See {@link RowcastCore.authenticate}. */
function authenticate(options: CoreOptions, token: string): Principal {
  if (token === '') {
    if (options.allowAnonymous) return ANONYMOUS;
    throw new RowcastError('TOKEN_INVALID', 'missing token: connect with the bearer.<JWT> subprotocol, Authorization: Bearer <JWT> or ?token=<JWT>');
  }
  const principal = options.verifyToken(token);
  if (principal.sub === null && !principal.isAdmin && !options.allowAnonymous) {
    throw new RowcastError('FORBIDDEN', 'the token is valid but has no sub, and anonymous connections are not allowed (ALLOW_ANONYMOUS)');
  }
  return principal;
}

/**
 * A topic's read rule changed (at its place in the stream), or the topic is
 * gone. For a table every non-admin subscription is revoked and its client
 * told: under another policy its cache may hold rows it can no longer read,
 * or lack rows it now can, and only a refetch mends that. For a custom
 * topic, subscriptions of users who may no longer read it are revoked. This
 * runs on the replication stream's path: one session's odd claims must not
 * stop it (unsure means revoked).
 */
function revalidate(context: CoreContext, name: string): void {
  const table = context.registry.get(name);
  const custom = context.registry.custom(name);
  for (const handle of [...context.index.handlesOf(name)]) {
    let reason: string | null;
    try {
      reason = revocationReason(name, table, custom, handle.session.principal);
    } catch (error) {
      const correlationId = randomUUID();
      context.logger.error({ err: error, correlationId, connection: handle.session.id, topic: name }, 'revalidating a subscription failed');
      reason = `the subscription could not be checked against the new rules (correlation id ${correlationId})`;
    }
    if (reason !== null) revoke(context.index, handle, reason);
  }
}

/** Why a subscription to `name` ends after a rule change, or `null` when it goes on. */
function revocationReason(name: string, table: TableTopic | undefined, custom: CustomTopic | undefined, principal: Principal): string | null {
  if (table) {
    if (principal.isAdmin) return null;
    return grantedPartitions(name, table.policy, principal) !== null
      ? 'the read policy of this topic changed: subscribe again and refetch'
      : 'the read policy of this topic no longer allows this user';
  }
  if (custom) return customTopicPartitions(custom, principal) !== null ? null : 'the readers of this topic no longer include this user';
  return 'the topic was destroyed';
}

/** An event's `data.id`, for a log line about it (it may be what cannot be serialized). */
function safeId(event: Event): string {
  try {
    return event.idOf(event.row ?? event.old ?? {});
  } catch {
    return '';
  }
}

/** The port of a session with no socket (the admin API's): it subscribes nothing and tells no one. */
const DETACHED: SessionPort = {
  door: 'admin-api',
  subscribeTopic: () => {},
  unsubscribeTopic: () => {},
  bufferedBytes: () => 0,
  revoked: (_handle: SubscriptionHandle) => {},
  close: () => {},
};
