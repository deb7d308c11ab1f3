/**
 * `rowcast/react`: React bindings of the client. React is a peer dependency.
 *
 * @example
 * const client = createClient({ url: 'ws://localhost:6336/live', getToken });
 * <RowcastProvider client={client}><Orders /></RowcastProvider>
 *
 * function Orders() {
 *   const { rows } = useLiveRows('order');
 *   return <ul>{rows.map((row) => <li key={String(row.id)}>{String(row.amount)}</li>)}</ul>;
 * }
 */
import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import {
  liveAggregate,
  liveRows,
  type AggregateCounts,
  type ConnectionState,
  type LiveEvent,
  type Presence,
  type PresenceMeta,
  type PresenceMetaInput,
  type PresenceState,
  type Row,
  type RowcastClient,
  type RowcastClientError,
  type Snapshot,
  type SubscribeOptions,
} from '@rowcast/client';

const RowcastContext = createContext<RowcastClient | null>(null);

/** Makes `client` the one `useRowcast` and the hooks below use. The app creates (and closes) the client. */
export function RowcastProvider(props: { readonly client: RowcastClient; readonly children?: ReactNode }): ReactNode {
  return createElement(RowcastContext.Provider, { value: props.client }, props.children);
}

/** The client of the nearest {@link RowcastProvider}. */
export function useRowcast(): RowcastClient {
  const client = useContext(RowcastContext);
  if (!client) throw new Error('useRowcast: no <RowcastProvider client={…}> above this component');
  return client;
}

/** The connection's state; re-renders when it changes. */
export function useConnectionState(): ConnectionState {
  const client = useRowcast();
  return useSyncExternalStore(
    useCallback((onChange: () => void) => client.onState(onChange), [client]),
    () => client.state,
  );
}

/** Where a hook's subscription is. `resyncs` counts `resumed: false` answers after reconnects (refetch what you derived); not those a server snapshot heals. */
export interface SubscriptionStatus {
  readonly status: 'subscribing' | 'live' | 'error';
  readonly error?: RowcastClientError;
  readonly resyncs: number;
}

export interface UseTopicOptions {
  readonly filter?: SubscribeOptions['filter'];
  readonly events?: SubscribeOptions['events'];
  /** How many of the latest events to keep (default 100). */
  readonly keep?: number;
}

/**
 * Subscribes to a topic while the component is mounted and returns its
 * latest events (oldest first) and the subscription's status. Options are
 * compared by value, so an inline `{filter: …}` does not resubscribe.
 *
 * A refused subscription is `status: 'error'` with `error`, a
 * {@link RowcastClientError}: `TOPIC_NOT_FOUND` when no such topic exists
 * or this token may not read it (a custom topic is created by an admin:
 * `create-topic`, `POST /admin/topics`), `TOPIC_FULL`, `INVALID_ATTRIBUTES`,
 * `LIMIT_EXCEEDED`; a revoked one (`FORBIDDEN`) too. A refusal is final:
 * nothing subscribes again until the topic or options change or the
 * component mounts anew.
 *
 * @example
 * const { events, status, error } = useTopic<{ message: { text: string }; sender: string | null }>('lobby');
 * if (status === 'error') return <p>{error?.code}</p>; // TOPIC_NOT_FOUND: create the topic
 */
export function useTopic<A = Record<string, unknown>>(topic: string, options: UseTopicOptions = {}): SubscriptionStatus & { readonly events: ReadonlyArray<LiveEvent<A>> } {
  const client = useRowcast();
  const keep = options.keep ?? 100;
  const key = JSON.stringify([options.filter ?? null, options.events ?? null]);
  const [events, setEvents] = useState<ReadonlyArray<LiveEvent<A>>>([]);
  const [status, setStatus] = useState<SubscriptionStatus>({ status: 'subscribing', resyncs: 0 });
  useEffect(() => {
    const [filter, kinds] = JSON.parse(key) as [SubscribeOptions['filter'] | null, SubscribeOptions['events'] | null];
    setStatus({ status: 'subscribing', resyncs: 0 });
    const unsubscribe = client.subscribe<A>(
      topic,
      {
        ...(filter ? { filter } : {}),
        ...(kinds ? { events: kinds } : {}),
        onResync: () => setStatus((s) => ({ ...s, resyncs: s.resyncs + 1 })),
        onError: (error) => setStatus((s) => ({ ...s, status: 'error', error })),
      },
      (event) => setEvents((latest) => [...latest.slice(Math.max(0, latest.length - keep + 1)), event]),
    );
    unsubscribe.ready.then(
      () => setStatus((s) => (s.status === 'subscribing' ? { ...s, status: 'live' } : s)),
      () => {},
    );
    return unsubscribe;
  }, [client, topic, key, keep]);
  return { ...status, events };
}

