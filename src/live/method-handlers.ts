import type { WebSocket } from 'uWebSockets.js';
import { RowcastError } from '../errors.js';
import type { Event, EventKind, FrameKind } from '../events/event.js';
import { parseSince } from '../events/seq.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import { compileRowFilter } from '../policies/row-filter.js';
import type { Database } from '../db/database.js';
import type { FrameSource, ReplayWindow } from '../log/replay-window.js';
import { adminPartition } from '../policies/audience-partitions.js';
import type { MessagePositions } from '../topics/message-positions.js';
import type { MessageReplay } from '../topics/message-replay.js';
import type { MessageWriter } from '../topics/message-writer.js';
import type { CustomTopic, TableTopic, TopicRegistry } from '../topics/topic-registry.js';
import { framesForGroup } from './event-router.js';
import { createTopic, destroyTopic, history, newMessage } from './topic-handlers.js';
import { describeCustom, grantOf, topicNamed } from './topic-access.js';
import type { Connection } from './connection.js';
import { encodeFrame, responseFrame, type ClientRequest, type Method, type RequestOf, type ResponseData, type TableTopicDetail, type TableTopicSummary } from './protocol.js';
import { PLAIN_GROUP, type GroupSpec, type SubscriptionIndex } from './subscription-index.js';
import type { ClientLimits } from './client-limits.js';

/** What method handlers may use. */
export interface HandlerContext {
  readonly registry: TopicRegistry;
  readonly index: SubscriptionIndex;
  readonly maxSubscriptions: number;
  /**
   * Brings the registry up to the database's present: reads the tables again
   * and waits until the stream has routed every commit made so far (policy
   * rows included). Used before answering that a topic is unknown or
   * forbidden, so a client that just created a table or set a policy is not
   * refused by a server a few milliseconds behind.
   */
  readonly catchUp: () => Promise<void>;
  /** Resolves once the stream has routed every commit made before the call (or after 5 s, if it cannot). */
  readonly streamCaughtUp: () => Promise<void>;
  /**
   * Whether the stream has reached the change `seq` names (waiting while it
   * makes progress). After a restart the stream re-reads the slot; a client
   * may have seen events it has not reached yet, and a replay then would send
   * them twice.
   */
  readonly streamPassed: (seq: string) => Promise<boolean>;
  /** The node's last events, for `subscribe` with `since` on table topics. */
  readonly window: ReplayWindow;
  /** Replays custom topics from `rowcast.messages` (`subscribe` with `since`). */
  readonly replay: MessageReplay;
  /** Most bytes of frames one replay may send (below what a socket may buffer). */
  readonly maxReplayBytes: number;
  /** Positions of stored messages not yet written back (for `history`). */
  readonly positions: MessagePositions;
  readonly db: Database;
  readonly messages: MessageWriter;
  /** Hands an ephemeral topic's message to the event log. */
  readonly publishEphemeral: (topic: CustomTopic, sender: string | null, message: unknown) => Promise<Event>;
  /** Resolves with the `seq` of stored message `id` once the stream has delivered it (`null` if it has not within 10 s). */
  readonly delivered: (id: string) => Promise<string | null>;
  /** Checks a token for `refresh-token`. */
  readonly verifyToken: TokenVerifier;
  /** The connection's principal changed: watch its new expiry. */
  readonly tokenRefreshed: (ws: WebSocket<Connection>) => void;
  /** Largest `new-message` payload, in bytes of JSON. */
  readonly maxChatMessageBytes: number;
  /** Bounds on subscriptions and filters. */
  readonly limits: ClientLimits;
}

/**
 * What a handler returns when it has sent its response itself, because
 * frames must follow the response in the same synchronous step.
 */
export const ANSWERED: unique symbol = Symbol('answered');

/**
 * A handler answers with the response `data` (or {@link ANSWERED}),
 * synchronously or not, or throws a {@link RowcastError}.
 */
export type Handler<M extends Method> = (
  context: HandlerContext,
  ws: WebSocket<Connection>,
  conn: Connection,
  request: RequestOf<M>,
) => unknown;

