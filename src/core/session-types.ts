import type { Principal } from '../auth/principal.js';
import type { FrameEncoder } from '../events/event.js';
import type { AggregateSpec, CloseCode, DirectFrame, EventKind, FilterSpec, ResponseData } from '../protocol/index.js';
import type { Row } from '../replication/transaction.js';
import type { TableTopic } from '../topics/topic-registry.js';

/*
 * The types sessions, subscriptions and doors share: a leaf of core/ that
 * imports nothing of it, so that the modules working on sessions import it
 * and not each other.
 */

/**
 * What the core needs from one connection of a door: it subscribes the
 * socket to uWS topics (events then reach it by uWS's native fan-out), tells
 * it when the server ends a subscription or the connection, and reads its
 * send buffer for flow control.
 */
export interface SessionPort {
  /** The door's name (`live`, …), for /status and the admin API. */
  readonly door: string;
  subscribeTopic(uwsTopic: string): void;
  unsubscribeTopic(uwsTopic: string): void;
  /** Bytes the socket has not sent yet. */
  bufferedBytes(): number;
  /** The server ended `handle` (a policy or token change, a destroyed topic): the door tells its client. */
  revoked(handle: SubscriptionHandle, reason: string): void;
  /** Closes the connection (the door maps the code onto its protocol). */
  close(code: CloseCode, reason: string): void;
  /** Sends a `direct` frame to this connection alone (the admin API's and the host's message to one connection); absent on doors without one. */
  direct?(frame: DirectFrame): void;
  /** Runs `publish` with this socket out of `uwsTopic`, so that what it publishes reaches every subscriber but this one (a message back to its sender, Supabase's `self: false`). */
  publishWithout?(uwsTopic: string, publish: () => void): void;
}

/** Who a session is, for /status, logs and the admin API. */
export interface SessionInfo {
  readonly id: string;
  /** The `client=` name the connection gave, or `''`. */
  readonly client: string;
}

/** The state of a session that the core's operations read and change (`Session` in session.ts implements it). */
export interface SessionState extends SessionInfo {
  readonly port: SessionPort;
  /** Who the session acts for: replaced by `refresh-token`. */
  principal: Principal;
  readonly handles: Set<SubscriptionHandle>;
  /**
   * The sessions that share this one's connection, itself included: one,
   * unless a door acts for several users on one socket (the Supabase door
   * has a session per channel, each with its channel's token). Per-connection
   * limits count their subscriptions together.
   */
  readonly connection: Iterable<SessionState>;
  readonly closed: boolean;
  /** Flow control's bookkeeping (see BackpressureGauge). */
  congestedSince: number;
  congestedBytes: number;
  drainedAt: number;
  /** Subscribes the socket to `uwsTopic` (counted: several handles may share one). */
  holdTopic(uwsTopic: string): void;
  releaseTopic(uwsTopic: string): void;
}

/** How a subscription sees a topic's rows: one filter and one `events` choice, identified by a canonical key. */
export interface GroupSpec {
  /** `''` for no filter and every event. */
  readonly key: string;
  /** `null`: every row passes. */
  readonly test: ((row: Row) => boolean) | null;
  /** `null`: every kind of event. */
  readonly events: ReadonlySet<EventKind> | null;
}

/** The spec of subscriptions without filter or `events`. */
export const NO_FILTER: GroupSpec = Object.freeze({ key: '', test: null, events: null });

/**
 * A set of subscriptions that see a topic's rows the same way and take the
 * same frames: one filter, one `events` choice, one door's encoder. They all
 * share the group's uWS topics (one per audience partition), so the filter
 * runs once per event for the whole group. A group gets a short `id` when it
 * is made: its uWS topics are `<partition>#<id>`, so the per-event path never
 * builds or copies the (possibly long) filter key. The plain group of the
 * default encoder (`/live` without filter) has the id `''` and uses the bare
 * partition names.
 */
export interface SubscriptionGroup extends GroupSpec {
  readonly id: string;
  readonly encoder: FrameEncoder;
}

/**
 * One subscription of one session to one topic: what a door holds and
 * gives back to unsubscribe. `/live` keeps one per topic per connection; a
 * door may hold several on one topic.
 */
