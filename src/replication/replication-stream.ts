import { randomUUID } from 'node:crypto';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { Logger } from 'pino';
import { formatLsn, lsnHex, parseLsn, type Lsn } from './lsn.js';
import { PositionWaiters } from './position-waiters.js';
import type { Relation, Row, Transaction, TransactionSink } from './transaction.js';

/** Converts the text form of a value of type `typeOid` to its JSON value. */
export type ValueParser = (text: string) => unknown;

/** How to reach the slot and what to do with what it streams. */
export interface ReplicationStreamOptions {
  /** Postgres URL; a `replication=database` connection is opened on it. */
  readonly url: string;
  readonly slotName: string;
  readonly publicationName: string;
  /** The slot's confirmed position at start-up; nothing before it is handed on. */
  readonly startLsn: Lsn;
  /** Picks the converter for a column type (docs/protocol.md, values). */
  readonly valueParser: (typeOid: number) => ValueParser;
  readonly sink: TransactionSink;
  readonly logger: Logger;
  /** Flow control: while it reports congestion, the stream stops reading. */
  readonly pacer?: { congested(): boolean };
  /**
   * The slot is never acknowledged past this position (`null`: no limit),
   * for work that must survive a crash and is done only after hand-off
   * (writing stored messages' positions back).
   */
  readonly holdBack?: () => Lsn | null;
  /** Reconnect backoff: first delay and cap, in ms. Defaults 200 / 10,000. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

/** What the stream has done so far, for /status and tests. */
export interface ReplicationState {
  readonly connected: boolean;
  /** End LSN of the last transaction handed to the sink (or the start position). */
  readonly handedOffLsn: string;
  /** The position last reported to Postgres as flushed (the slot's `confirmed_flush_lsn`). */
  readonly acknowledgedLsn: string;
  readonly transactions: number;
  readonly changes: number;
  /** Commit time of the last transaction handed off (ISO), or `null`. */
  readonly lastCommitTime: string | null;
  readonly reconnects: number;
  readonly lastError: string | null;
  /** The outage going on now (the stream was up, then lost), or `null`. */
  readonly outage: { readonly since: string; readonly seconds: number; readonly attempts: number } | null;
  /** The last outage that ended. */
  readonly lastOutage: { readonly since: string; readonly seconds: number } | null;
}

/**
 * Session settings for the walsender: they decide the text form pgoutput
 * writes values in, which the value parsers rely on.
 */
const SESSION_OPTIONS =
  '-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=iso_8601 -c bytea_output=hex -c extra_float_digits=1';

/** Status updates go out at least this often while connected. */
const STATUS_INTERVAL_MS = 1000;

/**
 * The one logical replication stream: pgoutput protocol 1 through
 * `pg-logical-replication`, decoded into transactions for a
 * {@link TransactionSink}.
 *
 * Acknowledgement discipline: the slot is told a position only once every
 * transaction before it has been handed to the sink. The library's automatic
 * acknowledgement and its timer (which report the last *received* position,
 * its issue #174) are switched off; keepalives are answered here with the
 * handed-off position. Between transactions, a keepalive's WAL position is
 * itself handed off (everything before it has been decoded and delivered in
 * order), as Postgres's own subscriber does, so an idle slot does not hold WAL.
 *
 * The connection is re-opened with capped exponential backoff and jitter when
 * it drops; the relation cache (the plugin's parser) survives reconnects.
 * Transactions at or before the handed-off position are skipped when Postgres
 * sends them again.
 */
export class ReplicationStream {
  readonly #options: ReplicationStreamOptions;
  readonly #plugin: PgoutputPlugin;
  #service: LogicalReplicationService | null = null;
  #running = false;
  #connected = false;
  #tx: (Transaction & { index: number; skip: boolean }) | null = null;
  #handedOff: Lsn;
  #lastCommitLsn: Lsn;
  #acknowledged: Lsn;
  #transactions = 0;
  #lastCommitTime: string | null = null;
  #changes = 0;
  #reconnects = 0;
  #lastError: string | null = null;
  /** When the stream was lost (ms since the epoch), while it is down. */
  #lostAt: number | null = null;
  #attemptsSinceLost = 0;
  #lastOutage: { since: string; seconds: number } | null = null;
  #statusTimer: NodeJS.Timeout | null = null;
  #wake: (() => void) | null = null;
  #sincePaceCheck = 0;
  #paused = false;
  readonly #waiters = new PositionWaiters();
  #pingTimer: NodeJS.Timeout | null = null;
  #loop: Promise<void> | null = null;
  /** When Postgres last asked for a reply (ms), within the last second. */
  #replyRequests: number[] = [];
  /** Handing a message on threw: the rest of this connection's messages are ignored until it is re-opened. */
  #failed = false;

