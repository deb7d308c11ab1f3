import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeStatus } from './node-status.js';
import type { SlotReading } from '../replication/slot-monitor.js';
import { httpRoute } from './http-route.js';
import type { OperatorAccess } from './operator-access.js';

/** What `/metrics` reads on each scrape. */
export interface MetricSources {
  readonly status: () => NodeStatus;
  readonly eventsByTopic: () => ReadonlyMap<string, number>;
  readonly slot: () => SlotReading | null;
  /** Who may scrape (operators: `METRICS_TOKEN` or an admin JWT, unless `STATUS_PUBLIC`). */
  readonly access: OperatorAccess;
  readonly logger: Logger;
}

/**
 * `GET /metrics` (Prometheus text, `prom-client`), for operators: process defaults (CPU,
 * memory, event-loop lag) and rowcast's own gauges, read from the same
 * sources as `/status` when scraped, so nothing is counted twice on the hot
 * path. Returns the function that mounts the route on an app (ws:// and
 * wss:// share one registry).
 */
export function createMetrics(sources: MetricSources): (app: TemplatedApp) => void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rowcast_process_' });
  deliveryMetrics(registry, sources);
  replicationMetrics(registry, sources);
  clusterMetrics(registry, sources);
  return (app) =>
    app.get(
      '/metrics',
      httpRoute(sources.logger, 'metrics', async (req, reply) => {
        const refusal = sources.access(req.getHeader('authorization'));
        if (refusal) return reply.error(refusal);
        const text = await registry.metrics();
        reply.send('200 OK', registry.contentType, text);
      }),
    );
}

/** A gauge read when scraped; `null`/`undefined` leaves it without a value. */
function gauge(registry: Registry, name: string, help: string, read: () => number | null | undefined): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const value = read();
      if (value === null || value === undefined) this.reset();
      else this.set(value);
    },
  });
}

/** A counter that follows a total read when scraped. */
function counter(registry: Registry, name: string, help: string, read: () => number): void {
  let last = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const value = read();
      this.inc(Math.max(0, value - last));
      last = value;
    },
  });
}

function deliveryMetrics(registry: Registry, sources: MetricSources): void {
  const status = () => sources.status();
  const byTopic = new Map<string, number>();
  new Counter({
    name: 'rowcast_events_total',
    help: 'Events routed, by topic (table or custom topic).',
    labelNames: ['topic'],
    registers: [registry],
    collect() {
      for (const [topic, count] of sources.eventsByTopic()) {
        this.inc({ topic }, Math.max(0, count - (byTopic.get(topic) ?? 0)));
        byTopic.set(topic, count);
      }
    },
  });
  gauge(registry, 'rowcast_subscriptions', 'Subscriptions held, over all topics.', () =>
    [...status().topics, ...status().customTopics].reduce((sum, t) => sum + t.subscribers, 0),
  );
  gauge(registry, 'rowcast_connections', 'Open connections, every door together.', () => status().connections);
  new Gauge({
    name: 'rowcast_door_connections',
    help: 'Open connections by door (live, phoenix, supabase).',
    labelNames: ['door'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [door, count] of Object.entries(status().connectionsByDoor)) this.set({ door }, count);
    },
  });
  counter(registry, 'rowcast_events_published_total', 'Events routed to subscribers.', () => status().eventsPublished);
  counter(registry, 'rowcast_events_dropped_total', 'Changes that could not be serialized and were not delivered (admins got EVENT_DROPPED).', () => status().eventsDropped);
  counter(registry, 'rowcast_deliveries_total', 'Frames handed to sockets (one event to 100 subscribers counts 100).', () => status().deliveries);
  counter(registry, 'rowcast_slow_consumers_closed_total', 'Connections closed with 1013 for a full send buffer.', () => status().slowConsumersClosed);
  counter(registry, 'rowcast_rate_limited_requests_total', 'Frames refused with RATE_LIMIT_EXCEEDED.', () => status().rateLimited.refused);
  counter(registry, 'rowcast_rate_limit_closes_total', 'Connections closed with 1008 for flooding while limited.', () => status().rateLimited.closed);
  gauge(registry, 'rowcast_replay_window_events', 'Events held for subscribe with since.', () => status().replayWindowEvents);
  gauge(registry, 'rowcast_presences', 'Presences (metas) on every topic, over the cluster as this node holds them.', () => status().presence.presences);
  gauge(registry, 'rowcast_snapshots_running', 'Snapshots (and aggregates’ initial counts) being read now (at most SNAPSHOT_CONCURRENCY).', () => status().snapshots.running);
  gauge(registry, 'rowcast_snapshots_waiting', 'Snapshots waiting for a SNAPSHOT_CONCURRENCY slot.', () => status().snapshots.waiting);
  gauge(registry, 'rowcast_presences_own', "Presences of this node's own connections.", () => status().presence.own);
}

function replicationMetrics(registry: Registry, sources: MetricSources): void {
  const replication = () => sources.status().replication;
  gauge(registry, 'rowcast_replication_lag_seconds', 'Age of the last transaction handed off while the stream is behind (0 when caught up).', () => {
    const slot = sources.slot();
    const last = replication().lastCommitTime;
    if (!slot || slot.lagBytes === 0 || last === null) return 0;
    return Math.max(0, (Date.now() - Date.parse(last)) / 1000);
  });
  gauge(registry, 'rowcast_replication_connected', '1 while the replication stream is up.', () => (replication().connected ? 1 : 0));
  counter(registry, 'rowcast_replication_reconnects_total', 'Times the replication stream was re-opened.', () => replication().reconnects);
  counter(registry, 'rowcast_replication_changes_total', 'Row changes read from the slot.', () => replication().changes);
  gauge(registry, 'rowcast_replication_outage_seconds', 'How long the replication stream has been down (0 while up).', () => replication().outage?.seconds ?? 0);
  gauge(registry, 'rowcast_replication_lag_bytes', 'Committed WAL not yet handed off by this node.', () => sources.slot()?.lagBytes);
  gauge(registry, 'rowcast_replication_slot_retained_wal_bytes', 'WAL Postgres keeps for the slot (capped by max_slot_wal_keep_size).', () => sources.slot()?.retainedWalBytes);
}

function clusterMetrics(registry: Registry, sources: MetricSources): void {
  const cluster = () => sources.status().cluster;
  gauge(registry, 'rowcast_cluster_leader', 'Cluster mode: 1 on the node that reads the slot, 0 on the others.', () => {
    const c = cluster();
    return c ? (c.role === 'leader' ? 1 : 0) : undefined;
  });
  gauge(registry, 'rowcast_cluster_lag_bytes', 'Cluster mode: WAL the leader has handed off that this node has not routed yet.', () => cluster()?.lagBytes);
  gauge(registry, 'rowcast_cluster_redis_connected', 'Cluster mode: 1 while this node reaches Redis.', () => {
    const c = cluster();
    return c ? (c.redisConnected ? 1 : 0) : undefined;
  });
  counter(registry, 'rowcast_cluster_gaps_total', 'Cluster mode: times this node found cluster-stream entries gone before it read them.', () => cluster()?.gaps ?? 0);
}
