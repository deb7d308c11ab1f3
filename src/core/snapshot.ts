import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { RowcastError } from '../errors.js';
import { rowId, without, type Event } from '../events/event.js';
import { seqLsn } from '../events/seq.js';
import { visibleAtCut, type OpenSnapshot, type SnapshotCut, type SnapshotQuery } from '../events/snapshot-reader.js';
import type { EventLog } from '../log/event-log.js';
import type { ReplayWindow } from '../log/replay-window.js';
import { adminPartition, audiencePartitions } from '../policies/audience-partitions.js';
import type { Lsn } from '../replication/lsn.js';
import type { Row } from '../replication/transaction.js';
import type { TableTopic } from '../topics/topic-registry.js';
import { framesForGroup } from './event-router.js';
import { frameSource } from './frame-source.js';
import type { GoLive, GroupSpec, SessionState, SnapshotGrant, SnapshotService, SnapshotSink, SnapshotStats, SubscribeRequest, SubscriptionHandle } from './session-types.js';

/** Where snapshots are read from, and their bounds. */
export interface SnapshotOptions {
  /** Opens a snapshot of a table's rows a principal may read (throws `LIMIT_EXCEEDED` past `maxRows`). */
  readonly open: (query: SnapshotQuery) => Promise<OpenSnapshot>;
  /** Resolves whether the stream has routed every commit before `lsn`, waiting up to a minute. */
  readonly streamReached: (lsn: Lsn) => Promise<boolean>;
  readonly log: EventLog;
  readonly window: ReplayWindow;
  /** Most bytes of changes held during one snapshot (as a replay: half of MAX_BACKPRESSURE_BYTES). */
  readonly maxHeldBytes: number;
  readonly logger: Logger;
  /** Rows one snapshot may have (`SNAPSHOT_MAX_ROWS`). */
  readonly maxRows: number;
  /** Snapshots read at once (`SNAPSHOT_CONCURRENCY`); the others wait their turn, first come first served. */
  readonly concurrency: number;
  /** Rows per page frame. */
  readonly pageRows: number;
  /** A page waits while the socket holds more unsent bytes than this. */
  readonly pauseBytes: number;
  /** Rows all aggregates on tables without full old rows may keep by id (`AGGREGATE_MAX_ROWS`). */
  readonly maxAggregateRows: number;
}

/** How long a snapshot waits for a socket that sends nothing before it gives up. */
const STALL_MS = 30_000;

/**
 * Events the stream routed before a snapshot began listening are looked at
 * again, this many of the newest: a transaction's commit can reach the
 * stream before it is visible to new snapshots (Postgres flushes the commit
 * record, then marks the transaction finished), so one of them may still be
 * missing from the snapshot (docs/snapshots.md).
 */
const LOOK_BACK = 1024;

/**
 * Snapshots (docs/snapshots.md): a `subscribe` with `snapshot: true` gets
 * the rows its user may read, read in a `REPEATABLE READ` transaction, then
 * the changes after exactly those rows. Until the subscription is live, the
 * topic's events are held; once the stream has passed the snapshot's WAL
 * position, the held events whose transaction the snapshot already saw are
 * dropped and the others are sent after the last page, in the step that
 * makes the subscription live.
 */
export class Snapshots implements SnapshotService {
  readonly #options: SnapshotOptions;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  /** Who hears each topic's events (snapshots holding them, aggregates counting them): one log listener for all, so an event costs only its own topic's listeners. */
  readonly #listeners = new Map<string, Set<(event: Event) => void>>();
  #stopListening: (() => void) | null = null;
  /** Live aggregate subscriptions → their counts and how to stop counting. */
  readonly #aggregates = new Map<SubscriptionHandle, { readonly counts: LiveCounts; readonly stop: () => void }>();

  constructor(options: SnapshotOptions) {
    this.#options = options;
  }

