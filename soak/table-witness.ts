import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { LiveEvent } from '@rowcast/client';
import type { ChangeKind, ChangeLog } from './change-log.js';
import { WitnessConnection, type Claims } from './witness-connection.js';
import { SOAK_TABLE } from './writer.js';

/** A received event, as matched against the writer's log. */
interface Received {
  readonly id: number;
  readonly kind: ChangeKind;
  readonly v: number;
}

/** What a table witness found. */
export interface TableWitnessReport {
  readonly name: string;
  /** Events it should have received: every change (admin) or every change of its owner's rows. */
  readonly expected: number;
  readonly received: number;
  /** Received in their place in the writer's log. */
  readonly matched: number;
  /** Changes it should have received and never did (skipped over, or missing at the end). */
  readonly lost: number;
  /** Received events that are not the next changes of the log (not in it, or already matched). */
  readonly unexpected: number;
  /** Events whose `seq` did not ascend (duplicates or out of order). */
  readonly backwards: number;
  /** `resumed: false` on a resubscribe: the server said it could not replay what was missed (a loss). */
  readonly resyncs: number;
  readonly sessions: number;
  readonly slowestReconnectMs: number;
  /** Rows where its cache (the events folded) differs from the database. */
  readonly rowsDiffering: number;
  readonly problems: string[];
}

/**
 * A client that must not lose anything: subscribed to {@link SOAK_TABLE} as
 * an admin (every change) or as a witness owner (the changes of its rows),
 * cut from time to time (the SDK resumes it with `since`). Each event is
 * matched as it arrives against the writer's log ({@link ChangeLog}, commit
 * order): the next change it may read must come next, once. Events may come
 * before the writer has logged their commit; they wait for it.
 *
 * It also folds the events into rows, to be compared with the table at the
 * end, and records write-to-receive latency of live events (`written_at`,
 * epoch ms, set by the writer's statement).
 */
export class TableWitness {
  readonly name: string;
  readonly connection: WitnessConnection;
  /** Resolves once the subscription is live. */
  readonly ready: Promise<unknown>;
  /** Latency of live creates and updates, in µs: over the last sample interval (the sampler resets it), and over the run. */
  readonly latency: RecordableHistogram = createHistogram();
  readonly totalLatency: RecordableHistogram = createHistogram();
  /** The events folded: row id → version. */
  readonly rows = new Map<number, number>();
  /** The owner whose rows it reads (`owner_id`); null: an admin, every change is its. */
  readonly ownerName: string | null;
  readonly #log: ChangeLog;
  readonly #owner: number | null;
  #received = 0;
  #matched = 0;
  #lost = 0;
  #backwards = 0;
  #resyncs = 0;
  readonly #problems: string[] = [];
  /** The next log index to match, and where the search for the event at the head of `#pending` stopped. */
  #cursor = 0;
  #scan = { from: 0, skipped: 0 };
  readonly #pending: Received[] = [];
  #head = 0;
  #lastSeq = '';

  /** `owner`: the owner's index in `log` and its name (its token's `sub`); null for an admin. */
  constructor(name: string, urls: readonly string[], claims: Claims, log: ChangeLog, owner: { readonly index: number; readonly name: string } | null) {
    this.name = name;
    this.#log = log;
    this.#owner = owner?.index ?? null;
    this.ownerName = owner?.name ?? null;
    this.connection = new WitnessConnection(urls, claims);
    this.ready = this.connection.client.subscribe(
      SOAK_TABLE,
      {
        onResync: () => {
          this.#resyncs++;
          this.#problem(`resumed: false on a resubscribe (after ${this.#received} events)`);
        },
        onError: (error) => this.#problem(`subscription error ${error.code}: ${error.message}`),
      },
      (event) => this.#onEvent(event),
    ).ready;
  }

  /** Events it should have by now. */
  get expected(): number {
    return this.#owner === null ? this.#log.length : this.#log.countOf(this.#owner);
  }

  /** Every change it may read is accounted for (matched or lost), nothing waits. */
  get caughtUp(): boolean {
    this.match();
    return this.#matched + this.#lost === this.expected && this.#head === this.#pending.length;
  }

  /** Received so far (for progress and stall detection). */
  get received(): number {
    return this.#received;
  }