  constructor(options: ReplicationStreamOptions) {
    this.#options = options;
    this.#plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [options.publicationName] });
    this.#handedOff = options.startLsn;
    this.#acknowledged = options.startLsn;
    this.#lastCommitLsn = 0n;
  }

  /** Starts streaming; resolves once the first connection is streaming. */
  async start(): Promise<void> {
    this.#running = true;
    const started = new Promise<void>((resolve, reject) => {
      this.#loop = this.#run(resolve, reject);
    });
    this.#statusTimer = setInterval(() => this.#sendStatus(), STATUS_INTERVAL_MS);
    this.#statusTimer.unref();
    await started;
  }

  /** Reports the handed-off position one last time and closes the stream. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#statusTimer) clearInterval(this.#statusTimer);
    this.#stopPinging();
    this.#waiters.cancelAll();
    this.#sendStatus();
    this.#wake?.();
    await this.#service?.stop();
    await this.#loop;
  }

  /**
   * Resolves `true` once everything up to `lsn` has been handed off, or
   * `false` after `timeoutMs`. While someone waits, the stream asks Postgres
   * for a keepalive every 20 ms, so an idle stream reports its position too.
   *
   * @example
   * await stream.waitFor(parseLsn(currentFlushLsn), 5000); // every commit before now is routed
   */
  waitFor(lsn: Lsn, timeoutMs: number): Promise<boolean> {
    if (this.#handedOff >= lsn) return Promise.resolve(true);
    const reached = this.#waiters.wait(lsn, timeoutMs, () => {
      if (this.#waiters.size === 0) this.#stopPinging();
    });
    this.#pingTimer ??= setInterval(() => this.#sendStatus(true, true), 20);
    this.#sendStatus(true, true);
    return reached;
  }