  /** Snapshots (and aggregates' initial counts) being read now, waiting for their turn, and live aggregate subscriptions. */
  stats(): SnapshotStats {
    return { running: this.#running, waiting: this.#waiting.length, aggregates: this.#aggregates.size, aggregateRows: this.#aggregateRows() };
  }

  /**
   * Runs a snapshot subscription of `grant` for `session` (the request was
   * checked and admitted): the answer and the pages go to `sink`, the last
   * page and the held changes to `goLive`. Throws a coded error while
   * nothing was answered; after the answer, a failure goes to
   * `sink.failed`.
   */
  async subscribe(session: SessionState, request: SubscribeRequest, grant: SnapshotGrant, goLive: GoLive): Promise<void> {
    await this.#turn();
    try {
      await this.#run(session, request, grant, request.snapshot!, goLive);
    } finally {
      this.#release();
    }
  }

  /** Waits for one of the `concurrency` slots; the first to wait gets the next one freed. */
  async #turn(): Promise<void> {
    if (this.#running < this.#options.concurrency) {
      this.#running++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  /** Frees a slot: handed straight to the next waiting snapshot, so no newcomer can take it in between. */
  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#running--;
  }

  async #run(session: SessionState, request: SubscribeRequest, grant: SnapshotGrant, sink: SnapshotSink, goLive: GoLive): Promise<void> {
    const { topic } = grant;
    const { pageRows } = this.#options;
    const hidden = grant.partitions.includes(adminPartition(topic.name)) ? NONE : (topic.policy.hiddenColumns ?? NONE);
    let page: string[] = [];
    await this.#read(session, request, grant, sink, { snapshot: true }, {
      row: async (row) => {
        page.push(rowData(topic, row, hidden));
        if (page.length < pageRows) return;
        await this.#drained(session);
        if (session.closed) return;
        sink.page(request.encoder.encodeSnapshot!(topic.name, `[${page.join(',')}]`, null));
        page = [];
      },
      cut: (missed) => {
        const frames = framesOf(grant, request, missed);
        if (frames.bytes > this.#options.maxHeldBytes) {
          throw new RowcastError('LIMIT_EXCEEDED', `${frames.list.length} changes were committed while the snapshot was read, more than a socket may hold: subscribe again`);
        }
        goLive((seq) => ({ answer: null, replay: [request.encoder.encodeSnapshot!(topic.name, `[${page.join(',')}]`, seq), ...frames.list] }));
      },
    });
  }

  /**
   * An aggregate subscription: the snapshot's rows are counted, the changes
   * not in it are counted in at the cut, then every later change of the
   * topic as the subscription sees it, with a diff of the changed groups at
   * most every {@link AGGREGATE_EVERY_MS}.
   */
  async aggregate(session: SessionState, request: SubscribeRequest, grant: SnapshotGrant, goLive: GoLive): Promise<void> {
    await this.#turn();
    try {
      await this.#aggregate(session, request, grant, goLive);
    } finally {
      this.#release();
    }
  }

  async #aggregate(session: SessionState, request: SubscribeRequest, grant: SnapshotGrant, goLive: GoLive): Promise<void> {
    const { topic } = grant;
    const { spec, sink } = request.aggregate!;
    const counts = new LiveCounts(grant, spec.groupBy ?? null);
    await this.#read(session, request, grant, sink, { aggregate: true }, {
      row: (row) => counts.add(rowId(row, topic.primaryKey), row),
      opened: (rows) => {
        const kept = this.#aggregateRows();
        if (!topic.fullIdentity && kept + rows > this.#options.maxAggregateRows) {
          throw new RowcastError('LIMIT_EXCEEDED', `aggregates on this node keep ${kept} rows by id; ${rows} more would pass AGGREGATE_MAX_ROWS (${this.#options.maxAggregateRows}): narrow it with a filter`);
        }
      },
      cut: (missed) => {
        for (const event of missed) counts.apply(event);
        counts.changed.clear();
        const handles = goLive(() => ({ answer: null, replay: [request.encoder.encodeAggregate!(topic.name, 'state', counts.state())] }));
        const handle = handles[0];
        if (!handle) return;
        const flush = setInterval(() => {
          if (session.closed) return this.ended(handle);
          const diff = counts.diff();
          if (diff !== null) sink.page(request.encoder.encodeAggregate!(topic.name, 'diff', diff));
        }, AGGREGATE_EVERY_MS);
        flush.unref();
        const stopCounting = this.#listen(topic.name, (event) => counts.apply(event));
        this.#aggregates.set(handle, {
          counts,
          stop: () => {
            clearInterval(flush);
            stopCounting();
          },
        });
      },
    });
  }

  /** A subscription ended: an aggregate's counting stops. */
  ended(handle: SubscriptionHandle): void {
    const aggregate = this.#aggregates.get(handle);
    if (!aggregate) return;
    this.#aggregates.delete(handle);
    aggregate.stop();
  }

  /** Calls `listener` with each event of `topic` from now on; returns how to stop (idempotent). */
  #listen(topic: string, listener: (event: Event) => void): () => void {
    this.#stopListening ??= this.#options.log.subscribe((event) => {
      const listeners = this.#listeners.get(event.topic);
      if (listeners) for (const heard of listeners) heard(event);
    });
    let listeners = this.#listeners.get(topic);
    if (!listeners) this.#listeners.set(topic, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#listeners.get(topic) === listeners) this.#listeners.delete(topic);
    };
  }

  /** Rows live aggregates keep by id, over the node. */
  #aggregateRows(): number {
    let rows = 0;
    for (const { counts } of this.#aggregates.values()) rows += counts.rows;
    return rows;
  }

  /**
   * Reads a snapshot for `grant`: holds the topic's events, answers, hands
   * each readable row to `steps.row`, waits for the stream to pass the cut,
   * then calls `steps.cut` (synchronously) with the held events the snapshot
   * does not contain, in stream order. A failure after the answer goes to
   * `sink.failed`.
   */
  async #read(
    session: SessionState,
    request: SubscribeRequest,
    grant: SnapshotGrant,
    sink: SnapshotSink,
    kind: { readonly snapshot: true } | { readonly aggregate: true },
    steps: {
      /** Before the answer, with the rows SQL selects: may refuse with a coded error. */
      readonly opened?: (rows: number) => void;
      readonly row: (row: Row) => Promise<void> | void;
      readonly cut: (missed: Event[]) => void;
    },
  ): Promise<void> {
    if (session.closed) return;
    const { topic } = grant;
    const { log, window, logger } = this.#options;
    const listenedAfter = log.lastSeq;
    const held: Event[] = [];
    const stopHolding = this.#listen(topic.name, (event) => held.push(event));
    let snapshot: OpenSnapshot | null = null;
    let answered = false;
    try {
      snapshot = await this.#options.open({ topic, principal: session.principal, maxRows: this.#options.maxRows, ...(request.filter !== undefined ? { filter: request.filter } : {}) });
      if (session.closed) return;
      steps.opened?.(snapshot.count);
      const seq = window.position;
      sink.answered(request.since === undefined ? { topics: [topic.name], seq, ...kind } : { topics: [topic.name], resumed: false, seq, ...kind });
      answered = true;
      const readable = readableTest(grant);
      for (let rows = await snapshot.next(); rows !== null; rows = await snapshot.next()) {
        for (const row of rows) {
          if (session.closed) return;
          if (readable(row)) await steps.row(row);
        }
      }
      if (!(await this.#options.streamReached(snapshot.cut.lsn))) {
        throw new RowcastError('INTERNAL', 'the change stream did not reach the snapshot within a minute: subscribe again');
      }
      await this.#drained(session);
      if (session.closed) return;
      const missed = missedEvents(window, topic.name, snapshot.cut, held, listenedAfter);
      stopHolding();
      steps.cut(missed);
    } catch (error) {
      if (!answered) throw error;
      if (!session.closed) sink.failed(topic.name, error instanceof RowcastError ? error.message : 'the snapshot could not be read: subscribe again');
      if (!(error instanceof RowcastError)) logger.error({ err: error, topic: topic.name, session: session.id }, 'a snapshot failed after its answer');
    } finally {
      stopHolding();
      await snapshot?.close();
    }
  }

  /** Waits while the socket holds more than `pauseBytes` unsent (it has had the pages before); gives up after STALL_MS without progress. */
  async #drained(session: SessionState): Promise<void> {
    let buffered = session.port.bufferedBytes();
    let progressAt = Date.now();
    while (!session.closed && buffered > this.#options.pauseBytes) {
      await sleep(5);
      if (session.closed) return;
      const now = session.port.bufferedBytes();
      if (now < buffered) progressAt = Date.now();
      else if (Date.now() - progressAt > STALL_MS) throw new RowcastError('LIMIT_EXCEEDED', `the client read none of the snapshot for ${STALL_MS / 1000} s`);
      buffered = now;
    }
  }
}