  #onEvent(event: LiveEvent): void {
    this.#received++;
    const key = event.part ? `${event.seq}/${event.part}` : event.seq;
    if (key <= this.#lastSeq) {
      this.#backwards++;
      this.#problem(`seq ${key} after ${this.#lastSeq}`);
      return;
    }
    this.#lastSeq = key;
    const id = Number(event.data.id);
    const attributes = event.data.attributes as { v: number; written_at: number };
    if (event.event === 'delete') this.rows.delete(id);
    else {
      this.rows.set(id, attributes.v);
      // Live events only: one written before this session began may be a replayed one, late by the reconnect.
      if (attributes.written_at >= this.connection.openedAt) {
        const us = Math.max(1, Math.round((Date.now() - attributes.written_at) * 1000));
        this.latency.record(us);
        this.totalLatency.record(us);
      }
    }
    this.#pending.push({ id, kind: event.event as ChangeKind, v: attributes.v });
    this.match();
  }

  #mine(i: number): boolean {
    return this.#owner === null || this.#log.owner(i) === this.#owner;
  }

  /**
   * Matches waiting events against the log as far as it goes. An event that
   * is not the next change of the log is searched for further on; the
   * changes skipped to reach it are lost. One not in the log yet waits.
   */
  match(): void {
    const log = this.#log;
    while (this.#head < this.#pending.length) {
      const event = this.#pending[this.#head]!;
      while (this.#cursor < log.length && !this.#mine(this.#cursor)) this.#cursor++;
      if (this.#cursor >= log.length) return;
      if (log.is(this.#cursor, event.id, event.kind, event.v)) {
        this.#take(this.#cursor);
        continue;
      }
      let { from, skipped } = this.#scan.from > this.#cursor ? this.#scan : { from: this.#cursor, skipped: 0 };
      for (; from < log.length; from++) {
        if (!this.#mine(from)) continue;
        if (log.is(from, event.id, event.kind, event.v)) break;
        skipped++;
      }
      if (from >= log.length) {
        this.#scan = { from, skipped };
        return;
      }
      this.#lost += skipped;
      this.#problem(`${skipped} changes missing before ${event.kind} ${event.id} v${event.v} (log index ${from})`);
      this.#take(from);
    }
  }

  #take(index: number): void {
    this.#matched++;
    this.#cursor = index + 1;
    this.#scan = { from: 0, skipped: 0 };
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #problem(text: string): void {
    // The first few are enough to see what happened; the counters say how much.
    if (this.#problems.length < 10) this.#problems.push(`${this.name}: ${text}`);
  }

  /**
   * The final account, once the writer has stopped and the witness caught up
   * (or stalled): changes never received count as lost, and its rows are
   * compared with the table's (`table`: id → owner name and version).
   */
  report(table: ReadonlyMap<number, { owner: string; v: number }>): TableWitnessReport {
    const ownerName = this.ownerName;
    this.match();
    const expected = this.expected;
    const missingAtEnd = expected - this.#matched - this.#lost;
    if (missingAtEnd > 0) this.#problem(`${missingAtEnd} changes never arrived`);
    const unexpected = this.#pending.length - this.#head;
    if (unexpected > 0) {
      const first = this.#pending[this.#head]!;
      this.#problem(`${unexpected} events not in the writer's log (or already received), first ${first.kind} ${first.id} v${first.v}`);
    }
    let rowsDiffering = 0;
    const visible = [...table].filter(([, row]) => ownerName === null || row.owner === ownerName);
    for (const [id, row] of visible) if (this.rows.get(id) !== row.v) rowsDiffering++;
    rowsDiffering += [...this.rows.keys()].filter((id) => !table.has(id) || (ownerName !== null && table.get(id)!.owner !== ownerName)).length;
    if (rowsDiffering > 0) this.#problem(`its rows differ from the table on ${rowsDiffering} rows`);
    return {
      name: this.name,
      expected,
      received: this.#received,
      matched: this.#matched,
      lost: this.#lost + Math.max(0, missingAtEnd),
      unexpected,
      backwards: this.#backwards,
      resyncs: this.#resyncs,
      sessions: this.connection.sessions,
      slowestReconnectMs: this.connection.slowestReconnectMs,
      rowsDiffering,
      problems: [...this.#problems],
    };
  }
}