  /** A snapshot of progress and health. */
  state(): ReplicationState {
    return {
      connected: this.#connected,
      handedOffLsn: formatLsn(this.#handedOff),
      acknowledgedLsn: formatLsn(this.#acknowledged),
      transactions: this.#transactions,
      changes: this.#changes,
      lastCommitTime: this.#lastCommitTime,
      reconnects: this.#reconnects,
      lastError: this.#lastError,
      outage:
        this.#lostAt === null
          ? null
          : {
              since: new Date(this.#lostAt).toISOString(),
              seconds: Math.round((Date.now() - this.#lostAt) / 100) / 10,
              attempts: this.#attemptsSinceLost,
            },
      lastOutage: this.#lastOutage,
    };
  }

  async #run(started: () => void, failed: (error: unknown) => void): Promise<void> {
    const { initialMs, maxMs } = this.#options.backoff ?? { initialMs: 200, maxMs: 10_000 };
    let attempt = 0;
    let first = true;
    while (this.#running) {
      const service = this.#connect();
      try {
        const ended = service.subscribe(this.#plugin, this.#options.slotName, formatLsn(this.#handedOff));
        await Promise.race([ended, onceStarted(service)]);
        if (first) started();
        first = false;
        attempt = 0;
        await ended;
      } catch (error) {
        this.#lastError = error instanceof Error ? error.message : String(error);
        if (first) {
          this.#running = false;
          failed(error);
          break;
        }
      } finally {
        this.#connected = false;
        this.#tx = null;
        await service.stop().catch(() => {});
      }
      if (!this.#running) break;
      this.#reconnects++;
      const delay = Math.min(maxMs, initialMs * 2 ** attempt++) * (0.5 + Math.random() / 2);
      if (this.#lostAt === null) {
        this.#lostAt = Date.now();
        this.#attemptsSinceLost = 0;
        this.#options.logger.error(
          { err: this.#lastError, at: formatLsn(this.#handedOff), retryInMs: Math.round(delay) },
          'replication stream lost: events wait in the slot until it is back',
        );
      } else {
        this.#attemptsSinceLost++;
        this.#options.logger.warn({ err: this.#lastError, attempt: this.#attemptsSinceLost, retryInMs: Math.round(delay) }, 'replication stream still down');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  #connect(): LogicalReplicationService {
    const service = new LogicalReplicationService(
      { connectionString: this.#options.url, options: SESSION_OPTIONS, application_name: 'rowcast' },
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    service.on('error', (error: Error) => {
      this.#lastError = error.message;
    });
    service.on('start', () => {
      this.#connected = true;
      this.#failed = false;
      if (this.#lostAt === null) {
        this.#options.logger.info({ from: formatLsn(this.#handedOff) }, 'replication stream started');
        return;
      }
      this.#lastOutage = { since: new Date(this.#lostAt).toISOString(), seconds: (Date.now() - this.#lostAt) / 1000 };
      this.#lostAt = null;
      this.#options.logger.warn(
        { from: formatLsn(this.#handedOff), outageSeconds: this.#lastOutage.seconds, attempts: this.#attemptsSinceLost + 1 },
        'replication stream restored: resuming from the slot',
      );
    });
    service.on('data', (_lsn: string, message: Pgoutput.Message) => {
      if (this.#service !== service || this.#failed) return;
      try {
        this.#onMessage(message);
      } catch (error) {
        this.#fail(service, error);
      }
    });
    service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => {
      // After a failed hand-off the position must stay where it is: what failed is sent again from there.
      if (this.#service !== service || this.#failed) return;
      if (this.#tx === null) {
        const walEnd = parseLsn(lsn);
        if (walEnd > this.#handedOff) this.#advance(walEnd);
      }
      if (!shouldRespond) return;
      this.#sendStatus(true);
      if (this.#serverShuttingDown()) {
        this.#options.logger.warn('Postgres is shutting down: closing the replication connection so that it can');
        void service.stop();
      }
    });
    this.#service = service;
    return service;
  }

  /**
   * Handing a message on threw (a bug, not a bad value: the router copes
   * with those). Nothing past the handed-off position was acknowledged, so
   * the stream is re-opened from there, as after a lost connection: the
   * transaction comes again, and the event log drops what it already has.
   */
  #fail(service: LogicalReplicationService, error: unknown): void {
    this.#failed = true;
    this.#tx = null;
    const correlationId = randomUUID();
    this.#lastError = `handling a change failed (correlation id ${correlationId})`;
    this.#options.logger.error({ err: error, correlationId, at: formatLsn(this.#handedOff) }, 'handling a replicated change failed: re-reading from the handed-off position');
    void service.stop().catch(() => {});
  }

  /** Moves the handed-off position and wakes those waiting for it. */
  #advance(lsn: Lsn): void {
    this.#handedOff = lsn;
    if (this.#waiters.size === 0) return;
    this.#waiters.advance(lsn);
    if (this.#waiters.size === 0) this.#stopPinging();
  }

  /**
   * A walsender of a Postgres that is shutting down waits until its client
   * reports everything sent as flushed, asking for a reply again as soon as
   * one arrives. rowcast never reports that (the slot is held back by the
   * replay window), so left alone the shutdown would wait forever. Outside
   * shutdown Postgres asks for a reply only every `wal_sender_timeout / 2`:
   * several requests within a second mean it is shutting down.
   */
  #serverShuttingDown(): boolean {
    const now = Date.now();
    this.#replyRequests = this.#replyRequests.filter((at) => now - at < 1000);
    this.#replyRequests.push(now);
    return this.#replyRequests.length >= SHUTDOWN_REPLY_REQUESTS;
  }

  #stopPinging(): void {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#pingTimer = null;
  }

  /** The per-message hot path: one switch, no awaits. */
  #onMessage(message: Pgoutput.Message): void {
    switch (message.tag) {
      case 'begin': {
        const commitLsn = parseLsn(message.commitLsn!);
        this.#tx = {
          xid: message.xid >>> 0,
          commitLsn,
          commitLsnHex: lsnHex(commitLsn),
          commitTime: new Date(Number((message.commitTime as bigint) / 1000n)).toISOString(),
          index: 0,
          skip: commitLsn <= this.#lastCommitLsn || commitLsn < this.#handedOff,
        };
        return;
      }
      case 'relation':
        this.#installParsers(message);
        return;
      case 'insert':
      case 'update':
      case 'delete':
      case 'truncate': {
        const tx = this.#tx!;
        const index = tx.index++;
        if (tx.skip) return;
        this.#changes++;
        this.#options.sink.change(tx, toChange(message, index));
        if (++this.#sincePaceCheck >= PACE_CHECK_EVERY) this.#pace();
        return;
      }
      case 'commit': {
        const tx = this.#tx!;
        this.#tx = null;
        if (tx.skip) return;
        const endLsn = parseLsn(message.commitEndLsn!);
        this.#options.sink.commit(tx, endLsn);
        this.#lastCommitLsn = tx.commitLsn;
        this.#lastCommitTime = tx.commitTime;
        if (endLsn > this.#handedOff) this.#advance(endLsn);
        this.#transactions++;
        this.#options.logger.debug(
          { xid: tx.xid, commitLsn: formatLsn(tx.commitLsn), endLsn: formatLsn(endLsn), changes: tx.index },
          'transaction handed off',
        );
        return;
      }
      case 'origin':
      case 'type':
      case 'message':
        return;
      default:
        throw new Error(`unknown pgoutput message ${(message as { tag: string }).tag}`);
    }
  }

  /**
   * Stops reading the replication socket while the pacer reports congestion
   * (the messages of the chunk already read still go through). Resumes as
   * soon as it clears, or when the stream stops.
   */
  #pace(): void {
    this.#sincePaceCheck = 0;
    const pacer = this.#options.pacer;
    if (this.#paused || !pacer?.congested()) return;
    const socket = replicationSocket(this.#service);
    if (!socket) return;
    this.#paused = true;
    socket.pause();
    const timer = setInterval(() => {
      if (this.#running && this.#connected && pacer.congested()) return;
      clearInterval(timer);
      this.#paused = false;
      socket.resume();
    }, 10);
  }

  /** Replaces the library's `pg-types` parsers with rowcast's converters. */
  #installParsers(relation: Relation): void {
    for (const column of relation.columns) column.parser = this.#options.valueParser(column.typeOid);
  }

  /**
   * Tells Postgres the handed-off position (or the `holdBack` position, when
   * that is earlier) as written, flushed and applied. The library's
   * `acknowledge` adds one to the position it is given, so it gets
   * `position - 1`: the slot's `confirmed_flush_lsn` becomes exactly that
   * position, and a transaction committed at it is sent again after a restart.
   */
  #sendStatus(force = false, requestReply = false): void {
    const service = this.#service;
    if (!service || !this.#connected || this.#handedOff === 0n) return;
    const held = this.#options.holdBack?.() ?? null;
    const position = held !== null && held < this.#handedOff ? held : this.#handedOff;
    if (!force && position <= this.#acknowledged) return;
    void service.acknowledge(formatLsn(position - 1n), requestReply).then((sent) => {
      if (sent && position > this.#acknowledged) this.#acknowledged = position;
    });
  }
}

/** Reply requests within one second that mean the walsender is waiting to shut down. */
const SHUTDOWN_REPLY_REQUESTS = 5;

/** How many changes pass between two looks at the pacer. */
const PACE_CHECK_EVERY = 16;

/**
 * The socket under the service's replication connection. The library keeps
 * it private; its own flow-control mode pauses this same stream.
 */
function replicationSocket(service: LogicalReplicationService | null): { pause(): void; resume(): void } | undefined {
  return (service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } } | null)?._connection?.stream;
}

function onceStarted(service: LogicalReplicationService): Promise<void> {
  return new Promise((resolve) => service.once('start', () => resolve()));
}

function toChange(
  message: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete | Pgoutput.MessageTruncate,
  index: number,
) {
  switch (message.tag) {
    case 'insert':
      return { tag: 'insert', index, relation: message.relation, new: message.new } as const;
    case 'update':
      return {
        tag: 'update',
        index,
        relation: message.relation,
        old: message.old,
        new: message.new,
        unchanged: unchangedColumns(message.new),
      } as const;
    case 'delete':
      return { tag: 'delete', index, relation: message.relation, old: (message.old ?? message.key) as Row } as const;
    case 'truncate':
      return { tag: 'truncate', index, relations: message.relations } as const;
  }
}

/**
 * pgoutput marks a TOAST value the update did not touch as "unchanged" and
 * sends no data; the parser fills it from the old row when it has one and
 * leaves `undefined` otherwise. Those columns are removed and listed.
 */
function unchangedColumns(row: Row): readonly string[] {
  let unchanged: string[] | null = null;
  for (const key in row) {
    if (row[key] === undefined) {
      (unchanged ??= []).push(key);
      delete row[key];
    }
  }
  return unchanged ?? NONE;
}

const NONE: readonly string[] = Object.freeze([]);