/** Whether a snapshot row reaches this subscription: in one of its partitions (admins: all) and through its filter. */
function readableTest({ topic: table, partitions, group }: SnapshotGrant): (row: Row) => boolean {
  const admin = partitions.includes(adminPartition(table.name));
  const granted = new Set(partitions);
  const filter = group.test;
  return (row) => {
    if (!admin && !audiencePartitions(table.name, table.policy, row).some((partition) => granted.has(partition))) return false;
    return filter === null || filter(row);
  };
}

/** A row as an event's `data` (JSON), without the `hidden` columns. */
function rowData(topic: TableTopic, row: Row, hidden: readonly string[]): string {
  const attributes = hidden.length === 0 ? row : without(row, hidden);
  return JSON.stringify({ type: topic.table, id: rowId(row, topic.primaryKey), attributes });
}

const NONE: readonly string[] = [];

/**
 * The changes the snapshot does not contain, in stream order: a held event
 * is one unless its transaction committed before the cut's position and is
 * visible in its snapshot. The newest events routed before the snapshot
 * began holding are checked too (see LOOK_BACK).
 */
function missedEvents(window: ReplayWindow, topic: string, cut: SnapshotCut, held: readonly Event[], listenedAfter: string): Event[] {
  const inSnapshot = (event: Event): boolean => seqLsn(event.seq) < cut.lsn && event.xid !== null && visibleAtCut(cut, event.xid);
  const missed: Event[] = [];
  for (const event of window.newest(LOOK_BACK)) {
    if (event.seq <= listenedAfter && event.topic === topic && seqLsn(event.seq) < cut.lsn && !inSnapshot(event)) missed.push(event);
  }
  for (const event of held) if (!inSnapshot(event)) missed.push(event);
  return missed;
}