/**
 * One handler per method. `ping` is answered by the server itself with a
 * `pong` frame and never reaches here. Methods of later features answer
 * `UNKNOWN_METHOD` with a message saying this server does not offer them yet.
 */
export const methodHandlers: { [M in Method]: Handler<M> } = {
  subscribe,
  unsubscribe,
  'list-topic': listTopics,
  'get-topic': getTopic,
  'new-message': newMessage,
  'create-topic': createTopic,
  'destroy-topic': destroyTopic,
  history,
  'refresh-token': refreshToken,
  ping: () => null,
};

/** Runs the handler of `request.method`. */
export function handle(context: HandlerContext, ws: WebSocket<Connection>, conn: Connection, request: ClientRequest): unknown {
  return (methodHandlers[request.method] as Handler<Method>)(context, ws, conn, request);
}

async function subscribe(context: HandlerContext, ws: WebSocket<Connection>, conn: Connection, request: RequestOf<'subscribe'>) {
  const since = request.attributes.since === undefined ? undefined : parseSince(request.attributes.since);
  const names = splitNames(request.attributes.topicName);
  // Live only once the stream has routed every commit made before this request: a row committed
  // after the response is never missed, and none committed before it arrives as news (after a
  // restart, the re-read tail of the slot is not delivered to new subscriptions).
  await context.streamCaughtUp();
  let grants = checkGrants(context, conn, request, names);
  if (grants instanceof RowcastError) {
    await context.catchUp();
    grants = checkGrants(context, conn, request, names);
  }
  if (grants instanceof RowcastError) throw grants;
  if (since !== undefined && !(await context.streamPassed(since.seq))) {
    return answerWithReplay(context, ws, conn, request, names, grants, null);
  }
  if (since === undefined) {
    if (conn.closed) return null;
    // checkGrants admitted them in this same synchronous step.
    for (const { topic, partitions, group } of grants) context.index.subscribe(ws, topic.name, group, partitions);
    return { topics: names, seq: context.window.position } satisfies ResponseData['subscribe'];
  }
  if (grants.every(({ topic }) => topic.kind === 'custom' && topic.history > 0)) return resumeFromMessages(context, ws, conn, request, names, since.seq);
  // Ephemeral topics keep nothing to replay; tables (with stored messages beside them) replay from the window.
  const frames = grants.some(({ topic }) => topic.kind === 'custom' && topic.history === 0)
    ? null
    : context.window.replay(since, new Map(grants.map((grant) => [grant.topic.name, frameSource(grant)])));
  return answerWithReplay(context, ws, conn, request, names, grants, frames);
}

/**
 * How the subscription of `grant` sees an event: the frames of its group
 * that reach its partitions. An event that cannot be serialized is skipped
 * (and marked dropped), as it was when it was routed live.
 */
function frameSource({ topic, partitions, group }: Grant): FrameSource {
  const granted = new Set(partitions);
  const admin = adminPartition(topic.name);
  return (event, emit) => {
    if (event.dropped !== null) return;
    const frames: Array<[string, FrameKind]> = [];
    try {
      framesForGroup(event, group, admin, (partition, kind) => {
        if (granted.has(partition)) frames.push([event.frame(kind), kind]);
      });
    } catch (error) {
      event.markDropped(error instanceof Error ? error.message : String(error));
      return;
    }
    for (const [frame, kind] of frames) emit(frame, kind);
  };
}

/**
 * `subscribe` with `since` on custom topics with history (the stream has
 * delivered every commit made before the request): reads what each topic
 * holds after `since` from `rowcast.messages`, then answers in one
 * synchronous step with {@link answerWithReplay}.
 */
