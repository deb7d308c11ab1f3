import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { ClusterNode } from '../cluster/cluster-node.js';
import { ClusterPipeline } from '../cluster/cluster-pipeline.js';
import type { Pacer } from '../core/backpressure-gauge.js';
import type { Event } from '../events/event.js';
import { EventBuilder } from '../events/event-builder.js';
import { valueParser } from '../events/value-parser.js';
import { InProcessEventLog } from '../log/in-process-event-log.js';
import { ReplayWindow } from '../log/replay-window.js';
import { WindowFloors } from '../log/window-floors.js';
import { minLsn, parseLsn, type Lsn } from '../replication/lsn.js';
import { ReplicationStream } from '../replication/replication-stream.js';
import { MessagePositions } from '../log/message-positions.js';
import type { CustomTopic, TopicRegistry } from '../topics/topic-registry.js';
import type { BootedDatabase } from './boot-database.js';

/** Where this node's events come from: the slot itself (one node), or the cluster stream. */
export type StreamSource = Pick<ReplicationStream, 'start' | 'stop' | 'state' | 'waitFor'>;

/** The data flow of docs/architecture.md up to the event log, for one node or a cluster node. */
export interface Pipeline {
  readonly registry: TopicRegistry;
  readonly log: InProcessEventLog;
  /** The last `HISTORY_EVENTS` events, for `since`. */
  readonly window: ReplayWindow;
  /** Stored messages whose position is not written back yet. */
  readonly positions: MessagePositions;
  readonly source: StreamSource;
  /** This node's part in a cluster (`REDIS_URL`), else `null`. */
  readonly cluster: ClusterNode | null;
  /** Keeps the replay window's floors across restarts (single node with a window; `null` otherwise). */
  readonly floors: WindowFloors | null;
  /** Hands an ephemeral topic's message to the log (through the cluster stream in a cluster). */
  publishEphemeral(topic: CustomTopic, sender: string | null, message: unknown, origin: string | null): Promise<Event>;
}

/** What the pipeline needs from the rest of the node. */
export interface PipelineNeeds {
  /** While it reports congestion, the stream stops reading. */
  readonly pacer: Pacer;
  /** A cluster-stream gap: every connection is closed so that clients resume (and learn what cannot be). */
  readonly disconnectAll: (reason: string) => void;
  readonly logger: Logger;
}

/**
 * Builds the pipeline: the event log, the replay window, the event builder
 * and the stream that feeds it — the slot itself on a single node, or with
 * `REDIS_URL` the cluster stream that the node holding the leader lock fills
 * from the slot (docs/cluster.md). Nothing runs until `source.start()`.
 */
export function buildPipeline(config: Config, database: BootedDatabase, needs: PipelineNeeds): Pipeline {
  const { logger } = needs;
  const { registry, startLsn, db, url } = database;
  const log = new InProcessEventLog();
  const positions = new MessagePositions({ db, logger });
  // In a cluster the window refills from the cluster stream, which has floors of its own.
  const restored = config.REDIS_URL === undefined && config.HISTORY_EVENTS > 0 ? database.restoredFloors : null;
  const window = new ReplayWindow({ log, capacity: config.HISTORY_EVENTS, startLsn, restored });
  registry.onPolicyChange((topic) => window.ruleChanged(topic));
  const builder = new EventBuilder({ registry, log, logger, startLsn, onStoredMessage: (event, commitLsn) => positions.record(event, commitLsn) });
  if (config.REDIS_URL === undefined) {
    const handedOff = (): Lsn => {
      const lsn = parseLsn(source.state().handedOffLsn);
      return lsn > startLsn ? lsn : startLsn;
    };
    const floors = config.HISTORY_EVENTS > 0 ? new WindowFloors({ db, slotName: config.SLOT_NAME, window, handedOff, restored, startLsn, logger }) : null;
    const source = new ReplicationStream({
      url,
      slotName: config.SLOT_NAME,
      publicationName: config.PUBLICATION_NAME,
      startLsn,
      valueParser,
      sink: builder,
      logger,
      pacer: needs.pacer,
      // After a crash the slot gives back the whole replay window and every message whose position is unwritten.
      // …and every event after the window's floor as last written (window-floors.ts), so that resume works across a restart.
      holdBack: () => minLsn(minLsn(positions.holdBack(), window.holdBack()), floors?.holdBack() ?? null),
    });
    return { registry, log, window, positions, source, cluster: null, floors, publishEphemeral: (topic, sender, message, origin) => builder.publishEphemeral(topic, sender, message, origin) };
  }
  const consumer = new ClusterPipeline(builder, registry, window, needs.disconnectAll, logger);
  const cluster = new ClusterNode({
    redisUrl: config.REDIS_URL,
    databaseUrl: url,
    db,
    slotName: config.SLOT_NAME,
    publicationName: config.PUBLICATION_NAME,
    valueParser,
    streamLength: config.CLUSTER_STREAM_LENGTH,
    failoverMs: config.CLUSTER_FAILOVER_MS,
    ...(config.CLUSTER_SECRET !== undefined ? { secret: config.CLUSTER_SECRET } : {}),
    consumer,
    // The window refills from the cluster stream; stored messages' positions still hold the slot.
    holdBack: () => positions.holdBack(),
    pacer: needs.pacer,
    logger,
  });
  return { registry, log, window, positions, source: cluster, cluster, floors: null, publishEphemeral: (topic, sender, message, origin) => consumer.publish(cluster, topic, sender, message, origin) };
}