export interface SubscriptionHandle {
  readonly session: SessionState;
  readonly topic: string;
  readonly group: SubscriptionGroup;
  /** The audience partitions granted. */
  readonly partitions: readonly string[];
}

/** A subscription a door asks for. */
export interface SubscribeRequest {
  /** One or more topic names: all are subscribed, or none. */
  readonly topics: readonly string[];
  readonly filter?: FilterSpec;
  readonly events?: readonly EventKind[];
  /** The `seq` (with `/part`) of the last frame the client saw: what it missed is replayed. */
  readonly since?: string;
  /** How the door's frames are made (the router publishes what it encodes). */
  readonly encoder: FrameEncoder;
  /** Only topics of this kind (a door whose topic names say the kind, such as Phoenix's `table:`/`topic:`); others are TOPIC_NOT_FOUND. */
  readonly kind?: 'table' | 'custom';
  /** The subscription each topic's new one replaces, ended in the same step (`/live`: subscribing again replaces). */
  readonly replaces?: (topic: string) => SubscriptionHandle | undefined;
  /** Rows first (one table topic; see snapshot.ts): where the door sends the answer and the pages before the subscription goes live. */
  readonly snapshot?: SnapshotSink;
  /** Counts instead of events (one table topic; see aggregate.ts): what to count, and where the answer and the count frames go. */
  readonly aggregate?: { readonly spec: AggregateSpec; readonly sink: SnapshotSink };
}

/**
 * Where a snapshot goes before its subscription is live: the answer first,
 * then every page but the last (the last one, and the changes committed
 * meanwhile, come in `commit`'s replay, in the step that makes the
 * subscription live).
 */
export interface SnapshotSink {
  answered(answer: ResponseData['subscribe']): void;
  /** Sends a frame: a snapshot's page, or an aggregate's counts (at any time while it lasts). */
  page(frame: string): void;
  /** The snapshot failed after its answer: the subscription the client was told of does not exist (the door tells it, as for a revoked one). */
  failed(topic: string, reason: string): void;
}

/** A table topic granted to a snapshot subscription (an admission `Grant` of a table). */
export interface SnapshotGrant {
  readonly topic: TableTopic;
  readonly partitions: readonly string[];
  readonly group: GroupSpec;
}

/** Makes a snapshot's subscription live, with the frames `framesAt` gives for its start position. */
export type GoLive = (framesAt: (seq: string) => Pick<Subscribed, 'answer' | 'replay'>) => readonly SubscriptionHandle[];

/** What runs `subscribe` with `snapshot` (snapshot.ts's `Snapshots`). */
export interface SnapshotService {
  /** Reads the snapshot into `request.snapshot` (the sink), then calls `goLive`; throws a coded error while nothing was answered. */
  subscribe(session: SessionState, request: SubscribeRequest, grant: SnapshotGrant, goLive: GoLive): Promise<void>;
  /** The same for an aggregate subscription: its state, then its diffs until the subscription ends ({@link ended}). */
  aggregate(session: SessionState, request: SubscribeRequest, grant: SnapshotGrant, goLive: GoLive): Promise<void>;
  /** A subscription ended (an aggregate's counting stops). */
  ended(handle: SubscriptionHandle): void;
  stats(): SnapshotStats;
}

/** What /status reports of snapshots: being read, waiting for a slot, live aggregate subscriptions. */
export interface SnapshotStats {
  readonly running: number;
  readonly waiting: number;
  readonly aggregates: number;
  /** Rows they keep by id (tables without `REPLICA IDENTITY FULL`), against `AGGREGATE_MAX_ROWS`. */
  readonly aggregateRows: number;
}

/** What a subscribe made: the handles, the answer, and the frames missed since `since` (sent right after the answer). */
export interface Subscribed {
  readonly handles: readonly SubscriptionHandle[];
  /** `null` after a snapshot (the answer went first, to {@link SnapshotSink.answered}); `replay` then begins with the last page. */
  readonly answer: ResponseData['subscribe'] | null;
  readonly replay: readonly string[];
}

