import { NO_COUNTS, type AggregateCounts } from './aggregate.js';
import type { AggregateOptions, RowcastClient } from './client.js';

export interface LiveAggregateOptions {
  /** A column of the table: counts per value of it. Without it only `total` is counted. */
  readonly groupBy?: string;
  /** As in `subscribe`: only the rows that pass it are counted. */
  readonly filter?: AggregateOptions['filter'];
  /** Called after each change with the current counts. */
  readonly onChange?: (counts: AggregateCounts) => void;
  /** The aggregate was refused or revoked (see `aggregate`). */
  readonly onError?: AggregateOptions['onError'];
}

/** A table's row counts kept current. */
export interface LiveAggregate {
  /** The current counts: `groups` (value → count) and `total`; a new object on every change. Empty (`total` 0) until the first counts. */
  readonly counts: AggregateCounts;
  /** The current `counts.groups`. */
  readonly groups: ReadonlyMap<unknown, number>;
  /** The current `counts.total`. */
  readonly total: number;
  /** Incremented on every change. */
  readonly version: number;
  /** Resolves once the first counts are there; rejects with the aggregate's error. */
  readonly ready: Promise<AggregateCounts>;
  /** Stops counting (unsubscribes once no other aggregate of the client shares it). */
  close(): void;
}

/**
 * Keeps the counts of a table's rows this token may read current: per
 * value of `groupBy` when given, and their `total`. The server counts them
 * (`subscribe` with `aggregate`) and sends the changed groups at most every
 * 100 ms; after a reconnect, fresh counts replace the held ones.
 *
 * @example
 * const byStatus = liveAggregate(client, 'order', {
 *   groupBy: 'status',
 *   onChange: ({ groups, total }) => render(groups.get('open') ?? 0, total),
 * });
 */
export function liveAggregate(client: RowcastClient, table: string, options: LiveAggregateOptions = {}): LiveAggregate {
  let counted = () => {};
  let failed = (_error: unknown) => {};
  const first = new Promise<void>((resolve, reject) => {
    counted = resolve;
    failed = reject;
  });
  first.catch(() => {});
  let closed = false;
  const stop = client.aggregate(
    table,
    {
      ...(options.groupBy !== undefined ? { groupBy: options.groupBy } : {}),
      ...(options.filter ? { filter: options.filter } : {}),
      onError: (error) => {
        failed(error);
        options.onError?.(error);
      },
    },
    (counts) => {
      if (closed || counts === state.counts) return;
      state.counts = counts;
      state.version++;
      counted();
      options.onChange?.(counts);
    },
  );
  const state: { counts: AggregateCounts; version: number } & Omit<LiveAggregate, 'counts' | 'version'> = {
    counts: NO_COUNTS,
    get groups() {
      return state.counts.groups;
    },
    get total() {
      return state.counts.total;
    },
    version: 0,
    ready: stop.ready.then(() => first).then((): AggregateCounts => state.counts),
    close: () => {
      closed = true;
      stop();
    },
  };
  state.ready.catch(() => {});
  return state;
}
