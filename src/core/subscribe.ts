import { RowcastError } from '../errors.js';
import { parseSince } from '../events/seq.js';
import { adminPartition } from '../policies/audience-partitions.js';
import { visibleColumns } from '../policies/read-policy.js';
import { compileRowFilter } from '../policies/row-filter.js';
import { INBOX_TOPIC, type EventKind } from '../protocol/index.js';
import type { TableTopic } from '../topics/topic-registry.js';
import { admit, type Grant } from './admission.js';
import type { CoreContext } from './core-context.js';
import { frameSource } from './frame-source.js';
import { NO_FILTER, type GroupSpec, type SessionState, type SnapshotGrant, type SubscribeRequest, type Subscribed, type SubscriptionHandle } from './session-types.js';
import { grantOf, topicNamed } from './topic-access.js';

/**
 * Subscribes `session` to every named topic or, if any is unknown or not
 * readable, to none (`TOPIC_NOT_FOUND`). Live only once the stream has
 * routed every commit made before the request: a row committed after the
 * answer is never missed, and none committed before it arrives as news. With
 * `since`, what the client missed is replayed — from the replay window for
 * tables, from `rowcast.messages` for custom topics with history — or the
 * answer says `resumed: false` (too far back, an ephemeral topic, a changed
 * read rule): the client must refetch.
 */
export async function subscribe(context: CoreContext, session: SessionState, request: SubscribeRequest, commit: (subscribed: Subscribed) => void): Promise<void> {
  const since = request.since === undefined ? undefined : parseSince(request.since);
  await context.streamCaughtUp();
  let grants = resolveGrants(context, session, request);
  if (grants instanceof RowcastError) {
    await context.catchUp();
    grants = resolveGrants(context, session, request);
  }
  if (grants instanceof RowcastError) throw grants;
  await askHooks(context, session, request, grants);
  admit(context, session, grants, request);
  if (request.aggregate) return aggregateOf(context, session, request, grants, commit)();
  const fresh = request.snapshot ? snapshotOf(context, session, request, grants, commit) : (frames: null) => live(context, session, request, grants, frames, commit);
  if (since === undefined) return fresh(null);
  if (!(await context.streamPassed(since.seq))) return fresh(null);
  if (grants.every(({ topic }) => topic.kind === 'custom' && topic.history > 0)) {
    return resumeFromMessages(context, session, request, since.seq, commit);
  }
  // Ephemeral topics keep nothing to replay; tables (with stored messages beside them) replay from the window.
  const frames = grants.some(({ topic }) => topic.kind === 'custom' && topic.history === 0)
    ? null
    : context.window.replay(since, new Map(grants.map((grant) => [grant.topic.name, frameSource(grant, request.encoder)])));
  if (request.snapshot && (frames === null || replayBytes(frames) > context.maxReplayBytes)) return fresh(null);
  return live(context, session, request, grants, frames, commit);
}