/** Options of {@link useLiveRows}; `R` is the row type, as there. */
export interface UseLiveRowsOptions<R extends object = Row> {
  readonly filter?: SubscribeOptions['filter'];
  /** Rows the app already has (e.g. from a fetch or the server-rendered page), by id; read when the subscription starts, shown until the server's snapshot replaces them. */
  readonly snapshot?: Snapshot<R>;
  /**
   * Loads the current rows once the subscription is live, and again after
   * every reconnect the server could not replay (see `liveRows`), instead of
   * the server's snapshot. The latest function is used; a new one does not
   * resubscribe.
   */
  readonly load?: () => Promise<Snapshot<R>>;
  /** The server's snapshot gives the rows (see `liveRows`): by default, unless `load` is given. `false`: `snapshot` (or none), then the events. */
  readonly serverSnapshot?: boolean;
}

/**
 * A table's rows, kept current from its events while the component is
 * mounted: `rows` (in arrival order) and `byId`. Without `load` the rows
 * come from the server's snapshot: `status` is `live` once they are there.
 * The component re-renders only when a row changes.
 *
 * `R` is the type of a row's attributes as the app knows them: an
 * `interface` or a `type`, typed as the server sends them (docs/protocol.md,
 * values: `int8` a number or, past 2^53, a string; `numeric` a string;
 * `timestamptz` an ISO string). Nothing checks it at run time. A row's id
 * (the keys of `byId`) is always a string.
 *
 * @example
 * interface Order { id: number | string; amount: string | null; status: string | null }
 * const { rows, status, error } = useLiveRows<Order>('order', { filter: { status: { eq: 'paid' } } });
 */
export function useLiveRows<R extends object = Row>(table: string, options: UseLiveRowsOptions<R> = {}): SubscriptionStatus & { readonly rows: readonly R[]; readonly byId: ReadonlyMap<string, R> } {
  const client = useRowcast();
  const key = JSON.stringify(options.filter ?? null);
  const { serverSnapshot } = options;
  const snapshot = useRef(options.snapshot);
  snapshot.current = options.snapshot;
  const load = useRef(options.load);
  load.current = options.load;
  // One store per mounted hook: the rows as an immutable snapshot, replaced on every change.
  const store = useMemo(() => ({ view: { rows: [] as R[], byId: new Map<string, R>() as ReadonlyMap<string, R> }, listeners: new Set<() => void>() }), []);
  const [status, setStatus] = useState<SubscriptionStatus>({ status: 'subscribing', resyncs: 0 });
  useEffect(() => {
    const filter = JSON.parse(key) as SubscribeOptions['filter'] | null;
    const publish = (rows: ReadonlyMap<string, R>) => {
      store.view = { rows: [...rows.values()], byId: new Map(rows) };
      for (const listener of [...store.listeners]) listener();
    };
    setStatus({ status: 'subscribing', resyncs: 0 });
    const live = liveRows<R>(client, table, {
      ...(filter ? { filter } : {}),
      ...(snapshot.current ? { snapshot: snapshot.current } : {}),
      ...(load.current ? { load: () => load.current!() } : {}),
      ...(serverSnapshot !== undefined ? { serverSnapshot } : {}),
      onChange: publish,
      onResync: () => setStatus((s) => ({ ...s, resyncs: s.resyncs + 1 })),
      onError: (error) => setStatus((s) => ({ ...s, status: 'error', error })),
    });
    publish(live.rows);
    live.ready.then(
      () => setStatus((s) => (s.status === 'subscribing' ? { ...s, status: 'live' } : s)),
      () => {},
    );
    return () => live.close();
  }, [client, table, key, serverSnapshot, store]);
  const view = useSyncExternalStore(
    useCallback(
      (onChange: () => void) => {
        store.listeners.add(onChange);
        return () => store.listeners.delete(onChange);
      },
      [store],
    ),
    () => store.view,
  );
  return { ...status, ...view };
}