async function resumeFromMessages(
  context: HandlerContext,
  ws: WebSocket<Connection>,
  conn: Connection,
  request: RequestOf<'subscribe'>,
  names: string[],
  since: string,
): Promise<typeof ANSWERED | null> {
  const opened = await Promise.allSettled(
    names.map((name) => {
      const topic = context.registry.custom(name);
      if (!topic) throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(name)}`);
      return context.replay.open(topic, since);
    }),
  );
  const seams = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failure = opened.find((result) => result.status === 'rejected');
  const grants = failure ? null : checkGrants(context, conn, request, names);
  if (failure || grants instanceof RowcastError || conn.closed) {
    for (const seam of seams) seam.cancel();
    if (failure) throw (failure as PromiseRejectedResult).reason;
    if (grants instanceof RowcastError) throw grants;
    return null;
  }
  const resumed = seams.every((seam) => seam.resumed);
  const missed = seams.flatMap((seam) => (resumed ? seam.finish() : (seam.cancel(), [])));
  if (seams.length > 1) missed.sort((a, b) => (a.seq < b.seq ? -1 : 1));
  return answerWithReplay(context, ws, conn, request, names, grants!, resumed ? missed.map((event) => event.frame('new-message')) : null);
}

/**
 * Subscribes, answers and sends the missed frames in one synchronous step,
 * so the first live event follows them with nothing between and nothing
 * twice. `frames` is `null` when the client cannot be resumed; so are more
 * frames than `maxReplayBytes` (the socket would be closed as a slow
 * consumer, again on every retry). Either way the answer says `resumed`.
 */
function answerWithReplay(
  context: HandlerContext,
  ws: WebSocket<Connection>,
  conn: Connection,
  request: RequestOf<'subscribe'>,
  names: string[],
  grants: readonly Grant[],
  frames: string[] | null,
): typeof ANSWERED | null {
  if (conn.closed) return null;
  let bytes = 0;
  for (const frame of frames ?? []) bytes += Buffer.byteLength(frame);
  const missed = frames !== null && bytes <= context.maxReplayBytes ? frames : null;
  // Checked again here, in the step that subscribes: other requests may have subscribed while this one waited.
  admit(context, conn, grants);
  for (const { topic, partitions, group } of grants) context.index.subscribe(ws, topic.name, group, partitions);
  ws.cork(() => {
    const data: ResponseData['subscribe'] = { topics: names, resumed: missed !== null, seq: context.window.position };
    ws.send(encodeFrame(responseFrame(request, data)), false);
    for (const frame of missed ?? []) ws.send(frame, false);
  });
  return ANSWERED;
}

/** A topic granted to a subscribe request: what to subscribe and how. */
interface Grant {
  readonly topic: TableTopic | CustomTopic;
  readonly partitions: readonly string[];
  readonly group: GroupSpec;
}

/**
 * Checks a subscribe request against the registry as it is now, all or
 * nothing: every name readable, filters valid. Returns the grants, or the
 * error to answer (an unknown name as `TOPIC_NOT_FOUND`, for the caller to
 * retry after catching up); coded errors other than that are thrown. The
 * limits are checked by {@link admit}, in the step that subscribes.
 */
function checkGrants(context: HandlerContext, conn: Connection, request: RequestOf<'subscribe'>, names: readonly string[]): Grant[] | RowcastError {
  const { filter, events } = request.attributes;
  const grants: Grant[] = [];
  for (const name of names) {
    const topic = topicNamed(context, name);
    const partitions = topic ? grantOf(topic, conn) : null;
    if (!topic || !partitions) return new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(name)}`);
    if (topic.kind === 'custom' && (filter !== undefined || events !== undefined)) {
      throw new RowcastError('INVALID_ATTRIBUTES', `filter and events apply to table topics only, not ${topic.name}`);
    }
    grants.push({ topic, partitions, group: topic.kind === 'table' ? subscriptionGroup(topic, filter, events, context.limits) : PLAIN_GROUP });
  }
  admit(context, conn, grants);
  return grants;
}

