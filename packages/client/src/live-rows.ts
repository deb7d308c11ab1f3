import type { LiveEvent, RowcastClient, SubscribeOptions } from './client.js';

/** A row as events carry it: its attributes (the default row type of {@link liveRows}). */
export type Row = Record<string, unknown>;

/**
 * Rows by id, as a snapshot gives them. `R` is the row's type as the app
 * knows it: any object type, an `interface` too.
 */
export type Snapshot<R extends object = Row> = Iterable<readonly [string, R]>;

/**
 * Options of {@link liveRows}. `R` is the type of a row's attributes as the
 * app knows them (an `interface` or a `type`), typed as the server sends
 * them (docs/protocol.md, values); nothing checks it at run time.
 */
export interface LiveRowsOptions<R extends object = Row> {
  readonly filter?: SubscribeOptions['filter'];
  /**
   * Rows the app has already (by id), e.g. from a REST call made before
   * subscribing or a server-rendered page; default: none. With the server's
   * snapshot they are shown until its rows replace them.
   */
  readonly snapshot?: Snapshot<R>;
  /**
   * Loads the current rows (e.g. a REST call) instead of the server's
   * snapshot. Given, it is called once the subscription is live, and again
   * whenever the server cannot replay what was missed (`resumed: false`):
   * events that arrive meanwhile are held and applied on top of what it
   * returns, in order, so nothing committed after the subscription is lost
   * and nothing older wins.
   */
  readonly load?: () => Promise<Snapshot<R>>;
  /**
   * Start from the server's snapshot (`subscribe` with `snapshot: true`):
   * the rows this token may read with `filter`, then the changes after
   * exactly them. After a reconnect the server could not resume, a fresh
   * snapshot replaces the rows by itself. Default: `true` unless `load` is
   * given; `false` starts from `snapshot` (or empty) and applies the events
   * on top.
   */
  readonly serverSnapshot?: boolean;
  /** Called after each change with the current rows. */
  readonly onChange?: (rows: ReadonlyMap<string, R>) => void;
  /**
   * The server could not replay what was missed while disconnected. Without
   * `load` or the server's snapshot (which heal the rows themselves, and
   * this is not called), the rows may be stale: refetch and call `reset`.
   */
  readonly onResync?: () => void;
  /** The subscription failed or was revoked (see `subscribe`); `LIMIT_EXCEEDED` when the snapshot has more rows than the server sends (narrow it with `filter`). */
  readonly onError?: SubscribeOptions['onError'];
}

/** A table's rows kept current from its events. */
export interface LiveRows<R extends object = Row> {
  /** The current rows by id. The same `Map` is updated in place; `version` tells changes apart. */
  readonly rows: ReadonlyMap<string, R>;
  /** Incremented on every change. */
  readonly version: number;
  /** Resolves once the subscription is live and its rows are there: the server's snapshot or the first `load` applied. Rejects with the subscription's error. */
  readonly ready: Promise<unknown>;
  /** Replaces the rows (after a refetch). */
  reset(snapshot: Snapshot<R>): void;
  /** Unsubscribes. */
  close(): void;
}

/**
 * Keeps a `Map` of a table's rows current: `create` and `update` put the
 * row, `delete` removes it. Starts from the server's snapshot of the rows
 * this token may read (by default), or from what `load` returns once the
 * subscription is live, so an app sees every change committed after its
 * starting point on top of it.
 *
 * @example
 * const orders = liveRows(client, 'order', {
 *   filter: { status: { neq: 'cancelled' } },
 *   onChange: (rows) => render([...rows.values()]),
 * });
 */
export function liveRows<R extends object = Row>(client: RowcastClient, table: string, options: LiveRowsOptions<R> = {}): LiveRows<R> {
  if (options.load && options.serverSnapshot) throw new TypeError('liveRows: `load` replaces the server snapshot; give one of `load` and `serverSnapshot: true`');
  const fromServer = options.serverSnapshot ?? !options.load;
  const rows = new Map<string, R>(options.snapshot ?? []);
  /** Events held while a load runs; null when none runs. */
  let held: Array<LiveEvent<R>> | null = null;
  let closed = false;
  const changed = () => {
    state.version++;
    options.onChange?.(rows);
  };
  const put = (event: LiveEvent<R>) => {
    if (event.event === 'delete') rows.delete(event.data.id);
    else rows.set(event.data.id, event.data.attributes);
  };
  const reset = (snapshot: Snapshot<R>) => {
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
  /** The server snapshot's rows so far, while one is on its way; they replace the rows at its last page. */
  let pages: Array<[string, R]> | null = null;
  let snapshotApplied = () => {};
  let snapshotFailed = (_error: unknown) => {};
  const firstSnapshot = new Promise<void>((resolve, reject) => {
    snapshotApplied = resolve;
    snapshotFailed = reject;
  });
  firstSnapshot.catch(() => {});
  const unsubscribe = client.subscribe<R>(
    table,
    {
      ...(options.filter ? { filter: options.filter } : {}),
      ...(fromServer
        ? {
            snapshot: true,
            onSnapshot: (page) => {
              if (closed) return;
              if (page.first || pages === null) pages = [];
              for (const row of page.rows) pages.push([row.id, row.attributes]);
              if (!page.done) return;
              reset(pages);
              pages = null;
              changed();
              snapshotApplied();
            },
          }
        : {}),
      onResync: () => {
        options.onResync?.();
        void load().catch(() => {});
      },
      onError: (error) => {
        snapshotFailed(error);
        options.onError?.(error);
      },
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
    ready: fromServer ? unsubscribe.ready.then(() => firstSnapshot) : unsubscribe.ready.then(load),
    reset(snapshot: Snapshot<R>) {
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
