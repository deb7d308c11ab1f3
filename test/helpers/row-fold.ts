import type { EventData, ServerFrame } from '../../src/protocol/index.js';

/**
 * A client's view of a table topic after `subscribe` with `snapshot: true`:
 * the snapshot's rows, then each event folded in. Every frame must fit what
 * came before (docs/snapshots.md): no event before the last page, a create
 * only for an absent row, an update or delete only for a present one, no row
 * twice in the snapshot. What does not fit is kept in `violations`.
 */
export class RowFold {
  readonly rows = new Map<string, unknown>();
  readonly violations: string[] = [];
  /** Whether the last page came. */
  done = false;
  /** The last page's `seq`. */
  seq: string | null = null;
  /** The highest `seq` seen (the last page's, or a later event's): where a resume starts. */
  highest: string | null = null;
  #part = 0;
  readonly #topic: string;

  constructor(topic: string) {
    this.#topic = topic;
  }

  /** `since` for a resume: the highest `seq` seen, with the part of its frame when it had one. */
  get since(): string | null {
    if (this.highest === null) return null;
    return this.#part > 0 ? `${this.highest}/${this.#part}` : this.highest;
  }

  /** Folds in one frame (frames of other topics, and other types, are ignored). */
  apply(frame: ServerFrame): void {
    if (frame.type === 'snapshot' && frame.topic === this.#topic) {
      if (this.done) this.violations.push('a snapshot page after the last one');
      for (const row of frame.data) {
        if (this.rows.has(row.id)) this.violations.push(`row ${row.id} twice in the snapshot`);
        this.rows.set(row.id, row.attributes);
      }
      if (frame.done) {
        this.done = true;
        this.seq = frame.seq;
        if (this.highest === null || frame.seq > this.highest) {
          this.highest = frame.seq;
          this.#part = 0;
        }
      }
    } else if (frame.type === 'event' && frame.topic === this.#topic) {
      if (!this.done) this.violations.push(`${frame.event} ${frame.data.id} before the last snapshot page`);
      this.#event(frame.event, frame.data, frame.seq);
      if (this.highest === null || frame.seq > this.highest || (frame.seq === this.highest && (frame.part ?? 0) > this.#part)) {
        this.highest = frame.seq;
        this.#part = frame.part ?? 0;
      }
    }
  }

  #event(kind: string, data: EventData, seq: string): void {
    const present = this.rows.has(data.id);
    if (kind === 'create' && present) this.violations.push(`create of present row ${data.id} (${seq})`);
    if ((kind === 'update' || kind === 'delete') && !present) this.violations.push(`${kind} of absent row ${data.id} (${seq})`);
    if (kind === 'delete') this.rows.delete(data.id);
    else this.rows.set(data.id, data.attributes);
  }
}

/** A client's view of an aggregate subscription: the `state`, then each `diff` folded in (a group at 0 leaves). */
export class AggregateFold {
  /** Group key (as JSON) → count. */
  readonly groups = new Map<string, number>();
  total: number | null = null;
  readonly #topic: string;

  constructor(topic: string) {
    this.#topic = topic;
  }

  apply(frame: ServerFrame): void {
    if (frame.type !== 'aggregate' || frame.topic !== this.#topic) return;
    if (frame.event === 'state') this.groups.clear();
    for (const { key, count } of frame.data.groups) {
      if (count === 0) this.groups.delete(JSON.stringify(key));
      else this.groups.set(JSON.stringify(key), count);
    }
    this.total = frame.data.total;
  }

  /** The groups sorted by key, as JSON (to compare with SQL's). */
  summary(): string {
    return JSON.stringify([...this.groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}