/** The subscription's frames of `events`, and their size. */
function framesOf(grant: SnapshotGrant, request: SubscribeRequest, events: readonly Event[]): { list: string[]; bytes: number } {
  const source = frameSource(grant, request.encoder);
  const list: string[] = [];
  let bytes = 0;
  const emit = (frame: string): void => {
    list.push(frame);
    bytes += Buffer.byteLength(frame);
  };
  for (const event of events) source(event, emit);
  return { list, bytes };
}

/** Most often an aggregate's changed groups are sent. */
const AGGREGATE_EVERY_MS = 100;

/**
 * The counts of an aggregate subscription, as its client would fold the
 * subscription's events: a create adds one to its row's group, a delete
 * takes one from it, an update moves it between groups.
 *
 * A table with `REPLICA IDENTITY FULL` (every table with a policy) gives
 * each update and delete its whole old row, so the group a row leaves is
 * known from the event: the counts are all that is kept. Other tables give
 * no old row, so each counted row's id and group are kept, and `rows` tells
 * the node's budget how many.
 */
class LiveCounts {
  readonly changed = new Set<string>();
  readonly #counts = new Map<string, number>();
  /** Row id → group, when the table's events lack old rows; `null` otherwise. */
  readonly #members: Map<string, string> | null;
  #total = 0;
  readonly #groupBy: string | null;
  readonly #granted: ReadonlySet<string>;
  readonly #admin: string;
  readonly #spec: GroupSpec;

