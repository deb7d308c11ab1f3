import type { AggregateFrame } from '../../../src/protocol/index.js';

/**
 * An aggregate's counts as the app gets them: a new object after each
 * change, the same one while nothing changes.
 */
export interface AggregateCounts {
  /**
   * Each group's count, by the `groupBy` column's value as the rows'
   * attributes carry it (a `numeric` column's values are strings, `null`
   * for rows without one). A group that emptied is absent. Empty without
   * `groupBy`.
   */
  readonly groups: ReadonlyMap<unknown, number>;
  /** How many rows are counted, in all groups. */
  readonly total: number;
}

/** No counts yet: what an aggregate shows before its first `state`. */
export const NO_COUNTS: AggregateCounts = Object.freeze({ groups: new Map<unknown, number>(), total: 0 });

/**
 * Folds an aggregate subscription's frames: a `state` replaces the counts,
 * a `diff` sets the groups it carries (`count: 0` removes one) and the
 * total. Groups are kept by their key's JSON, so a key that is a JSON object
 * (a `json` column) is one group however often it comes.
 */
export class AggregateTally {
  /** Key as JSON → the key (the first object seen for it) and its count. */
  readonly #groups = new Map<string, { readonly key: unknown; count: number }>();
  #counts: AggregateCounts | null = null;

  /** The counts, once a `state` came. */
  get counts(): AggregateCounts | null {
    return this.#counts;
  }

  /** Applies `frame`; returns whether the counts changed (a new {@link counts} object). */
  apply(frame: Pick<AggregateFrame, 'event' | 'data'>): boolean {
    const before = this.#counts;
    let changed = before === null || before.total !== frame.data.total;
    const next = new Map<string, { readonly key: unknown; count: number }>(frame.event === 'state' ? [] : this.#groups);
    for (const { key, count } of frame.data.groups) {
      const json = JSON.stringify(key);
      const had = this.#groups.get(json);
      if (count === 0) next.delete(json);
      else next.set(json, { key: had?.key ?? key, count });
    }
    if (!changed) changed = next.size !== this.#groups.size || [...next].some(([json, { count }]) => this.#groups.get(json)?.count !== count);
    this.#groups.clear();
    for (const [json, group] of next) this.#groups.set(json, group);
    if (changed) this.#counts = Object.freeze({ groups: new Map([...next.values()].map(({ key, count }) => [key, count])), total: frame.data.total });
    return changed;
  }
}
