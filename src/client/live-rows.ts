import type { LiveEvent, RowcastClient, SubscribeOptions } from './client.js';

/** A row as events carry it: its `id` and its attributes. */
export type Row = Record<string, unknown>;

export interface LiveRowsOptions {
  readonly filter?: SubscribeOptions['filter'];
  /** Rows the app loaded itself (by id), e.g. from a REST call made before subscribing; default: none. */
  readonly snapshot?: Iterable<readonly [string, Row]>;
  /** Called after each change with the current rows. */
  readonly onChange?: (rows: ReadonlyMap<string, Row>) => void;
  /** The server could not replay what was missed while disconnected: the rows may be stale; refetch and call `reset`. */
  readonly onResync?: () => void;
  readonly onError?: SubscribeOptions['onError'];
}

/** A table's rows kept current from its events. */
export interface LiveRows {
  /** The current rows by id. The same `Map` is updated in place; `version` tells changes apart. */
  readonly rows: ReadonlyMap<string, Row>;
  /** Incremented on every change. */
  readonly version: number;
  /** Resolves once the subscription is live. */
  readonly ready: Promise<unknown>;
  /** Replaces the rows (after a refetch). */
  reset(snapshot: Iterable<readonly [string, Row]>): void;
  /** Unsubscribes. */
  close(): void;
}

/**
 * Keeps a `Map` of a table's rows current: `create` and `update` put the
 * row, `delete` removes it. Starts from `snapshot` (or empty), so an app that
 * loads the rows first and subscribes after sees every later change.
 *
 * @example
 * const orders = liveRows(client, 'order', { onChange: (rows) => render([...rows.values()]) });
 */
export function liveRows(client: RowcastClient, table: string, options: LiveRowsOptions = {}): LiveRows {
  const rows = new Map<string, Row>(options.snapshot ?? []);
  const changed = () => {
    state.version++;
    options.onChange?.(rows);
  };
  const apply = (event: LiveEvent<Row>) => {
    if (event.event === 'delete') rows.delete(event.data.id);
    else rows.set(event.data.id, event.data.attributes);
    changed();
  };
  const unsubscribe = client.subscribe<Row>(
    table,
    {
      ...(options.filter ? { filter: options.filter } : {}),
      ...(options.onResync ? { onResync: options.onResync } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
    },
    apply,
  );
  const state = {
    rows,
    version: 0,
    ready: unsubscribe.ready,
    reset(snapshot: Iterable<readonly [string, Row]>) {
      rows.clear();
      for (const [id, row] of snapshot) rows.set(id, row);
      changed();
    },
    close: () => unsubscribe(),
  };
  return state;
}