export interface UseAggregateOptions {
  /** A column of the table: counts per value of it. Without it only `total` is counted. */
  readonly groupBy?: string;
  /** As in `subscribe`: only the rows that pass it are counted. */
  readonly filter?: SubscribeOptions['filter'];
}

/** What {@link useAggregate} returns. */
export interface AggregateView {
  /** `live` once the first counts are there. */
  readonly status: SubscriptionStatus['status'];
  readonly error?: RowcastClientError;
  /** Each group's count by the `groupBy` column's value (a group that emptied is absent); empty without `groupBy`. A new `Map` on every change. */
  readonly groups: ReadonlyMap<unknown, number>;
  /** How many rows are counted; 0 until the first counts. */
  readonly total: number;
}

const NOTHING_COUNTED: AggregateCounts = Object.freeze({ groups: new Map<unknown, number>(), total: 0 });

/**
 * The counts of a table's rows this token may read (with `filter`), per
 * value of `groupBy` when given, kept current by the server while the
 * component is mounted (`liveAggregate`). Options are compared by value;
 * new options start from empty counts. The component re-renders only when
 * a count changes.
 *
 * @example
 * function Open() {
 *   const { groups, total, status } = useAggregate('order', { groupBy: 'status' });
 *   if (status !== 'live') return <p>counting…</p>;
 *   return <p>{groups.get('open') ?? 0} open of {total}</p>;
 * }
 */
export function useAggregate(table: string, options: UseAggregateOptions = {}): AggregateView {
  const client = useRowcast();
  const key = JSON.stringify([options.groupBy ?? null, options.filter ?? null]);
  // One store per mounted hook: the counts (a new object from the client on every change).
  const store = useMemo(() => ({ counts: NOTHING_COUNTED, listeners: new Set<() => void>() }), []);
  const [status, setStatus] = useState<Omit<AggregateView, 'groups' | 'total'>>({ status: 'subscribing' });
  useEffect(() => {
    const [groupBy, filter] = JSON.parse(key) as [string | null, SubscribeOptions['filter'] | null];
    const publish = (counts: AggregateCounts) => {
      if (counts === store.counts) return;
      store.counts = counts;
      for (const listener of [...store.listeners]) listener();
    };
    setStatus({ status: 'subscribing' });
    publish(NOTHING_COUNTED);
    const live = liveAggregate(client, table, {
      ...(groupBy !== null ? { groupBy } : {}),
      ...(filter ? { filter } : {}),
      onChange: publish,
      onError: (error) => setStatus({ status: 'error', error }),
    });
    live.ready.then(
      () => setStatus((s) => (s.status === 'subscribing' ? { status: 'live' } : s)),
      () => {},
    );
    return () => live.close();
  }, [client, table, key, store]);
  const counts = useSyncExternalStore(
    useCallback(
      (onChange: () => void) => {
        store.listeners.add(onChange);
        return () => store.listeners.delete(onChange);
      },
      [store],
    ),
    () => store.counts,
  );
  return { ...status, groups: counts.groups, total: counts.total };
}

type Message = Parameters<RowcastClient['publish']>[1];

/**
 * What {@link usePublish} returns: publishes `message` (any JSON) to the
 * topic. It resolves with the message's `id` and `seq`, and rejects with a
 * {@link RowcastClientError} (never anything else) whose `code` says why:
 * `TOPIC_NOT_FOUND` (no such custom topic, or not readable), `FORBIDDEN`
 * (this user is not one of its `writers`), `READ_ONLY_TOPIC` (a table),
 * `LIMIT_EXCEEDED` (over `MAX_CHAT_MESSAGE_BYTES`), `RATE_LIMIT_EXCEEDED`
 * (`retryAfter`: ms to wait), `CONNECTION_LOST` (the connection closed with
 * it in flight: it may or may not have been stored), `TIMEOUT`, `CLOSED`.
 * Only a message JSON cannot encode (a cycle, a `BigInt`) rejects with
 * `JSON.stringify`'s `TypeError` instead; it never throws. Handle the
 * rejection (`.catch`, or `try`/`await`): an unhandled one is an unhandled
 * promise rejection.
 *
 * @example
 * const publish = usePublish('lobby');
 * publish({ text }).catch((error: RowcastClientError) => setProblem(error.code));
 */
