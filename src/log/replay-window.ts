import type { Event, FrameKind } from '../events/event.js';
import { formatSeq, seqLsn, type Since } from '../events/seq.js';
import { lsnHex, type Lsn } from '../replication/lsn.js';
import type { EventLog } from './event-log.js';

/** A floor above every seq: nothing can be replayed. */
const SUSPENDED = '~';

/** What the window keeps and from where. */
export interface ReplayWindowOptions {
  readonly log: EventLog;
  /** Events kept (`HISTORY_EVENTS`); 0 turns replay off. */
  readonly capacity: number;
  /** Where this process's stream started (the slot's confirmed position): nothing before it is here. */
  readonly startLsn: Lsn;
  /**
   * The floors the previous process kept for this slot (window-floors.ts):
   * every event after `floor` is in the stream from `startLsn` on, so the
   * window starts from them rather than from `startLsn`.
   */
  readonly restored?: WindowFloorState | null;
}

/** What the window can replay from: its floor and the topics' rule-change floors. */
export interface WindowFloorState {
  readonly floor: string;
  readonly topics: Readonly<Record<string, string>>;
}

/** How one subscription sees a topic's events (see `framesForGroup`). */
export type FrameSource = (event: Event, emit: (frame: string, kind: FrameKind) => void) => void;

/**
 * The node's replay window (docs/architecture.md, docs/delivery.md): the last `capacity` events of
 * the log, in stream order, for `subscribe` with `since`.
 *
 * It can resume a client from `since` only when it holds every event after
 * it: `since` is not older than the window's floor (events before the
 * stream's start position, and events pushed out, are not here), and no read
 * rule of the topic changed after `since` (the client's cache was built under
 * the old rule and must be refetched; its subscription was revoked then).
 *
 * After a restart the window is filled again from the slot, which is kept
 * acknowledged no further than the window's oldest event ({@link holdBack}).
 */
export class ReplayWindow {
  readonly #capacity: number;
  readonly #events: Array<Event | undefined>;
  /** Index of the oldest event; `#size` events follow it (wrapping). */
  #start = 0;
  #size = 0;
  /** Every event with a `seq` above this is in the window (or still to come). */
  #floor: string;
  /** Topic → the last `seq` before its read rule changed. */
  readonly #topicFloors = new Map<string, string>();
  readonly #log: EventLog;

  constructor(options: ReplayWindowOptions) {
    this.#capacity = options.capacity;
    this.#events = new Array(options.capacity);
    this.#log = options.log;
    // The largest seq of a commit before the start position.
    this.#floor = options.startLsn > 0n ? formatSeq(lsnHex(options.startLsn - 1n), 0xffffffff) : '';
    if (options.restored) {
      this.#floor = options.restored.floor;
      for (const [topic, floor] of Object.entries(options.restored.topics)) this.#topicFloors.set(topic, floor);
    }
    if (options.capacity > 0) options.log.subscribe((event) => this.#append(event));
  }

  /**
   * Nothing at or before `seq` can be replayed any more: this node may have
   * missed events up to it (in a cluster: the stream it reads began after
   * them, or lost entries it had not read).
   */
  breakAt(seq: string): void {
    if (seq > this.#floor || this.#floor === SUSPENDED) this.#floor = seq;
  }

  /**
   * Until the next {@link breakAt}, nothing can be replayed (every `since`
   * gets `resumed: false`): this node has lost track of what it missed and
   * will know again where it stands at its next transaction.
   */
  suspend(): void {
    this.#floor = SUSPENDED;
  }

  /** A topic's read rule changed here, in the stream: no replay reaches back across it. */
  ruleChanged(topic: string): void {
    this.#topicFloors.set(topic, this.#log.lastSeq);
  }

  /**
   * The frames of every event after `since` of the given topics, in stream
   * order, as each topic's subscription sees them; `null` when the window
   * cannot tell (the client must refetch).
   */
  replay({ seq: since, part }: Since, topics: ReadonlyMap<string, FrameSource>): string[] | null {
    if (this.#capacity === 0 || since < this.#floor) return null;
    for (const topic of topics.keys()) {
      const floor = this.#topicFloors.get(topic);
      if (floor !== undefined && since <= floor) return null;
    }
    const frames: string[] = [];
    const first = this.#firstAfter(since);
    // The client saw part `part` of the `since` event: the frames of it that came after that one.
    const seen = part > 0 && first > 0 ? this.#at(first - 1) : null;
    if (seen !== null && seen.seq === since) {
      topics.get(seen.topic)?.(seen, (frame, kind) => {
        if (seen.part(kind) > part) frames.push(frame);
      });
    }
    const emit = (frame: string) => frames.push(frame);
    for (let i = first; i < this.#size; i++) {
      const event = this.#at(i);
      const source = topics.get(event.topic);
      if (source) source(event, emit);
    }
    return frames;
  }

  /** Its floors now (`null` while suspended), for window-floors.ts to keep across restarts. */
  floors(): WindowFloorState | null {
    if (this.#floor === SUSPENDED) return null;
    return { floor: this.#floor, topics: Object.fromEntries(this.#topicFloors) };
  }

  /** The newest events kept, at most `count` of them, oldest first. */
  newest(count: number): Event[] {
    const events: Event[] = [];
    for (let i = Math.max(0, this.#size - count); i < this.#size; i++) events.push(this.#at(i));
    return events;
  }

  /** The commit LSN of the oldest event kept: the slot must not be acknowledged past it. */
  holdBack(): Lsn | null {
    if (this.#size === 0) return null;
    return seqLsn(this.#at(0).seq);
  }

  /**
   * Where a subscription answered now starts: the newest event's `seq` (every
   * later event reaches it live), or the floor before the first. `since` this
   * resumes a client that saw no event before it lost its connection.
   */
  get position(): string {
    return this.#log.lastSeq || (this.#floor === SUSPENDED ? '' : this.#floor);
  }

  /** Events kept now. */
  get size(): number {
    return this.#size;
  }

  #append(event: Event): void {
    if (this.#size === this.#capacity) {
      this.#floor = this.#at(0).seq;
      this.#events[this.#start] = undefined;
      this.#start = (this.#start + 1) % this.#capacity;
      this.#size--;
    }
    this.#events[(this.#start + this.#size) % this.#capacity] = event;
    this.#size++;
  }

  #at(i: number): Event {
    return this.#events[(this.#start + i) % this.#capacity]!;
  }

  /** Position of the first event whose seq is above `since` (binary search: seqs ascend). */
  #firstAfter(since: string): number {
    let low = 0;
    let high = this.#size;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#at(middle).seq <= since) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