/**
 * Whether the grants fit every limit as things stand: subscriptions of the
 * connection (`MAX_SUBSCRIPTIONS`) and of its user over all its connections
 * (`MAX_SUBSCRIPTIONS_PER_USER`), filtered subscriptions of the connection
 * (`MAX_FILTER_GROUPS_PER_CONNECTION`), distinct filter groups per topic
 * (`MAX_FILTER_GROUPS_PER_TOPIC`) and per audience partition, which is
 * what one event costs (`MAX_FILTER_GROUPS_PER_PARTITION`), and each custom topic's
 * `maxSubscribers`. Synchronous, so that the check and the subscription it
 * allows happen in one step and concurrent subscribes cannot over-admit.
 */
function admit(context: HandlerContext, conn: Connection, grants: readonly Grant[]): void {
  const { index, limits, maxSubscriptions } = context;
  const added = grants.filter(({ topic }) => !conn.subscriptions.has(topic.name)).length;
  if (conn.subscriptions.size + added > maxSubscriptions) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${maxSubscriptions} subscriptions per connection (MAX_SUBSCRIPTIONS)`);
  }
  const sub = conn.principal.sub;
  if (sub !== null && added > 0 && index.subscriptionsOf(sub) + added > limits.maxSubscriptionsPerUser) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${limits.maxSubscriptionsPerUser} subscriptions per user over all connections (MAX_SUBSCRIPTIONS_PER_USER)`);
  }
  const replaced = new Set(grants.map(({ topic }) => topic.name));
  let filtered = grants.filter(({ group }) => group.key !== '').length;
  for (const [name, subscription] of conn.subscriptions) if (!replaced.has(name) && subscription.group.key !== '') filtered++;
  if (filtered > limits.maxFilterGroupsPerConnection) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${limits.maxFilterGroupsPerConnection} filtered subscriptions per connection (MAX_FILTER_GROUPS_PER_CONNECTION)`);
  }
  for (const { topic, group, partitions } of grants) {
    if (group.key === '') continue;
    // A group this connection alone holds is freed by the replacement: it does not count.
    const own = conn.subscriptions.get(topic.name);
    const freed = own !== undefined && own.group.key !== '' && own.group.key !== group.key && index.groupSize(topic.name, own.group.key) === 1 ? own : null;
    if (!index.hasGroup(topic.name, group.key) && index.groupCount(topic.name) - (freed ? 1 : 0) >= limits.maxFilterGroupsPerTopic) {
      throw new RowcastError('LIMIT_EXCEEDED', `topic ${topic.name} has ${limits.maxFilterGroupsPerTopic} distinct filters (MAX_FILTER_GROUPS_PER_TOPIC): use one of them, or no filter`);
    }
    for (const partition of partitions) {
      const holders = index.groupsIn(topic.name, partition);
      if (!holders || index.holds(topic.name, partition, group.key)) continue;
      const count = holders.size - (freed && freed.partitions.includes(partition) && holders.get(freed.group) === 1 ? 1 : 0);
      if (count >= limits.maxFilterGroupsPerPartition) {
        throw new RowcastError(
          'LIMIT_EXCEEDED',
          `${limits.maxFilterGroupsPerPartition} distinct filters already read these rows of ${topic.name}, each run for every event of them (MAX_FILTER_GROUPS_PER_PARTITION): use one of them, or no filter`,
        );
      }
    }
  }
  for (const { topic } of grants) {
    if (topic.kind !== 'custom' || topic.maxSubscribers === null || conn.subscriptions.has(topic.name)) continue;
    if (index.stats(topic.name).subscribers >= topic.maxSubscribers) {
      throw new RowcastError('TOPIC_FULL', `topic ${topic.name} has its ${topic.maxSubscribers} subscribers`);
    }
  }
}

/** The group of a subscription: its filter compiled for the topic's columns (within the filter limits), and its events. */
function subscriptionGroup(
  topic: TableTopic,
  filter: RequestOf<'subscribe'>['attributes']['filter'],
  events: readonly EventKind[] | undefined,
  limits: ClientLimits,
): GroupSpec {
  const compiled = filter === undefined || Object.keys(filter).length === 0 ? null : compileRowFilter(filter, topic.columns, limits.filter);
  const kinds = events === undefined || new Set(events).size === 3 ? null : new Set(events);
  if (compiled === null && kinds === null) return PLAIN_GROUP;
  const key = JSON.stringify([compiled?.key ?? null, kinds ? [...kinds].sort() : null]);
  return { key, test: compiled?.test ?? null, events: kinds };
}

function unsubscribe(context: HandlerContext, ws: WebSocket<Connection>, _conn: Connection, request: RequestOf<'unsubscribe'>): ResponseData['unsubscribe'] {
  const removed = splitNames(request.attributes.topicName).filter((name) => context.index.unsubscribe(ws, name));
  return { topics: removed };
}

function listTopics(context: HandlerContext, _ws: WebSocket<Connection>, conn: Connection): ResponseData['list-topic'] {
  const tables = context.registry
    .list()
    .filter((topic) => grantOf(topic, conn) !== null)
    .map(summary);
  const custom = context.registry
    .customTopics()
    .filter((topic) => grantOf(topic, conn) !== null)
    .map((topic) => ({ name: topic.name, kind: topic.kind, description: topic.description, subscribers: context.index.stats(topic.name).subscribers }));
  return { topics: [...tables, ...custom].sort((a, b) => a.name.localeCompare(b.name)) };
}

function getTopic(context: HandlerContext, _ws: WebSocket<Connection>, conn: Connection, request: RequestOf<'get-topic'>): ResponseData['get-topic'] {
  const topic = topicNamed(context, request.attributes.topicName);
  if (!topic || grantOf(topic, conn) === null) {
    throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(request.attributes.topicName)}`);
  }
  return topic.kind === 'table' ? describe(topic) : describeCustom(topic, context.index.stats(topic.name).subscribers);
}

