import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { audiencePartitions } from '../policies/audience-partitions.js';
import { ADMIN_ONLY } from '../policies/read-policy.js';
import { lsnHex, type Lsn } from '../replication/lsn.js';
import type { Change, Relation, Row, Transaction, TransactionSink } from '../replication/transaction.js';
import {
  customTopicFromRow,
  policyFromRow,
  tableTopicName,
  type CustomTopic,
  type TableTopic,
  type TopicRegistry,
} from '../topics/topic-registry.js';
import { Event, type EventKind } from './event.js';
import { messageEvent } from './message-event.js';
import { formatSeq } from './seq.js';

/** Where events go: the event log (an in-process one, or fed from the cluster stream). */
export interface EventSink {
  /** Hands one event on; false when it was a duplicate and dropped. */
  append(event: Event): boolean;
}

/** Where events come from and go. */
export interface EventBuilderOptions {
  readonly registry: TopicRegistry;
  readonly log: EventSink;
  readonly logger: Logger;
  /** Where the stream starts (the slot's confirmed position). */
  readonly startLsn: Lsn;
  /**
   * Called with each stored message's event once it is handed on, and the
   * commit LSN of its transaction (see `MessagePositions`).
   */
  readonly onStoredMessage?: (event: Event, commitLsn: Lsn) => void;
}

/**
 * Turns decoded changes into {@link Event}s (one per row change, serialized
 * once) and appends them to the event log as they arrive, so a large
 * transaction streams through instead of being held whole.
 *
 * rowcast's own tables are applied at their place in the stream: a change to
 * `rowcast.table_policies` or `rowcast.topics` updates the registry, an
 * insert into `rowcast.messages` becomes its topic's `new-message` event.
 * A table the registry does not know yet makes it reload its tables; until
 * then that table's events go to admins only. Messages of ephemeral topics
 * enter here too ({@link EventBuilder.publishEphemeral}).
 */
export class EventBuilder implements TransactionSink {
  readonly #options: EventBuilderOptions;
  /** Relation OID → topic; cleared whenever the registry reloads. */
  #topics = new Map<number, TableTopic>();
  #registryStale = false;
  /** Inside a transaction (between its first change and its commit). */
  #inTransaction = false;
  /** End of the last committed transaction: ephemeral seqs sort just below it. */
  #lastEnd: Lsn;
  #ephemeralIndex = 0;
  #ephemeralQueue: Array<() => void> = [];

  constructor(options: EventBuilderOptions) {
    this.#options = options;
    this.#lastEnd = options.startLsn;
    options.registry.onChange(() => this.#topics.clear());
  }

  change(tx: Transaction, change: Change): void {
    this.#inTransaction = true;
    if (change.tag === 'truncate') {
      this.#options.logger.info({ tables: change.relations.map((r) => `${r.schema}.${r.name}`) }, 'TRUNCATE is not delivered as events');
      return;
    }
    const relation = change.relation;
    if (relation.schema === 'rowcast') {
      if (relation.name === 'table_policies') this.#applyPolicyChange(change);
      else if (relation.name === 'topics') this.#applyTopicChange(change);
      else if (relation.name === 'messages' && change.tag === 'insert') this.#message(tx, change.index, change.new);
      return;
    }
    this.#options.log.append(this.#tableEvent(tx, change));
  }

  /**
   * A change that could not be serialized where it was read (the cluster
   * leader), with its key columns only: its event is marked dropped, so it
   * reaches no one and the topic's admins are told (`EVENT_DROPPED`).
   */
  dropped(tx: Transaction, change: Change, reason: string): void {
    this.#inTransaction = true;
    if (change.tag === 'truncate' || change.relation.schema === 'rowcast') {
      this.#options.logger.error({ reason, index: change.index }, 'a change of rowcast\'s own tables could not be serialized: skipped');
      return;
    }
    const event = this.#tableEvent(tx, change);
    event.markDropped(reason);
    this.#options.log.append(event);
  }

  /** The event of a change to a published table. */
  #tableEvent(tx: Transaction, change: Exclude<Change, { tag: 'truncate' }>): Event {
    const relation = change.relation;
    const topic = this.#topicOf(relation);
    const policy = topic.policy;
    let event: Event;
    switch (change.tag) {
      case 'insert':
        event = this.#event(tx, change.index, topic, relation, 'create', change.new, null, audiencePartitions(topic.name, policy, change.new), null, NONE);
        break;
      case 'update': {
        const oldPartitions = change.old === null ? null : audiencePartitions(topic.name, policy, change.old);
        const partitions = audiencePartitions(topic.name, policy, change.new);
        event = this.#event(tx, change.index, topic, relation, 'update', change.new, change.old, partitions, oldPartitions, change.unchanged);
        break;
      }
      case 'delete':
        event = this.#event(tx, change.index, topic, relation, 'delete', null, change.old, audiencePartitions(topic.name, policy, change.old), null, NONE);
        break;
    }
    return event;
  }

