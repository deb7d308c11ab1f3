import { hostname } from 'node:os';
import type { RowcastCore } from '../core/rowcast-core.js';
import type { DoorCounters } from '../doors/door-counters.js';
import type { NodeHealth, NodeStatus } from '../http/node-status.js';
import type { SlotMonitor } from '../replication/slot-monitor.js';
import { VERSION } from '../version.js';
import type { Pipeline } from './pipeline.js';
import { uwsEngine } from './uws-engine.js';

/** What a node's status is read from. */
export interface StatusSources {
  readonly core: RowcastCore;
  readonly pipeline: Pipeline;
  readonly slotMonitor: SlotMonitor;
  readonly doors: readonly DoorCounters[];
  readonly startedAt: number;
}

/** The `/status` document, read from the parts as they are now (nothing is counted twice on the hot path). */
export function nodeStatus({ core, pipeline, slotMonitor, doors, startedAt }: StatusSources): NodeStatus {
  const { registry } = pipeline;
  const connectionsByDoor: Record<string, number> = {};
  for (const session of core.sessions) connectionsByDoor[session.port.door] = (connectionsByDoor[session.port.door] ?? 0) + 1;
  const rateLimited = { refused: 0, closed: 0 };
  for (const door of doors) {
    rateLimited.refused += door.rateLimited().refused;
    rateLimited.closed += door.rateLimited().closed;
  }
  return {
    version: VERSION,
    nodeId: `${hostname()}:${process.pid}`,
    engine: uwsEngine,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    connections: core.sessions.size,
    connectionsByDoor,
    eventsPublished: core.counters.count,
    eventsDropped: core.counters.dropped,
    deliveries: core.counters.deliveries,
    slowConsumersClosed: core.slowConsumersClosed(),
    rateLimited,
    replication: { ...pipeline.source.state(), slot: slotMonitor.reading },
    cluster: pipeline.cluster?.clusterState() ?? null,
    replayWindowEvents: pipeline.window.size,
    topics: registry.list().map((t) => ({ name: t.name, read: t.policy.read, ...core.topicStats(t.name) })),
    customTopics: registry.customTopics().map((t) => ({ name: t.name, history: t.history, subscribers: core.topicStats(t.name).subscribers })),
    presence: core.presence.stats(),
    snapshots: core.snapshotStats(),
  };
}

/** `/health`: 200 while the database answers, the stream is connected and (in a cluster) Redis answers. */
export function nodeHealth({ pipeline, slotMonitor }: Pick<StatusSources, 'pipeline' | 'slotMonitor'>): NodeHealth {
  const failing = [
    ...(slotMonitor.databaseUp ? [] : ['database']),
    ...(pipeline.source.state().connected ? [] : ['replication']),
    ...(pipeline.cluster && !pipeline.cluster.clusterState().redisConnected ? ['redis'] : []),
  ];
  return { ok: failing.length === 0, failing };
}