/** The host's `onSubscribe` (library mode), once per topic, after the read policies allowed it: its refusal is the answer. */
async function askHooks(context: CoreContext, session: SessionState, request: SubscribeRequest, grants: readonly Grant[]): Promise<void> {
  const { filter, events, since, snapshot, aggregate } = request;
  const asked = {
    connection: session.id,
    ...(filter !== undefined ? { filter } : {}),
    ...(events !== undefined ? { events } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(snapshot !== undefined ? { snapshot: true } : {}),
    ...(aggregate !== undefined ? { aggregate: aggregate.spec } : {}),
  };
  for (const { topic } of grants) {
    const refusal = await context.hooks.subscribe(session.principal, topic.name, asked);
    if (refusal) throw new RowcastError(refusal.code, refusal.message);
  }
}

/**
 * `snapshot: true`: the subscription goes live after a snapshot of its rows
 * (snapshot.ts). With `since`, only when the client cannot be resumed.
 */
function snapshotOf(context: CoreContext, session: SessionState, request: SubscribeRequest, grants: readonly Grant[], commit: (subscribed: Subscribed) => void): (frames: null) => Promise<void> {
  const table = tableGrant(context, request, grants, 'snapshot');
  const snapshots = context.snapshots!;
  return () => snapshots.subscribe(session, request, table, (framesAt) => goLive(context, session, request, grants, commit, framesAt));
}

/**
 * `aggregate`: counts of the rows the subscription would see instead of its
 * events (snapshot.ts). Its subscription is a real one (limits, revocation,
 * unsubscribe) whose group takes no event frames; `since` is not needed,
 * the first frame is the whole state.
 */
function aggregateOf(context: CoreContext, session: SessionState, request: SubscribeRequest, grants: readonly Grant[], commit: (subscribed: Subscribed) => void): () => Promise<void> {
  const table = tableGrant(context, request, grants, 'aggregate');
  const { groupBy } = request.aggregate!.spec;
  if (request.snapshot) throw new RowcastError('INVALID_ATTRIBUTES', 'aggregate and snapshot: one or the other');
  const columns = visibleColumns(table.topic.columns, table.topic.policy, table.partitions.includes(adminPartition(table.topic.name)));
  if (groupBy !== undefined && !columns.some((column) => column.name === groupBy)) {
    throw new RowcastError('INVALID_ATTRIBUTES', `aggregate.groupBy: ${table.topic.name} has no column ${JSON.stringify(groupBy)}`);
  }
  const counting: Grant = { ...table, group: { key: JSON.stringify(['aggregate', table.group.key, groupBy ?? null]), test: table.group.test, events: NO_EVENTS } };
  admit(context, session, [counting], request);
  const snapshots = context.snapshots!;
  return () => snapshots.aggregate(session, request, table, (framesAt) => goLive(context, session, request, [counting], commit, framesAt));
}

/** The one table topic a snapshot or an aggregate reads, or the coded error saying why there is none. */
function tableGrant(context: CoreContext, request: SubscribeRequest, grants: readonly Grant[], what: 'snapshot' | 'aggregate'): SnapshotGrant {
  if (grants.length !== 1) throw new RowcastError('INVALID_ATTRIBUTES', `${what}: one table topic at a time`);
  const { topic, partitions, group } = grants[0]!;
  if (topic.kind === 'custom') throw new RowcastError('SNAPSHOT_UNSUPPORTED', `${topic.name} is a custom topic: it has messages, not rows (read them with history)`);
  const encodes = what === 'snapshot' ? request.encoder.encodeSnapshot : request.encoder.encodeAggregate;
  if (!encodes || !context.snapshots) throw new RowcastError('SNAPSHOT_UNSUPPORTED', `this connection cannot receive ${what}s`);
  return { topic, partitions, group };
}

/** An aggregate subscription's group takes no event frames. */
const NO_EVENTS: ReadonlySet<EventKind> = new Set();

function replayBytes(frames: readonly string[]): number {
  let bytes = 0;
  for (const frame of frames) bytes += Buffer.byteLength(frame);
  return bytes;
}

/**
 * Makes the subscriptions and hands them to `commit` in one synchronous
 * step (limits checked again in it: other requests may have subscribed while
 * this one waited). `frames` is `null` when the client cannot be resumed; so
 * are more frames than `maxReplayBytes` (the socket would be closed as a
 * slow consumer, again on every retry). Either way `resumed` says so when
 * `since` was given.
 */
function live(context: CoreContext, session: SessionState, request: SubscribeRequest, grants: readonly Grant[], frames: string[] | null, commit: (subscribed: Subscribed) => void): void {
  const replay = frames !== null && replayBytes(frames) <= context.maxReplayBytes ? frames : null;
  goLive(context, session, request, grants, commit, (seq) =>
    request.since === undefined
      ? { answer: { topics: [...request.topics], seq }, replay: [] }
      : { answer: { topics: [...request.topics], resumed: replay !== null, seq }, replay: replay ?? [] },
  );
}

/**
 * Makes the subscriptions of `grants` (limits checked again: other requests
 * may have subscribed while this one waited) and hands them to `commit` with
 * what `framesAt` gives for the position they start from, all in one
 * synchronous step. Nothing happens when the session closed meanwhile.
 */
function goLive(
  context: CoreContext,
  session: SessionState,
  request: SubscribeRequest,
  grants: readonly Grant[],
  commit: (subscribed: Subscribed) => void,
  framesAt: (seq: string) => Pick<Subscribed, 'answer' | 'replay'>,
): readonly SubscriptionHandle[] {
  if (session.closed) return [];
  admit(context, session, grants, request);
  const handles = grants.map(({ topic, partitions, group }) => {
    const replaced = request.replaces?.(topic.name);
    const handle = context.index.subscribe(session, topic.name, group, request.encoder, partitions);
    // After the new one is made: the socket keeps its uWS topics, and a presence on the topic stays.
    if (replaced) context.index.unsubscribe(replaced);
    return handle;
  });
  commit({ handles, ...framesAt(context.window.position) });
  return handles;
}

/**
 * `since` on custom topics with history (the stream has delivered every
 * commit made before the request): reads what each topic holds after
 * `since` from `rowcast.messages`, then goes live.
 */
async function resumeFromMessages(context: CoreContext, session: SessionState, request: SubscribeRequest, since: string, commit: (subscribed: Subscribed) => void): Promise<void> {
  const opened = await Promise.allSettled(
    request.topics.map((name) => {
      const topic = context.registry.custom(name);
      if (!topic) throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(name)}`);
      if (topic.name !== INBOX_TOPIC) return context.replay.open(topic, since);
      // The inbox: this user's direct messages only.
      const { sub } = session.principal;
      if (sub === null) throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(name)}`);
      return context.replay.open(topic, since, { recipient: sub, history: context.direct.history });
    }),
  );
  const seams = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failure = opened.find((result) => result.status === 'rejected');
  const grants = failure ? null : resolveGrants(context, session, request);
  if (failure || grants instanceof RowcastError || session.closed) {
    for (const seam of seams) seam.cancel();
    if (failure) throw (failure as PromiseRejectedResult).reason;
    if (grants instanceof RowcastError) throw grants;
    return;
  }
  const resumed = seams.every((seam) => seam.resumed);
  const missed = seams.flatMap((seam) => (resumed ? seam.finish() : (seam.cancel(), [])));
  if (seams.length > 1) missed.sort((a, b) => (a.seq < b.seq ? -1 : 1));
  const frames = resumed ? missed.map((event) => event.frameFor(request.encoder, 'new-message')) : null;
  live(context, session, request, grants!, frames, commit);
}