/**
 * `refresh-token`: replaces the connection's token before it expires (the
 * connection is closed with 4001 at `exp` otherwise). The new token must be
 * for the same `sub`: a different user reconnects. Subscriptions the new
 * token reads differently (lost access, other groups, lost admin) are
 * revoked, each with a `subscription` frame, since the client's cache was
 * built under the old rights; the others go on untouched.
 */
function refreshToken(context: HandlerContext, ws: WebSocket<Connection>, conn: Connection, request: RequestOf<'refresh-token'>): ResponseData['refresh-token'] {
  const principal = context.verifyToken(request.attributes.token);
  if (principal.sub !== conn.principal.sub) {
    throw new RowcastError('FORBIDDEN', 'refresh-token must be for the same sub as the connection; connect again to change users');
  }
  conn.principal = principal;
  context.tokenRefreshed(ws);
  const revoked: string[] = [];
  for (const [name, subscription] of [...conn.subscriptions]) {
    const topic = topicNamed(context, name);
    const partitions = topic ? grantOf(topic, conn) : null;
    if (partitions !== null && samePartitions(partitions, subscription.partitions)) continue;
    context.index.unsubscribe(ws, name);
    revoked.push(name);
    ws.cork(() =>
      ws.send(
        encodeFrame({
          type: 'subscription',
          topic: name,
          status: 'revoked',
          reason: partitions === null ? 'the new token does not allow reading this topic' : 'the new token reads this topic differently: subscribe again and refetch',
        }),
        false,
      ),
    );
  }
  return { sub: principal.sub, role: principal.role, expiresAt: principal.expiresAt === null ? null : new Date(principal.expiresAt).toISOString(), revoked };
}

function samePartitions(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((partition) => b.includes(partition));
}

function summary(topic: TableTopic): TableTopicSummary {
  return { name: topic.name, kind: topic.kind, schema: topic.schema, table: topic.table, read: topic.policy.read };
}

function describe(topic: TableTopic): TableTopicDetail {
  return { ...summary(topic), primaryKey: topic.primaryKey, columns: topic.columns };
}

/** `"order, document,order"` → `['order', 'document']`. */
function splitNames(list: string): string[] {
  return [...new Set(list.split(',').map((n) => n.trim()).filter((n) => n.length > 0))];
}