  commit(_tx: Transaction, endLsn: Lsn): void {
    this.#inTransaction = false;
    this.#lastEnd = endLsn;
    this.#ephemeralIndex = 0;
    if (this.#ephemeralQueue.length > 0) {
      const queued = this.#ephemeralQueue;
      this.#ephemeralQueue = [];
      for (const publish of queued) publish();
    }
    if (this.#registryStale) {
      this.#registryStale = false;
      this.#options.registry.refreshTables().catch((error: unknown) => {
        this.#options.logger.error({ err: error }, 'reloading topics failed');
      });
    }
  }

  #event(
    tx: Transaction,
    index: number,
    topic: TableTopic,
    relation: Relation,
    kind: EventKind,
    row: Row | null,
    old: Row | null,
    partitions: readonly string[],
    oldPartitions: readonly string[] | null,
    unchanged: readonly string[],
  ): Event {
    return new Event({
      seq: formatSeq(tx.commitLsnHex, index),
      topic: topic.name,
      type: topic.table,
      ts: tx.commitTime,
      kind,
      key: topic.primaryKey.length > 0 ? topic.primaryKey : relation.keyColumns,
      row,
      old,
      partitions,
      oldPartitions,
      unchanged,
      oldComplete: relation.replicaIdentity === 'full',
      xid: tx.xid,
      ...(topic.policy.hiddenColumns ? { hidden: topic.policy.hiddenColumns } : {}),
    });
  }

  /**
   * Publishes a message of an ephemeral (`history: 0`) custom topic straight
   * to the event log. Its `seq` sorts after every event handed on so far and
   * before the next transaction's (its LSN part is the last commit's end − 1);
   * while a transaction is being streamed the message waits for its commit,
   * so it never lands between two changes of one transaction.
   *
   * @returns the event once it has been handed to the log.
   */
  publishEphemeral(topic: CustomTopic, sender: string | null, message: unknown, origin: string | null = null): Promise<Event> {
    return this.deliverEphemeral(topic, sender, message, randomUUID(), new Date().toISOString(), origin);
  }

  /**
   * {@link publishEphemeral} with the message's id and time given: in a
   * cluster every node makes the same event (and `seq`) from the message as
   * it comes through the cluster stream.
   */
  deliverEphemeral(topic: CustomTopic, sender: string | null, message: unknown, id: string, at: string, origin: string | null = null): Promise<Event> {
    return new Promise((resolve) => {
      const publish = () => {
        const seq = formatSeq(lsnHex(this.#lastEnd - 1n), this.#ephemeralIndex++);
        const event = messageEvent(topic.name, seq, at, id, { message, sender, createdAt: at }, origin);
        this.#options.log.append(event);
        resolve(event);
      };
      if (this.#inTransaction) this.#ephemeralQueue.push(publish);
      else publish();
    });
  }

  /**
   * A row of `rowcast.messages` was inserted: its topic's `new-message`
   * event, handed on and then reported as stored (so its position can be
   * written back to the row).
   */
  #message(tx: Transaction, index: number, row: Row): void {
    const topic = this.#options.registry.custom(row['topic'] as string);
    if (!topic) return;
    const event = messageEvent(topic.name, formatSeq(tx.commitLsnHex, index), tx.commitTime, String(row['id']), {
      message: row['message'],
      sender: row['sender'] as string | null,
      createdAt: row['created_at'] as string,
    }, (row['origin'] as string | null | undefined) ?? null, (row['recipient'] as string | null | undefined) ?? null);
    this.#options.log.append(event);
    this.#options.onStoredMessage?.(event, tx.commitLsn);
  }

  /** A `rowcast.topics` row changed: the registry learns it at this point of the stream. */
  #applyTopicChange(change: Exclude<Change, { tag: 'truncate' }>): void {
    if (change.tag === 'delete') {
      this.#options.registry.removeCustomTopic(change.old['name'] as string);
      return;
    }
    this.#options.registry.applyCustomTopic(customTopicFromRow(change.new as never));
  }

  /**
   * A policy row changed: the registry takes the new policy now, at this
   * point of the stream, so the very next change is routed by it.
   */
  #applyPolicyChange(change: Exclude<Change, { tag: 'truncate' }>): void {
    const row = (change.tag === 'delete' ? change.old : change.new) as Record<string, string | null>;
    const schema = row['table_schema'] ?? 'public';
    const table = row['table_name']!;
    if (change.tag === 'update' && change.old) {
      const before = change.old as Record<string, string | null>;
      if (before['table_schema'] !== schema || before['table_name'] !== table) {
        this.#options.registry.applyPolicy(before['table_schema'] ?? 'public', before['table_name']!, null);
      }
    }
    this.#options.registry.applyPolicy(schema, table, change.tag === 'delete' ? null : policyFromRow(change.new as never));
    if (!this.#options.registry.byTable(schema, table)) this.#registryStale = true;
  }

  /** The topic of a relation; a table the registry does not know yet is admin-only until it has reloaded. */
  #topicOf(relation: Relation): TableTopic {
    const cached = this.#topics.get(relation.relationOid);
    if (cached !== undefined) return cached;
    let topic = this.#options.registry.byTable(relation.schema, relation.name);
    if (topic && (topic.policy.read === 'owner' || topic.policy.read === 'group') && relation.replicaIdentity !== 'full') {
      this.#options.logger.error(
        { table: `${relation.schema}.${relation.name}`, identity: relation.replicaIdentity },
        'a table with an owner/group policy lost REPLICA IDENTITY FULL: moves and deletes reach admins only; ' +
          'run ALTER TABLE … REPLICA IDENTITY FULL',
      );
    }
    if (topic === undefined) {
      this.#registryStale = true;
      topic = {
        kind: 'table',
        name: tableTopicName(relation.schema, relation.name),
        schema: relation.schema,
        table: relation.name,
        primaryKey: relation.replicaIdentity === 'full' ? [] : relation.keyColumns,
        columns: relation.columns.map((c) => ({ name: c.name, type: String(c.typeOid), typname: String(c.typeOid) })),
        fullIdentity: relation.replicaIdentity === 'full',
        policy: ADMIN_ONLY,
      };
    }
    this.#topics.set(relation.relationOid, topic);
    return topic;
  }
}

const NONE: readonly string[] = Object.freeze([]);
