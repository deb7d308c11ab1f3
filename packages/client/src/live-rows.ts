import type { LiveEvent, RowcastClient, SubscribeOptions } from './client.js';

/** A row as events carry it: its `id` and its attributes. */
export type Row = Record<string, unknown>;

/** Rows by id, as a snapshot gives them. */
export type Snapshot = Iterable<readonly [string, Row]>;

export interface LiveRowsOptions {
  readonly filter?: SubscribeOptions['filter'];
  /** Rows the app loaded itself (by id), e.g. from a REST call made before subscribing; default: none. */
  readonly snapshot?: Snapshot;
  /**
   * Loads the current rows (e.g. a REST call). Given, it is called once the
   * subscription is live, and again whenever the server cannot replay what
   * was missed (`resumed: false`): events that arrive meanwhile are held and
   * applied on top of what it returns, in order, so nothing committed after
   * the subscription is lost and nothing older wins.
   */
  readonly load?: () => Promise<Snapshot>;
  /** Called after each change with the current rows. */
  readonly onChange?: (rows: ReadonlyMap<string, Row>) => void;
  /** The server could not replay what was missed while disconnected. Without `load`, the rows may be stale: refetch and call `reset`. */
  readonly onResync?: () => void;
  readonly onError?: SubscribeOptions['onError'];
}

/** A table's rows kept current from its events. */
export interface LiveRows {
  /** The current rows by id. The same `Map` is updated in place; `version` tells changes apart. */
  readonly rows: ReadonlyMap<string, Row>;
  /** Incremented on every change. */
  readonly version: number;
  /** Resolves once the subscription is live (and, with `load`, the first load applied). */
  readonly ready: Promise<unknown>;
  /** Replaces the rows (after a refetch). */
  reset(snapshot: Snapshot): void;
  /** Unsubscribes. */
  close(): void;
}

/**
 * Keeps a `Map` of a table's rows current: `create` and `update` put the
 * row, `delete` removes it. Starts from `snapshot` (or empty), or from what
 * `load` returns once the subscription is live, so an app sees every change
 * committed after it subscribed on top of a consistent starting point.
 *
 * @example
 * const orders = liveRows(client, 'order', {
 *   load: async () => (await (await fetch('/api/orders')).json()).map((o) => [String(o.id), o]),
 *   onChange: (rows) => render([...rows.values()]),
 * });
 */
export function liveRows(client: RowcastClient, table: string, options: LiveRowsOptions = {}): LiveRows {
  const rows = new Map<string, Row>(options.snapshot ?? []);
  /** Events held while a load runs; null when none runs. */
  let held: Array<LiveEvent<Row>> | null = null;
  let closed = false;
  const changed = () => {
    state.version++;
    options.onChange?.(rows);
  };
  const put = (event: LiveEvent<Row>) => {
    if (event.event === 'delete') rows.delete(event.data.id);
    else rows.set(event.data.id, event.data.attributes);
  };
  const reset = (snapshot: Snapshot) => {
    rows.clear();
    for (const [id, row] of snapshot) rows.set(id, row);
  };
  const load = async () => {
    if (!options.load || held !== null) return;
    held = [];
    try {
      const snapshot = await options.load();
      if (closed) return;
      // Events held since the subscription went live are newer than or as new as the snapshot: replayed on top, in order.
      reset(snapshot);
      for (const event of held) put(event);
      changed();
    } finally {
      held = null;
    }
  };
  const unsubscribe = client.subscribe<Row>(
    table,
    {
      ...(options.filter ? { filter: options.filter } : {}),
      onResync: () => {
        options.onResync?.();
        void load().catch(() => {});
      },
      ...(options.onError ? { onError: options.onError } : {}),
    },
    (event) => {
      if (held !== null) {
        held.push(event);
        return;
      }
      put(event);
      changed();
    },
  );
  const state = {
    rows,
    version: 0,
    ready: unsubscribe.ready.then(load),
    reset(snapshot: Snapshot) {
      reset(snapshot);
      changed();
    },
    close: () => {
      closed = true;
      unsubscribe();
    },
  };
  state.ready.catch(() => {});
  return state;
}