export type Publish = (message: Message) => ReturnType<RowcastClient['publish']>;

/** A function that publishes to a custom topic (`new-message`); see {@link Publish} for its answer and its rejections. */
export function usePublish(topic: string): Publish {
  const client = useRowcast();
  // async: even a message that cannot be encoded (thrown by the client at once) is a rejection, not a throw in the caller.
  return useCallback(async (message: Message) => client.publish(topic, message), [client, topic]);
}

/** One key present on a topic (a user, by the token's `sub`), with a meta per connection (tab) that tracks it. */
export interface PresenceMember {
  readonly key: string;
  readonly metas: readonly PresenceMeta[];
}

/** What {@link usePresence} returns. `status` is the subscription's; a refused `track` is an `error` too. */
export interface PresenceView {
  readonly status: SubscriptionStatus['status'];
  readonly error?: RowcastClientError;
  /** Who is present, one entry per key, in the order the server listed or they joined. */
  readonly members: readonly PresenceMember[];
  /** The same as key → metas (Phoenix's shape, `client.presence(topic).state()`). */
  readonly state: PresenceState;
}

const NO_ONE: PresenceState = Object.freeze({});

/**
 * Who is present on a topic with presence (a custom topic created with
 * `presence: true`, or an open channel `~name`), while the component is
 * mounted; with `meta`, this connection is tracked with it (compared by
 * value: a new `meta` updates the presence, an inline object does not), and
 * untracked on unmount. The component re-renders only when someone joins,
 * updates or leaves.
 *
 * @example
 * function Room({ me }: { me: string }) {
 *   const { members } = usePresence('~room', { name: me });
 *   return <ul>{members.map((m) => <li key={m.key}>{String(m.metas[0]?.name)} ({m.metas.length} tabs)</li>)}</ul>;
 * }
 */
export function usePresence(topic: string, meta?: PresenceMetaInput): PresenceView {
  const client = useRowcast();
  const metaKey = meta === undefined ? undefined : JSON.stringify(meta);
  // One store per mounted hook: the topic's presence and its state, replaced (by the client) on every change.
  const store = useMemo(() => ({ presence: null as Presence | null, state: NO_ONE, listeners: new Set<() => void>() }), []);
  const tracked = useRef(false);
  const [status, setStatus] = useState<Omit<PresenceView, 'members' | 'state'>>({ status: 'subscribing' });
  useEffect(() => {
    const presence = client.presence(topic);
    store.presence = presence;
    tracked.current = false;
    const publish = (state: PresenceState) => {
      if (state === store.state) return;
      store.state = state;
      for (const listener of [...store.listeners]) listener();
    };
    const stop = presence.onSync(publish);
    publish(presence.state());
    setStatus({ status: 'subscribing' });
    presence.ready.then(
      () => setStatus((s) => (s.status === 'subscribing' ? { status: 'live' } : s)),
      (error: RowcastClientError) => setStatus({ status: 'error', error }),
    );
    return () => {
      stop();
      presence.close();
      store.presence = null;
    };
  }, [client, topic, store]);
  useEffect(() => {
    const presence = store.presence!;
    if (metaKey === undefined) {
      if (tracked.current) presence.untrack().catch(() => {});
      tracked.current = false;
      return;
    }
    tracked.current = true;
    presence.track(JSON.parse(metaKey) as PresenceMetaInput).catch((error: RowcastClientError) => {
      // A lost connection is not a refusal: the client tracks the meta again when it is back.
      if (store.presence === presence && error.code !== 'CONNECTION_LOST' && error.code !== 'CLOSED') setStatus({ status: 'error', error });
    });
  }, [client, topic, store, metaKey]);
  const state = useSyncExternalStore(
    useCallback(
      (onChange: () => void) => {
        store.listeners.add(onChange);
        return () => store.listeners.delete(onChange);
      },
      [store],
    ),
    () => store.state,
  );
  const members = useMemo(() => Object.entries(state).map(([key, { metas }]) => ({ key, metas })), [state]);
  return { ...status, members, state };
}
