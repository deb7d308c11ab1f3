import { setTimeout as sleep } from 'node:timers/promises';
import { RowcastError } from '../errors.js';
import { rowId, type Event } from '../events/event.js';
import { seqLsn } from '../events/seq.js';
import { visibleAtCut, type OpenSnapshot, type SnapshotCut, type SnapshotQuery } from '../events/snapshot-reader.js';
import type { EventLog } from '../log/event-log.js';
import type { ReplayWindow } from '../log/replay-window.js';
import { adminPartition, audiencePartitions } from '../policies/audience-partitions.js';
import type { Lsn } from '../replication/lsn.js';
import type { Row } from '../replication/transaction.js';
import type { TableTopic } from '../topics/topic-registry.js';
import type { Logger } from 'pino';
import { frameSource } from './frame-source.js';
import type { GoLive, SessionState, SnapshotGrant, SnapshotService, SnapshotSink, SubscribeRequest } from './session-types.js';

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

  constructor(options: SnapshotOptions) {
    this.#options = options;
  }

  /** Snapshots being read now, and waiting for their turn. */
  get stats(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
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
      this.#running--;
      this.#waiting.shift()?.();
    }
  }

  async #turn(): Promise<void> {
    if (this.#running < this.#options.concurrency) {
      this.#running++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running++;
  }

  async #run(session: SessionState, request: SubscribeRequest, grant: SnapshotGrant, sink: SnapshotSink, goLive: GoLive): Promise<void> {
    if (session.closed) return;
    const { topic } = grant;
    const { log, window, pageRows, logger } = this.#options;
    const listenedAfter = log.lastSeq;
    const held: Event[] = [];
    const stopHolding = log.subscribe((event) => {
      if (event.topic === topic.name) held.push(event);
    });
    let snapshot: OpenSnapshot | null = null;
    let answered = false;
    try {
      snapshot = await this.#options.open({ topic, principal: session.principal, maxRows: this.#options.maxRows, ...(request.filter !== undefined ? { filter: request.filter } : {}) });
      if (session.closed) return;
      const seq = window.position;
      sink.answered(request.since === undefined ? { topics: [topic.name], seq, snapshot: true } : { topics: [topic.name], resumed: false, seq, snapshot: true });
      answered = true;
      const readable = readableTest(grant);
      let page: string[] = [];
      for (let rows = await snapshot.next(); rows !== null; rows = await snapshot.next()) {
        if (session.closed) return;
        for (const row of rows) {
          if (!readable(row)) continue;
          page.push(rowData(topic, row));
          if (page.length < pageRows) continue;
          await this.#drained(session);
          if (session.closed) return;
          sink.page(request.encoder.encodeSnapshot!(topic.name, `[${page.join(',')}]`, null));
          page = [];
        }
      }
      if (!(await this.#options.streamReached(snapshot.cut.lsn))) {
        throw new RowcastError('INTERNAL', 'the change stream did not reach the snapshot within a minute: subscribe again');
      }
      await this.#drained(session);
      if (session.closed) return;
      const missed = missedFrames(window, grant, request, snapshot.cut, held, listenedAfter);
      if (missed.bytes > this.#options.maxHeldBytes) {
        throw new RowcastError('LIMIT_EXCEEDED', `${missed.frames.length} changes were committed while the snapshot was read, more than a socket may hold: subscribe again`);
      }
      stopHolding();
      goLive((seq) => ({
        answer: null,
        replay: [request.encoder.encodeSnapshot!(topic.name, `[${page.join(',')}]`, seq), ...missed.frames],
      }));
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

/** A row as an event's `data` (JSON). */
function rowData(topic: TableTopic, row: Row): string {
  return JSON.stringify({ type: topic.table, id: rowId(row, topic.primaryKey), attributes: row });
}

/**
 * The frames of the changes the snapshot does not contain, in stream order:
 * a held event is one unless its transaction committed before the cut's
 * position and is visible in its snapshot. The newest events routed before
 * the snapshot began listening are checked too (see LOOK_BACK).
 */
function missedFrames(window: ReplayWindow, grant: SnapshotGrant, request: SubscribeRequest, cut: SnapshotCut, held: readonly Event[], listenedAfter: string): { frames: string[]; bytes: number } {
  const source = frameSource(grant, request.encoder);
  const frames: string[] = [];
  let bytes = 0;
  const emit = (frame: string): void => {
    frames.push(frame);
    bytes += Buffer.byteLength(frame);
  };
  const inSnapshot = (event: Event): boolean => seqLsn(event.seq) < cut.lsn && event.xid !== null && visibleAtCut(cut, event.xid);
  for (const event of window.newest(LOOK_BACK)) {
    if (event.seq <= listenedAfter && event.topic === grant.topic.name && seqLsn(event.seq) < cut.lsn && !inSnapshot(event)) source(event, emit);
  }
  for (const event of held) if (!inSnapshot(event)) source(event, emit);
  return { frames, bytes };
}
