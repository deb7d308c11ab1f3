import type { ClusterState } from '../cluster/cluster-node.js';
import type { ReplicationState } from '../replication/replication-stream.js';
import type { SlotReading } from '../replication/slot-monitor.js';

/** The `/status` document: one node's state, for operators. */
export interface NodeStatus {
  readonly version: string;
  /** This process among the nodes that may share the database: `host:pid`. */
  readonly nodeId: string;
  /** Which uWebSockets.js implementation runs: `native`, or its slow JavaScript fallback. */
  readonly engine: 'native' | 'javascript-fallback';
  readonly uptimeSeconds: number;
  /** Open connections, all doors together, and by door. */
  readonly connections: number;
  readonly connectionsByDoor: Readonly<Record<string, number>>;
  readonly eventsPublished: number;
  /** Events that could not be serialized and went to no one (admins got EVENT_DROPPED). */
  readonly eventsDropped: number;
  /** Frames handed to sockets. */
  readonly deliveries: number;
  readonly slowConsumersClosed: number;
  /** Frames refused by the rate limiter, and connections closed with 1008 for going on. */
  readonly rateLimited: { readonly refused: number; readonly closed: number };
  readonly replication: ReplicationState & { readonly slot: SlotReading | null };
  /** This node's part in the cluster (`REDIS_URL` set), else null. */
  readonly cluster: ClusterState | null;
  /** Events held for `subscribe` with `since` (at most `HISTORY_EVENTS`). */
  readonly replayWindowEvents: number;
  readonly topics: Array<{ name: string; read: string; subscribers: number; filterGroups: number }>;
  readonly customTopics: Array<{ name: string; history: number; subscribers: number }>;
  /** Presence: topics with someone present, presences (metas) over the cluster as this node holds them, this node's own, and nodes holding any. */
  readonly presence: { readonly topics: number; readonly presences: number; readonly own: number; readonly nodes: number };
  /** Snapshots (and aggregates' initial counts) being read, waiting for one of `SNAPSHOT_CONCURRENCY` slots, and live aggregate subscriptions. */
  readonly snapshots: { readonly running: number; readonly waiting: number; readonly aggregates: number; readonly aggregateRows: number };
}

/** What `/health` says: up, or which dependencies are down. */
export interface NodeHealth {
  readonly ok: boolean;
  readonly failing: string[];
}