  constructor(grant: SnapshotGrant, groupBy: string | null) {
    this.#groupBy = groupBy;
    this.#members = grant.topic.fullIdentity ? null : new Map();
    this.#granted = new Set(grant.partitions);
    this.#admin = adminPartition(grant.topic.name);
    // Every kind counts, whatever `events` the subscription's own group has.
    this.#spec = { key: grant.group.key, test: grant.group.test, events: null };
  }

  /** Rows kept by id (0 for a table with full old rows). */
  get rows(): number {
    return this.#members?.size ?? 0;
  }

  /** Counts a snapshot row, or a row that came into view. */
  add(id: string, row: Row): void {
    const key = this.#keyOf(row);
    if (this.#members) {
      const was = this.#members.get(id);
      if (was === key) return;
      if (was !== undefined) this.#bump(was, -1);
      this.#members.set(id, key);
    }
    this.#bump(key, 1);
  }

  /**
   * Counts `event` in. With full old rows, from what it means to the
   * subscription (see framesForGroup). Without them, the event cannot say
   * whether an update took its row out of the filter, so the row kept by id
   * is checked instead: counted if the new row is readable and passes the
   * filter, not counted otherwise.
   */
  apply(event: Event): void {
    if (this.#members) return this.#applyTracked(event);
    framesForGroup(event, this.#spec, this.#admin, (partition, kind) => {
      if (!this.#granted.has(partition)) return;
      const row = event.row!;
      if (kind === 'create') this.add(event.idOf(row), row);
      else if (kind === 'delete') this.#remove(event.idOf(event.old ?? row), event.old ?? row);
      else if (kind === 'update') {
        if (this.#members) this.add(event.idOf(row), row);
        else if (this.#keyOf(event.old ?? row) !== this.#keyOf(row)) {
          this.#bump(this.#keyOf(event.old!), -1);
          this.#bump(this.#keyOf(row), 1);
        }
      }
    });
  }

  /** Every group, as JSON. */
  state(): string {
    const groups = this.#groupBy === null ? [] : [...this.#counts].map(([key, count]) => ({ key: JSON.parse(key) as unknown, count }));
    return JSON.stringify({ groups, total: this.#total });
  }

  /** The groups changed since the last call (`count: 0` for an emptied one), as JSON; `null` when none changed. */
  diff(): string | null {
    if (this.changed.size === 0) return null;
    const groups = this.#groupBy === null ? [] : [...this.changed].map((key) => ({ key: JSON.parse(key) as unknown, count: this.#counts.get(key) ?? 0 }));
    this.changed.clear();
    return JSON.stringify({ groups, total: this.#total });
  }

  #applyTracked(event: Event): void {
    const row = event.row;
    const oldId = event.old === null ? null : event.idOf(event.old);
    if (row === null) {
      if (oldId !== null) this.#remove(oldId, event.old!);
      return;
    }
    const id = event.idOf(row);
    if (oldId !== null && oldId !== id) this.#remove(oldId, event.old!);
    const readable = this.#granted.has(this.#admin) || event.partitions.some((partition) => this.#granted.has(partition));
    if (readable && (this.#spec.test === null || this.#spec.test(row))) this.add(id, row);
    else this.#remove(id, row);
  }

  /** A row left the view: its group (kept by id, or its old row's) loses one. */
  #remove(id: string, old: Row): void {
    if (!this.#members) return this.#bump(this.#keyOf(old), -1);
    const was = this.#members.get(id);
    if (was === undefined) return;
    this.#members.delete(id);
    this.#bump(was, -1);
  }

  #keyOf(row: Row): string {
    return this.#groupBy === null ? '' : JSON.stringify(row[this.#groupBy] ?? null);
  }

  #bump(key: string, by: number): void {
    const count = (this.#counts.get(key) ?? 0) + by;
    if (count === 0) this.#counts.delete(key);
    else this.#counts.set(key, count);
    this.#total += by;
    this.changed.add(key);
  }
}
