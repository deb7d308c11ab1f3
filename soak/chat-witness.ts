import type { LiveEvent } from '@rowcast/client';
import { WitnessConnection, type Claims } from './witness-connection.js';

/** What a chat witness found. */
export interface ChatWitnessReport {
  readonly name: string;
  /** Room messages it must have: every one the server acknowledged, and every one still stored at the end. */
  readonly expected: number;
  readonly received: number;
  /** Expected and never received. */
  readonly lost: number;
  /** Received twice. */
  readonly duplicates: number;
  /** Events whose `seq` did not ascend. */
  readonly backwards: number;
  /** Messages whose `seq` differs from the one stored with it. */
  readonly seqMismatches: number;
  /** Received, but neither acknowledged nor stored at the end: sent on a connection that dropped before the answer, and pruned since (cannot be checked). */
  readonly unverifiable: number;
  /** `resumed: false` on resubscribing to the room (a loss). */
  readonly resyncs: number;
  /** The ephemeral topic: received, not ascending, and its `resumed: false` answers (expected after every reconnect: nothing is kept). */
  readonly pings: { readonly received: number; readonly backwards: number; readonly resyncs: number };
  readonly sessions: number;
  readonly slowestReconnectMs: number;
  readonly problems: string[];
}

/**
 * A client that must not miss a chat message: subscribed to the room (a
 * topic with history, resumable with `since` from stored messages) and to
 * the ephemeral topic, cut from time to time. At the end its room messages
 * are compared with those the server acknowledged and those still stored.
 */
export class ChatWitness {
  readonly name: string;
  readonly connection: WitnessConnection;
  readonly ready: Promise<unknown>;
  /** Room message id → seq, as received. */
  readonly #room = new Map<string, string>();
  #received = 0;
  #duplicates = 0;
  #backwards = 0;
  #resyncs = 0;
  #lastSeq = '';
  readonly #pings = { received: 0, backwards: 0, resyncs: 0, lastSeq: '' };
  readonly #problems: string[] = [];

  constructor(name: string, urls: readonly string[], claims: Claims, room: string, pings: string) {
    this.name = name;
    this.connection = new WitnessConnection(urls, claims);
    const { client } = this.connection;
    const onError = (error: { code: string; message: string }) => this.#problem(`subscription error ${error.code}: ${error.message}`);
    const roomReady = client.subscribe(
      room,
      {
        onResync: () => {
          this.#resyncs++;
          this.#problem(`resumed: false on resubscribing to ${room} (after ${this.#received} messages)`);
        },
        onError,
      },
      (event) => this.#onRoom(event),
    ).ready;
    const pingsReady = client.subscribe(pings, { onResync: () => this.#pings.resyncs++, onError }, (event) => this.#onPing(event)).ready;
    this.ready = Promise.all([roomReady, pingsReady]);
  }

  /** Room messages received so far (for progress and stall detection). */
  get received(): number {
    return this.#received;
  }

  /** Whether it has every message in `ids`. */
  has(ids: Iterable<string>): boolean {
    for (const id of ids) if (!this.#room.has(id)) return false;
    return true;
  }

  #onRoom(event: LiveEvent): void {
    this.#received++;
    if (event.seq <= this.#lastSeq) {
      this.#backwards++;
      this.#problem(`room seq ${event.seq} after ${this.#lastSeq}`);
    }
    this.#lastSeq = event.seq > this.#lastSeq ? event.seq : this.#lastSeq;
    if (this.#room.has(event.data.id)) this.#duplicates++;
    else this.#room.set(event.data.id, event.seq);
  }

  #onPing(event: LiveEvent): void {
    this.#pings.received++;
    if (event.seq <= this.#pings.lastSeq) this.#pings.backwards++;
    else this.#pings.lastSeq = event.seq;
  }

  #problem(text: string): void {
    if (this.#problems.length < 10) this.#problems.push(`${this.name}: ${text}`);
  }

  /** `acked`: ids the server acknowledged; `stored`: id → seq of the room's messages in the database at the end. */
  report(acked: ReadonlySet<string>, stored: ReadonlyMap<string, string | null>): ChatWitnessReport {
    const expected = new Set([...acked, ...stored.keys()]);
    const lost = [...expected].filter((id) => !this.#room.has(id));
    if (lost.length > 0) this.#problem(`${lost.length} room messages never arrived, e.g. ${lost.slice(0, 3).join(', ')}`);
    const seqMismatches = [...stored].filter(([id, seq]) => this.#room.has(id) && this.#room.get(id) !== seq).length;
    if (seqMismatches > 0) this.#problem(`${seqMismatches} room messages arrived with another seq than stored`);
    if (this.#duplicates > 0) this.#problem(`${this.#duplicates} room messages arrived twice`);
    return {
      name: this.name,
      expected: expected.size,
      received: this.#received,
      lost: lost.length,
      duplicates: this.#duplicates,
      backwards: this.#backwards,
      seqMismatches,
      unverifiable: [...this.#room.keys()].filter((id) => !expected.has(id)).length,
      resyncs: this.#resyncs,
      pings: { received: this.#pings.received, backwards: this.#pings.backwards, resyncs: this.#pings.resyncs },
      sessions: this.connection.sessions,
      slowestReconnectMs: this.connection.slowestReconnectMs,
      problems: [...this.#problems],
    };
  }
}
