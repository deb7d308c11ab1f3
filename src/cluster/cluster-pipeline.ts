import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Event } from '../events/event.js';
import type { EventBuilder } from '../events/event-builder.js';
import { formatSeq } from '../events/seq.js';
import type { ReplayWindow } from '../log/replay-window.js';
import { lsnHex, type Lsn } from '../replication/lsn.js';
import type { Change, Transaction } from '../replication/transaction.js';
import type { CustomTopic, TopicRegistry } from '../topics/topic-registry.js';
import type { ClusterNode } from './cluster-node.js';
import type { EphemeralRecord, StreamConsumer } from './redis-stream-reader.js';

/** How long a node waits to read back an ephemeral message it appended. */
const EPHEMERAL_TIMEOUT_MS = 10_000;

/**
 * A node's pipeline behind the cluster stream: records go to its
 * EventBuilder (as the slot's transactions do on a single node), ephemeral
 * messages become events where they come through the stream, and gaps are
 * made visible: the replay window is broken at the next transaction (no
 * `since` reaches back across the gap) and every connection is closed with
 * 1012, so clients resume and learn `resumed: false` instead of silently
 * missing events. Until the next transaction (and from the start until the
 * first) the window replays nothing: a node that starts reads a stream that
 * may begin anywhere.
 */
export class ClusterPipeline implements StreamConsumer {
  readonly #builder: EventBuilder;
  readonly #registry: TopicRegistry;
  readonly #window: ReplayWindow;
  /** Closes every connection of the node (1012), so clients resume and learn what cannot be. */
  readonly #disconnectAll: (reason: string) => void;
  readonly #logger: Logger;
  /** The window's floor is set at the next transaction (at start, and after a gap). */
  #floorPending = true;
  readonly #ephemeralWaiters = new Map<string, (event: Event) => void>();

  constructor(builder: EventBuilder, registry: TopicRegistry, window: ReplayWindow, disconnectAll: (reason: string) => void, logger: Logger) {
    this.#builder = builder;
    this.#registry = registry;
    this.#window = window;
    this.#disconnectAll = disconnectAll;
    this.#logger = logger;
    window.suspend();
  }

  change(tx: Transaction, change: Change): void {
    this.#settleFloor(tx);
    this.#builder.change(tx, change);
  }

  dropped(tx: Transaction, change: Change, reason: string): void {
    this.#settleFloor(tx);
    this.#builder.dropped(tx, change, reason);
  }

  commit(tx: Transaction, endLsn: Lsn): void {
    this.#settleFloor(tx);
    this.#builder.commit(tx, endLsn);
  }

  ephemeral(record: EphemeralRecord): void {
    // Before this node's first transaction its ephemeral seqs would not match the other nodes'.
    if (this.#floorPending) return;
    const topic = this.#registry.custom(record.topic);
    if (!topic) return;
    void this.#builder.deliverEphemeral(topic, record.sender, record.message, record.id, record.at, record.origin ?? null).then((event) => {
      this.#ephemeralWaiters.get(record.id)?.(event);
    });
  }

  position(): void {}

  gap(reason: string): void {
    this.#floorPending = true;
    this.#window.suspend();
    this.#logger.error({ reason }, 'cluster stream gap: closing every connection so clients resume (and refetch where they cannot)');
    this.#disconnectAll('cluster stream gap: reconnect and resume with since');
  }

  /** Publishes an ephemeral message through the cluster stream; resolves with its event once this node has read it back. */
  publish(cluster: ClusterNode, topic: CustomTopic, sender: string | null, message: unknown, origin: string | null): Promise<Event> {
    const id = randomUUID();
    return new Promise<Event>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#ephemeralWaiters.delete(id);
        reject(new Error(`the ephemeral message did not come back through the cluster stream within ${EPHEMERAL_TIMEOUT_MS} ms`));
      }, EPHEMERAL_TIMEOUT_MS);
      this.#ephemeralWaiters.set(id, (event) => {
        clearTimeout(timer);
        this.#ephemeralWaiters.delete(id);
        resolve(event);
      });
      cluster.appendEphemeral({ topic: topic.name, sender, message, id, at: new Date().toISOString(), origin }).catch((error: unknown) => {
        clearTimeout(timer);
        this.#ephemeralWaiters.delete(id);
        reject(error as Error);
      });
    });
  }

  #settleFloor(tx: Transaction): void {
    if (!this.#floorPending) return;
    this.#floorPending = false;
    // Every event from this transaction on is in the window; nothing before it can be vouched for.
    this.#window.breakAt(formatSeq(lsnHex(tx.commitLsn - 1n), 0xffffffff));
  }
}