/**
 * The request's topics as they stand now: every name readable, filters
 * valid. Returns the grants, or `TOPIC_NOT_FOUND` for an unknown or
 * unreadable name (for the caller to retry after catching up); other coded
 * errors are thrown.
 */
function resolveGrants(context: CoreContext, session: SessionState, request: SubscribeRequest): Grant[] | RowcastError {
  const grants: Grant[] = [];
  for (const name of request.topics) {
    const topic = topicNamed(context.registry, name);
    const partitions = topic && (request.kind === undefined || topic.kind === request.kind) ? grantOf(topic, session.principal) : null;
    if (!topic || !partitions) return new RowcastError('TOPIC_NOT_FOUND', `no ${request.kind === 'custom' ? 'custom topic' : request.kind === 'table' ? 'table topic' : 'topic'} named ${JSON.stringify(name)}`);
    if (topic.kind === 'custom' && (request.filter !== undefined || request.events !== undefined)) {
      throw new RowcastError('INVALID_ATTRIBUTES', `filter and events apply to table topics only, not ${topic.name}`);
    }
    grants.push({ topic, partitions, group: topic.kind === 'table' ? groupSpec(context, topic, partitions, request) : NO_FILTER });
  }
  return grants;
}

/**
 * How a subscription sees a table: its filter compiled for the columns it
 * may see (a hidden column does not exist for non-admins), within the
 * filter limits, and its events.
 */
function groupSpec(context: CoreContext, topic: TableTopic, partitions: readonly string[], request: SubscribeRequest): GroupSpec {
  const { filter, events } = request;
  const columns = visibleColumns(topic.columns, topic.policy, partitions.includes(adminPartition(topic.name)));
  const compiled = filter === undefined || Object.keys(filter).length === 0 ? null : compileRowFilter(filter, columns, context.limits.filter);
  const kinds = events === undefined || new Set(events).size === 3 ? null : new Set(events);
  if (compiled === null && kinds === null) return NO_FILTER;
  const key = JSON.stringify([compiled?.key ?? null, kinds ? [...kinds].sort() : null]);
  return { key, test: compiled?.test ?? null, events: kinds };
}
