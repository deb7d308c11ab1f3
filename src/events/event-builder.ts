import type { Logger } from 'pino';
import type { EventLog } from '../log/event-log.js';
import { audiencePartitions } from '../policies/audience-partitions.js';
import { ADMIN_ONLY } from '../policies/read-policy.js';
import type { Lsn } from '../replication/lsn.js';
import type { Change, Relation, Row, Transaction, TransactionSink } from '../replication/transaction.js';
import { tableTopicName, type TableTopic, type TopicRegistry } from '../topics/topic-registry.js';
import type { Event, EventKind } from './event.js';
import { formatSeq } from './seq.js';

/** Where events come from and go. */
export interface EventBuilderOptions {
  readonly registry: TopicRegistry;
  readonly log: EventLog;
  readonly logger: Logger;
}

/**
 * Turns decoded changes into {@link Event}s (one per row change, serialized
 * once) and appends them to the event log as they arrive, so a large
 * transaction streams through instead of being held whole.
 *
 * Changes to `rowcast.table_policies`, and tables the registry does not know
 * yet, make the registry reload; until it has, an unknown table's events go to
 * admins only.
 */
export class EventBuilder implements TransactionSink {
  readonly #options: EventBuilderOptions;
  /** Relation OID → topic; cleared whenever the registry reloads. */
  #topics = new Map<number, TableTopic | null>();
  #registryStale = false;

  constructor(options: EventBuilderOptions) {
    this.#options = options;
    options.registry.onChange(() => this.#topics.clear());
  }

  change(tx: Transaction, change: Change): void {
    if (change.tag === 'truncate') {
      this.#options.logger.info({ tables: change.relations.map((r) => `${r.schema}.${r.name}`) }, 'TRUNCATE is not delivered as events');
      return;
    }
    const topic = this.#topicOf(change.relation);
    if (topic === null) return;
    switch (change.tag) {
      case 'insert':
        this.#append(tx, change.index, topic, change.relation, 'create', change.new, null, NONE);
        return;
      case 'update':
        this.#append(tx, change.index, topic, change.relation, 'update', change.new, change.old, change.unchanged);
        return;
      case 'delete':
        this.#append(tx, change.index, topic, change.relation, 'delete', change.old, null, NONE);
        return;
    }
  }

  commit(_tx: Transaction, _endLsn: Lsn): void {
    if (this.#registryStale) {
      this.#registryStale = false;
      this.#options.registry.reload().catch((error: unknown) => {
        this.#options.logger.error({ err: error }, 'reloading topics failed');
      });
    }
  }

  #append(
    tx: Transaction,
    index: number,
    topic: TableTopic,
    relation: Relation,
    kind: EventKind,
    row: Row,
    old: Row | null,
    unchanged: readonly string[],
  ): void {
    const seq = formatSeq(tx.commitLsnHex, index);
    const id = rowId(row, topic.primaryKey.length > 0 ? topic.primaryKey : relation.keyColumns);
    const data: Record<string, unknown> = { type: topic.table, id, attributes: row };
    if (old !== null) data['old'] = old;
    if (unchanged.length > 0) data['unchanged'] = unchanged;
    const frame = JSON.stringify({ type: 'event', topic: topic.name, event: kind, seq, ts: tx.commitTime, data });
    const event: Event = {
      seq,
      topic: topic.name,
      kind,
      id,
      attributes: row,
      old,
      partitions: audiencePartitions(topic.name, topic.policy, row),
      frame,
    };
    this.#options.log.append(event);
  }

  /** The topic of a relation; `null` for rowcast's own tables. */
  #topicOf(relation: Relation): TableTopic | null {
    const cached = this.#topics.get(relation.relationOid);
    if (cached !== undefined) return cached;
    let topic: TableTopic | null;
    if (relation.schema === 'rowcast') {
      if (relation.name === 'table_policies') this.#registryStale = true;
      return null; // not cached: every policy change must mark the registry stale
    }
    topic = this.#options.registry.byTable(relation.schema, relation.name) ?? null;
    if (topic === null) {
      this.#registryStale = true;
      topic = {
        kind: 'table',
        name: tableTopicName(relation.schema, relation.name),
        schema: relation.schema,
        table: relation.name,
        primaryKey: relation.replicaIdentity === 'full' ? [] : relation.keyColumns,
        policy: ADMIN_ONLY,
      };
    }
    this.#topics.set(relation.relationOid, topic);
    return topic;
  }
}

function rowId(row: Row, key: readonly string[]): string {
  if (key.length === 1) return String(row[key[0]!]);
  let id = '';
  for (let i = 0; i < key.length; i++) id += (i === 0 ? '' : '/') + String(row[key[i]!]);
  return id;
}

const NONE: readonly string[] = Object.freeze([]);
