/**
 * The rowcast client: one /live connection that reconnects by itself,
 * resumes every subscription with `since` its last `seq`, refreshes its token
 * before it expires, and turns requests into promises. Runs in browsers
 * (the global `WebSocket`) and in Node ≥ 20 (pass `WebSocket` from `ws`).
 *
 * Only types come from the server's modules (`import type`), so the built
 * client pulls in nothing of the server.
 */
import type { AggregateFrame, AggregateSpec, DirectFrame, ErrorCode, EventFrame, Method, RequestOf, ResponseData, ServerFrame, SessionData, SnapshotFrame } from '../../../src/protocol/index.js';
import { AggregateTally, type AggregateCounts } from './aggregate.js';
import { PresenceChannel, type Presence } from './presence.js';

/** The inbox topic of direct messages (the server's `INBOX_TOPIC`). */
const INBOX = '@me';

/**
 * Errors only the client raises: the connection went away with the request
 * in flight, the client was closed, no answer in time, a snapshot that
 * failed after its answer again and again.
 */
export type ClientErrorCode = ErrorCode | 'CONNECTION_LOST' | 'CLOSED' | 'TIMEOUT' | 'SNAPSHOT_FAILED';

/** A failed request: `code` is one of the protocol's error codes (docs/protocol.md), or a {@link ClientErrorCode} of the client's own. */
export class RowcastClientError extends Error {
  override readonly name = 'RowcastClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    /** With `RATE_LIMIT_EXCEEDED`: ms to wait before retrying. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** The part of the WebSocket API the client uses: the browser's `WebSocket` and `ws` both have it. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type SocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

/** The subprotocol the client asks for; the server answers with it (and never echoes the token's). */
const SUBPROTOCOL = 'rowcast';
/** The subprotocol that carries the token (`bearer.<JWT>`). */
const BEARER = 'bearer.';

export interface ClientOptions {
  /**
   * `ws://host:6336/live` (or `wss://…`). Several URLs (the nodes of a
   * cluster without a load balancer in front): each reconnect tries the next.
   */
  readonly url: string | readonly string[];
  /** A fixed token. */
  readonly token?: string;
  /** Called for a token on every connect and before the current one expires (its `exp`): refreshes without reconnecting. */
  readonly getToken?: () => string | Promise<string>;
  /** Sent as `?client=`: how this app shows up in the server's logs and /admin/connections. */
  readonly client?: string;
  /**
   * How the token reaches the server. By default it travels as the
   * WebSocket subprotocol `bearer.<token>` (beside `rowcast`, which the
   * server answers with), so it never appears in URLs that proxies and
   * access logs keep. `true` sends it as `?token=` instead: only for tokens
   * that are not valid subprotocol names (JWTs always are).
   */
  readonly tokenInQuery?: boolean;
  /**
   * `true` sends the token in the connection's first frame
   * (`{"method":"auth",…}`) instead, for servers run with
   * `AUTH_FIRST_FRAME=true`: it then appears in no URL and no header.
   */
  readonly tokenInFirstFrame?: boolean;
  /** The WebSocket implementation: the global one by default; in Node 20 pass `ws`'s. */
  readonly WebSocket?: SocketConstructor;
  /** Reconnect delays: `min(maxMs, initialMs × 2^attempt)`, each with random jitter down to half. Defaults 250 ms and 10 s. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** A request without an answer for this long rejects with `TIMEOUT` (default 30 s). Requests made while disconnected wait for the connection. */
  readonly requestTimeoutMs?: number;
  /** Refresh this long before the token's `exp` (default 30 s, or half the token's lifetime if shorter). */
  readonly refreshBeforeMs?: number;
}

/** Where the connection is. `reconnecting` carries the attempt and the delay before it. */
export type ConnectionState =
  | { readonly status: 'connecting' }
  | { readonly status: 'open'; readonly session: SessionData }
  | { readonly status: 'reconnecting'; readonly attempt: number; readonly delayMs: number; readonly closeCode: number; readonly reason: string }
  | { readonly status: 'closed' };

/** An event as the app receives it: the protocol's event frame, with the attributes typed as the app knows them. */
export interface LiveEvent<A = Record<string, unknown>> extends Omit<EventFrame, 'type' | 'data'> {
  readonly data: Omit<EventFrame['data'], 'attributes'> & { readonly attributes: A };
}

/** A page of a table topic's rows, as {@link SubscribeOptions.onSnapshot} gets it. */
export interface SnapshotPage<A = Record<string, unknown>> {
  /** The page's rows, each as an event's `data`: `type` (the table), `id`, `attributes` (the row). */
  readonly rows: ReadonlyArray<LiveEvent<A>['data']>;
  /**
   * The first page of a snapshot: drop the rows held before. A snapshot that
   * follows a reconnect the server could not resume replaces the rows; its
   * first page is the only sign.
   */
  readonly first: boolean;
  /** The last page: the rows are complete, and the events that follow continue from exactly them. */
  readonly done: boolean;
}

export interface SubscribeOptions<A = Record<string, unknown>> {
  readonly filter?: RequestOf<'subscribe'>['attributes']['filter'];
  readonly events?: RequestOf<'subscribe'>['attributes']['events'];
  /** Resume from here on the first subscribe too (a `seq` the app stored); afterwards the client tracks it. */
  readonly since?: string;
  /**
   * A table topic's rows first: the rows this token may read (with `filter`;
   * `events` does not narrow them) reach `onSnapshot` in pages, then events
   * continue from exactly those rows, none missed and none already in them.
   * No event reaches `onEvent` while a snapshot is on its way. A reconnect
   * resumes with `since` as always; when the server cannot resume, a fresh
   * snapshot follows by itself (its first page has `first: true`: replace
   * the rows). With `since` given here, the app holds the rows up to it: no
   * snapshot comes unless that `since` cannot be resumed.
   */
  readonly snapshot?: boolean;
  /** With `snapshot`: each page of each snapshot, in order. */
  readonly onSnapshot?: (page: SnapshotPage<A>) => void;
  /**
   * The server could not replay what was missed while disconnected
   * (`resumed: false`): events may be missing, refetch. Also called when the
   * first subscribe had `since` and could not resume. Not with `snapshot`:
   * the fresh snapshot that follows heals the rows.
   */
  readonly onResync?: () => void;
  /**
   * The subscription failed (a coded error) or was revoked by the server
   * (`FORBIDDEN`, after a token refresh with other rights). A snapshot that
   * fails after its answer is tried again a few times, then reported as
   * `SNAPSHOT_FAILED`.
   */
  readonly onError?: (error: RowcastClientError) => void;
}

/** What {@link RowcastClient.aggregate} counts, and where its failures go. */
export interface AggregateOptions {
  /** A column of the table: counts per value of it. Without it only `total` is counted (`groups` stays empty). */
  readonly groupBy?: string;
  /** As in `subscribe`: only the rows that pass it are counted. */
  readonly filter?: SubscribeOptions['filter'];
  /**
   * The aggregate was refused (`SNAPSHOT_UNSUPPORTED` on a custom topic,
   * `INVALID_ATTRIBUTES` for an unknown `groupBy` column or a topic this
   * client holds another subscription to, `LIMIT_EXCEEDED` past
   * `SNAPSHOT_MAX_ROWS` or `AGGREGATE_MAX_ROWS`, …) or revoked (`FORBIDDEN`). Counting that fails
   * before its first counts is tried again a few times, then reported as
   * `SNAPSHOT_FAILED`.
   */
  readonly onError?: (error: RowcastClientError) => void;
}

/** The answer to `subscribe`: `seq` is where the subscription starts (the client resumes from it); `resumed` when `since` was given. */
export type SubscribeAnswer = ResponseData['subscribe'];

/** What {@link RowcastClient.subscribe} returns: call it to unsubscribe. */
export interface Unsubscribe {
  (): void;
  /** Resolves once the server has answered the subscribe; rejects with its error. */
  readonly ready: Promise<SubscribeAnswer>;
}

type TopicAttributes = RequestOf<'create-topic'>['attributes'];
type HistoryOptions = Omit<RequestOf<'history'>['attributes'], 'topicName'>;

interface Pending {
  readonly resolve: (data: unknown) => void;
  readonly reject: (error: RowcastClientError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  /** The frame, while it waits for a connection. */
  frame: string | null;
  /** Applies the answer as it arrives, before frames that came with it (in the same read) are handled. */
  readonly onAnswer: ((data: unknown) => void) | undefined;
}

/**
 * One server-side subscription, shared by every app subscription with the
 * same topic, `filter` and `events` (with or without `snapshot`: one asks for
 * a snapshot for all of them).
 */
interface Subscription {
  readonly key: string;
  readonly topic: string;
  /** Its name on the connection (`as`) when the app holds several subscriptions of the topic; the first has none. */
  readonly alias: string | undefined;
  readonly options: SubscribeOptions;
  readonly handlers: Set<Handler>;
  /**
   * Where the subscription resumes (`since` on the next subscribe): the `seq`
   * (with `/part`) of the newest event delivered, or a snapshot's last page.
   * Undefined while a snapshot is on its way: a part of one cannot be resumed.
   */
  lastSeq: string | undefined;
  /** The `seq` (with `/part`) of the newest event delivered: where a handler that joins starts. */
  lastEvent: string | undefined;
  /** The server holds this subscription (answered on the current connection). */
  active: boolean;
  /** It was live on the server once: a later subscribe that neither resumes nor replaces it leaves a gap. */
  wasLive: boolean;
  /** A subscribe for it is sent or queued, not yet answered. */
  inFlight: Promise<SubscribeAnswer> | undefined;
  /** An unsubscribe waiting a tick, so an immediate resubscribe (React strict mode) costs no frames. */
  leaving: ReturnType<typeof setTimeout> | undefined;
  /**
   * A snapshot is on its way (answered, its last page not yet here).
   * `replacing`: the server keeps the earlier subscription until the last page.
   */
  snapshot: { readonly replacing: boolean; pages: number } | null;
  /** Snapshots that failed after their answer since the last that completed. */
  snapshotFailures: number;
  /** The subscribe that tries a failed snapshot again. */
  retry: ReturnType<typeof setTimeout> | undefined;
}
/**
 * One server-side aggregate subscription, shared by every app aggregate with
 * the same topic, `groupBy` and `filter`.
 */
interface AggregateSubscription {
  readonly key: string;
  readonly topic: string;
  readonly alias: string | undefined;
  readonly attributes: RequestOf<'subscribe'>['attributes'];
  readonly handlers: Set<AggregateHandler>;
  /** The counts: the latest `state` and the diffs after it, kept across reconnects until a fresh `state` replaces them. */
  readonly tally: AggregateTally;
  /**
   * `idle`: the server does not hold it (not sent yet, the connection lost,
   * a retry waiting); `sent`: its subscribe is not answered yet; `counting`:
   * answered, its `state` not here yet (a `diff` now is of the subscription
   * it replaces); `live`: its frames are applied.
   */
  phase: 'idle' | 'sent' | 'counting' | 'live';
  /** The subscribe's answer on this connection. */
  answer: SubscribeAnswer | undefined;
  /** A subscribe for it is sent or queued, not yet answered. */
  inFlight: Promise<SubscribeAnswer> | undefined;
  leaving: ReturnType<typeof setTimeout> | undefined;
  /** Countings that failed after their answer since the last that gave a `state`. */
  failures: number;
  retry: ReturnType<typeof setTimeout> | undefined;
}
interface AggregateHandler {
  readonly onChange: (counts: AggregateCounts) => void;
  readonly options: AggregateOptions;
}

interface Handler {
  readonly onEvent: (event: LiveEvent) => void;
  readonly options: SubscribeOptions;
  /**
   * With `snapshot`: `pending` needs a snapshot and none is on its way for
   * it yet, `receiving` gets the one on its way (from its first page),
   * `live` has had the last page. Events reach only `live` handlers.
   * Without `snapshot`: always `live`.
   */
  phase: 'pending' | 'receiving' | 'live';
  /** The `seq` (with `/part`) of the newest event it got: one at or before it is not given again. */
  seen: string | undefined;
}

/** How often a snapshot that failed after its answer (`revoked`) is tried again, 1 s, 2 s, 4 s later, before `SNAPSHOT_FAILED`. */
const SNAPSHOT_RETRIES = 3;

const OPEN = 1;

/**
 * Connects at once and keeps connecting until {@link RowcastClient.close}.
 *
 * @example
 * const client = createClient({ url: 'ws://localhost:6336/live', getToken: () => fetchToken() });
 * const stop = client.subscribe('order', { events: ['create'] }, (e) => console.log(e.data.attributes));
 * await client.publish('lobby', { text: 'hi' });
 */
export function createClient(options: ClientOptions): RowcastClient {
  return new RowcastClient(options);
}

export class RowcastClient {
  readonly #options: ClientOptions;
  readonly #WebSocket: SocketConstructor;
  #socket: SocketLike | null = null;
  #state: ConnectionState = { status: 'connecting' };
  readonly #stateListeners = new Set<(state: ConnectionState) => void>();
  readonly #pending = new Map<number, Pending>();
  /** Keyed by topic and options: one server subscription per key. */
  readonly #subscriptions = new Map<string, Subscription>();
  /** Keyed by topic, `groupBy` and `filter`: one server aggregate subscription per key. */
  readonly #aggregates = new Map<string, AggregateSubscription>();
  /**
   * Topic → the aggregate the server is counting (answered, its `state` not
   * here yet), held or already dropped by the app: the next `state` or
   * `revoked` frame of the topic is its. The server runs a connection's
   * requests in order, and a subscribe with `aggregate` ends when its
   * counting is live: a later subscribe or unsubscribe of the topic is
   * answered after its `state`, so one topic has one counting at a time.
   */
  readonly #counting = new Map<string, AggregateSubscription>();
  /** Topic → its presence, while a {@link Presence} of it is open. */
  readonly #presences = new Map<string, PresenceChannel>();
  /** Listeners of {@link directMessages}: they also hear the frames sent to this connection alone (no `seq`). */
  readonly #direct = new Set<(message: DirectFrame) => void>();
  #nextId = 1;
  #attempt = 0;
  /** Connections attempted: picks the URL. */
  #connects = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: ClientOptions) {
    if (!options.token && !options.getToken) throw new TypeError('createClient: give `token` or `getToken`');
    const Impl = options.WebSocket ?? (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
    if (!Impl) throw new TypeError('createClient: no global WebSocket here; pass `WebSocket` (from the `ws` package in Node 20)');
    this.#options = options;
    this.#WebSocket = Impl;
    void this.#connect();
  }

  /** The connection's current state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Calls `listener` on every state change; returns a function that stops it. */
  onState(listener: (state: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /**
   * Subscribes to a table or custom topic. Events reach `onEvent` in `seq`
   * order; after a reconnect the client resubscribes with `since` the last
   * one, so nothing is missed or repeated, or calls `onResync` when the
   * server cannot replay. With `snapshot` (a table topic), the rows come
   * first, to `onSnapshot`. Subscriptions with the same topic, `filter` and
   * `events` share one on the server. Returns the function that unsubscribes.
   */
  subscribe<A = Record<string, unknown>>(topic: string, options: SubscribeOptions<A>, onEvent: (event: LiveEvent<A>) => void): Unsubscribe {
    if (topic.includes(',')) throw new TypeError(`subscribe: one topic per call (got ${JSON.stringify(topic)})`);
    const key = JSON.stringify([topic, options.filter ?? null, options.events ?? null]);
    const handler: Handler = { onEvent: onEvent as (event: LiveEvent) => void, options: options as SubscribeOptions, phase: options.snapshot ? 'pending' : 'live', seen: undefined };
    let subscription = this.#subscriptions.get(key);
    let ready: Promise<SubscribeAnswer>;
    if (subscription) {
      clearTimeout(subscription.leaving);
      subscription.leaving = undefined;
      // It starts with the next event (or, wanting a snapshot, after one of its own).
      handler.seen = subscription.lastEvent;
      subscription.handlers.add(handler);
      if (subscription.inFlight) ready = subscription.inFlight;
      else if (!subscription.active && subscription.retry === undefined) ready = this.#sendSubscribe(subscription);
      // Live without a snapshot on its way: a subscribe with one replaces the server's subscription once its last page is sent.
      else if (handler.phase === 'pending' && subscription.active && !subscription.snapshot) ready = this.#sendSubscribe(subscription);
      // A snapshot on its way started without it (it asks for one after the last page), or one is tried again soon.
      else ready = Promise.resolve({ topics: [topic], seq: subscription.lastSeq ?? subscription.lastEvent ?? '' });
    } else {
      // With `since` from the app, the app holds the rows up to it: a snapshot comes only if the server cannot resume.
      if (options.since !== undefined) handler.phase = 'live';
      subscription = {
        key,
        topic,
        alias: this.#nameFor(topic),
        options: options as SubscribeOptions,
        handlers: new Set([handler]),
        lastSeq: options.since,
        lastEvent: undefined,
        active: false,
        wasLive: false,
        inFlight: undefined,
        leaving: undefined,
        snapshot: null,
        snapshotFailures: 0,
        retry: undefined,
      };
      this.#subscriptions.set(key, subscription);
      ready = this.#sendSubscribe(subscription);
    }
    ready.catch(() => {});
    const owned = subscription;
    const unsubscribe = () => {
      if (!owned.handlers.delete(handler) || owned.handlers.size > 0) return;
      clearTimeout(owned.leaving);
      owned.leaving = setTimeout(() => {
        if (owned.handlers.size > 0 || this.#subscriptions.get(key) !== owned) return;
        this.#subscriptions.delete(key);
        clearTimeout(owned.retry);
        const release = () => {
          // A newer subscription with its name has replaced this one on the server: leave it be.
          if (owned.active && !this.#holds(topic, owned.alias) && this.#state.status === 'open') this.#request('unsubscribe', named({ topicName: topic }, owned.alias)).catch(() => {});
          owned.active = false;
        };
        if (owned.inFlight) owned.inFlight.then(release, () => {});
        else release();
      }, 0);
    };
    return Object.assign(unsubscribe, { ready });
  }

  /**
   * Counts a table's rows this token may read (with `filter`), per value of
   * the `groupBy` column when given, kept current: `onChange` gets the
   * counts once the server has counted them, and again after each change
   * (at most every 100 ms). After a reconnect the client subscribes again
   * and the fresh counts replace the held ones. Aggregates with the same
   * topic, `groupBy` and `filter` share one subscription on the server; one
   * that joins gets the counts held. Returns the function that stops it,
   * whose `ready` resolves with the subscribe answer.
   *
   * It may be held together with the topic's rows, events or other
   * aggregates on the same client: each is a subscription of its own on the
   * connection (named with `as`).
   *
   * @example
   * const stop = client.aggregate('order', { groupBy: 'status' }, ({ groups, total }) => {
   *   console.log(groups.get('open') ?? 0, 'open of', total);
   * });
   */
  aggregate(topic: string, options: AggregateOptions, onChange: (counts: AggregateCounts) => void): Unsubscribe {
    if (topic.includes(',')) throw new TypeError(`aggregate: one topic per call (got ${JSON.stringify(topic)})`);
    const { groupBy, filter } = options;
    const key = JSON.stringify([topic, groupBy ?? null, filter ?? null]);
    let aggregate = this.#aggregates.get(key);
    const handler: AggregateHandler = { onChange, options };
    let ready: Promise<SubscribeAnswer>;
    if (aggregate) {
      clearTimeout(aggregate.leaving);
      aggregate.leaving = undefined;
      aggregate.handlers.add(handler);
      if (aggregate.inFlight) ready = aggregate.inFlight;
      else if (aggregate.phase === 'idle' && aggregate.retry === undefined) ready = this.#sendAggregate(aggregate);
      else ready = Promise.resolve(aggregate.answer ?? { topics: [topic], seq: '', aggregate: true });
      // The counts held are its start (given once the caller has its unsubscribe); the next change follows them.
      const joined = aggregate;
      if (joined.tally.counts) {
        queueMicrotask(() => {
          if (joined.handlers.has(handler) && joined.tally.counts) handler.onChange(joined.tally.counts);
        });
      }
    } else {
      const spec: AggregateSpec = groupBy === undefined ? { count: true } : { count: true, groupBy };
      const alias = this.#nameFor(topic);
      aggregate = {
        key,
        topic,
        alias,
        attributes: named({ topicName: topic, aggregate: spec, ...(filter ? { filter } : {}) }, alias),
        handlers: new Set([handler]),
        tally: new AggregateTally(),
        phase: 'idle',
        answer: undefined,
        inFlight: undefined,
        leaving: undefined,
        failures: 0,
        retry: undefined,
      };
      this.#aggregates.set(key, aggregate);
      ready = this.#sendAggregate(aggregate);
    }
    ready.catch(() => {});
    const owned = aggregate;
    const unsubscribe = () => {
      if (!owned.handlers.delete(handler) || owned.handlers.size > 0) return;
      clearTimeout(owned.leaving);
      owned.leaving = setTimeout(() => {
        if (owned.handlers.size > 0 || this.#aggregates.get(key) !== owned) return;
        this.#aggregates.delete(key);
        clearTimeout(owned.retry);
        // Once answered: the server holds it then (or will, once counted: the unsubscribe runs after that).
        const release = () => {
          if (owned.phase !== 'idle' && !this.#holds(topic, owned.alias) && this.#state.status === 'open') this.#request('unsubscribe', named({ topicName: topic }, owned.alias)).catch(() => {});
          owned.phase = 'idle';
        };
        if (owned.inFlight) owned.inFlight.then(release, () => {});
        else release();
      }, 0);
    };
    return Object.assign(unsubscribe, { ready });
  }

  /**
   * The presence on a topic with presence (a custom topic created with
   * `presence: true`, or an open channel `~name`): who is present, kept
   * current, and `track` for this connection, tracked again after every
   * reconnect. Subscribes to the topic while the returned object is open,
   * sharing the subscription the app may hold (with no `filter` or
   * `events`). Call its `close` when done.
   *
   * @example
   * const room = client.presence('room');
   * room.onSync((state) => console.log(Object.keys(state)));
   * await room.track({ status: 'online' });
   */
  presence(topic: string): Presence {
    let channel = this.#presences.get(topic);
    if (!channel) {
      channel = new PresenceChannel({ topic, request: (method, attributes) => this.#request(method, attributes), onEmpty: () => this.#presences.delete(topic) });
      this.#presences.set(topic, channel);
      // The server holds the subscription already: its state frame went by before this channel was there.
      if ([...this.#subscriptions.values()].some((subscription) => subscription.topic === topic && subscription.active)) channel.fetchState();
    }
    return channel.open(this.subscribe(topic, {}, () => {}));
  }

  /**
   * This user's direct messages: subscribes to their inbox `@me` (resumed
   * with `since` after a reconnect, like any topic) and calls `onMessage`
   * with each `direct` frame, those the server sends this connection alone
   * (`seq: null`) included. Returns the function that stops.
   *
   * @example
   * const stop = client.directMessages((m) => toast(`${m.from}: ${m.message}`));
   */
  directMessages(onMessage: (message: DirectFrame) => void, options: Pick<SubscribeOptions, 'since' | 'onError'> = {}): Unsubscribe {
    this.#direct.add(onMessage);
    const unsubscribe = this.subscribe(INBOX, options, (event) => onMessage(event.data.attributes as unknown as DirectFrame));
    return Object.assign(() => {
      this.#direct.delete(onMessage);
      unsubscribe();
    }, { ready: unsubscribe.ready });
  }

  /** `direct-message`: `message` to every connection of user `to` (if the server's `DIRECT_MESSAGES` lets this user send). */
  sendDirect(to: string, message: RequestOf<'direct-message'>['attributes']['message']): Promise<ResponseData['direct-message']> {
    return this.#request('direct-message', { to, message });
  }

  /** `new-message` on a custom topic; resolves with the message's `id` and `seq` (`seq` null while the stream is down). */
  publish(topic: string, message: RequestOf<'new-message'>['attributes']['message']): Promise<ResponseData['new-message']> {
    return this.#request('new-message', { topicName: topic, message });
  }

  /** `create-topic` (admins). */
  createTopic(attributes: TopicAttributes): Promise<ResponseData['create-topic']> {
    return this.#request('create-topic', attributes);
  }

  /** `destroy-topic` (admins). */
  destroyTopic(name: string): Promise<ResponseData['destroy-topic']> {
    return this.#request('destroy-topic', { name });
  }

  /** The topics this token may read: tables and custom topics. */
  listTopics(): Promise<ResponseData['list-topic']> {
    return this.#request('list-topic', {});
  }

  getTopic(name: string): Promise<ResponseData['get-topic']> {
    return this.#request('get-topic', { topicName: name });
  }

  /** Stored messages of a custom topic, newest first (`before` a message id, `limit` ≤ 100). */
  history(topic: string, options: HistoryOptions = {}): Promise<ResponseData['history']> {
    return this.#request('history', { topicName: topic, ...options });
  }

  /** Closes the connection for good: pending requests reject with `CLOSED`, nothing reconnects. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#refreshTimer);
    for (const subscription of [...this.#subscriptions.values(), ...this.#aggregates.values()]) {
      clearTimeout(subscription.leaving);
      clearTimeout(subscription.retry);
    }
    this.#socket?.close(1000, 'client closed');
    this.#socket = null;
    this.#failPending('CLOSED', 'the client was closed');
    this.#setState({ status: 'closed' });
  }

  #setState(state: ConnectionState): void {
    this.#state = state;
    for (const listener of [...this.#stateListeners]) listener(state);
  }

  async #token(): Promise<string> {
    return this.#options.getToken ? await this.#options.getToken() : this.#options.token!;
  }

  async #connect(): Promise<void> {
    let token: string;
    try {
      token = await this.#token();
    } catch (error) {
      this.#scheduleReconnect(0, `getToken failed: ${(error as Error).message}`);
      return;
    }
    if (this.#closed) return;
    const urls = typeof this.#options.url === 'string' ? [this.#options.url] : this.#options.url;
    const url = new URL(urls[this.#connects++ % urls.length]!);
    if (this.#options.tokenInQuery) url.searchParams.set('token', token);
    if (this.#options.client) url.searchParams.set('client', this.#options.client);
    const socket = this.#options.tokenInQuery
      ? new this.#WebSocket(url.toString())
      : new this.#WebSocket(url.toString(), this.#options.tokenInFirstFrame ? [SUBPROTOCOL] : [SUBPROTOCOL, `${BEARER}${token}`]);
    this.#socket = socket;
    if (this.#options.tokenInFirstFrame) {
      // The server answers this frame with the `session` frame, as it would an upgrade with the token.
      socket.onopen = () => {
        if (this.#socket === socket) socket.send(JSON.stringify({ method: 'auth', attributes: { token } }));
      };
    }
    socket.onmessage = (message) => {
      if (this.#socket === socket) this.#onFrame(String(message.data), token);
    };
    socket.onerror = () => {}; // a close follows; the close carries what is known
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      clearTimeout(this.#refreshTimer);
      for (const subscription of this.#subscriptions.values()) {
        subscription.active = false;
        // A snapshot cut short: the reconnect asks for a fresh one (the open subscribes again anyway).
        subscription.snapshot = null;
        clearTimeout(subscription.retry);
        subscription.retry = undefined;
        for (const handler of subscription.handlers) if (handler.phase === 'receiving') handler.phase = 'pending';
      }
      // The server forgot the connection's subscriptions, counting or not; the counts held stay until fresh ones replace them.
      for (const aggregate of this.#aggregates.values()) {
        aggregate.phase = 'idle';
        clearTimeout(aggregate.retry);
        aggregate.retry = undefined;
      }
      this.#counting.clear();
      this.#failPending('CONNECTION_LOST', `the connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''}) before the answer came`);
      if (!this.#closed) this.#scheduleReconnect(event.code, event.reason);
    };
  }

  #scheduleReconnect(closeCode: number, reason: string): void {
    const initial = this.#options.backoff?.initialMs ?? 250;
    const max = this.#options.backoff?.maxMs ?? 10_000;
    const ceiling = Math.min(max, initial * 2 ** this.#attempt);
    const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#attempt++;
    this.#setState({ status: 'reconnecting', attempt: this.#attempt, delayMs, closeCode, reason });
    this.#reconnectTimer = setTimeout(() => void this.#connect(), delayMs);
  }

  #onFrame(text: string, token: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case 'session':
        this.#attempt = 0;
        this.#setState({ status: 'open', session: frame.data });
        this.#scheduleRefresh(token);
        this.#onOpen();
        return;
      case 'response': {
        if (typeof frame.id !== 'number') return;
        const pending = this.#pending.get(frame.id);
        if (!pending) return;
        this.#pending.delete(frame.id);
        clearTimeout(pending.timer);
        if (frame.ok) {
          pending.onAnswer?.(frame.data);
          pending.resolve(frame.data);
        } else pending.reject(new RowcastClientError(frame.error.code, frame.error.message, frame.error.retryAfter));
        return;
      }
      case 'event':
        this.#dispatch(frame);
        return;
      case 'snapshot':
        this.#snapshotPage(frame);
        return;
      case 'aggregate':
        this.#aggregateFrame(frame);
        return;
      case 'subscription':
        if (!this.#countingFailed(frame.topic, frame.as, frame.reason)) this.#revoked(frame.topic, frame.as, frame.reason);
        return;
      case 'presence':
        this.#presences.get(frame.topic)?.receive(frame);
        return;
      case 'direct':
        // One kept in the inbox moves its subscription's resume point like any event; one to this connection alone has no seq.
        if (frame.seq === null) for (const listener of [...this.#direct]) listener(frame);
        else this.#dispatch({ type: 'event', topic: INBOX, event: 'new-message', seq: frame.seq, ts: frame.createdAt, data: { type: 'direct', id: frame.id, attributes: frame } });
        return;
      default:
    }
  }

  /** Sends what waited for the connection: resubscriptions first (with `since`), then queued requests, then the presences to track again. */
  #onOpen(): void {
    for (const subscription of this.#subscriptions.values()) {
      // One whose subscribe waits in the queue below goes out with it.
      if (!subscription.leaving && !subscription.inFlight) void this.#sendSubscribe(subscription).catch(() => {});
    }
    for (const aggregate of this.#aggregates.values()) {
      if (!aggregate.leaving && !aggregate.inFlight) void this.#sendAggregate(aggregate).catch(() => {});
    }
    for (const pending of this.#pending.values()) {
      if (pending.frame !== null) {
        this.#socket!.send(pending.frame);
        pending.frame = null;
      }
    }
    for (const channel of this.#presences.values()) channel.reconnected();
  }

  /**
   * `snapshot` when a handler wants one; `since` unless a handler waits for
   * a snapshot (then a fresh one comes, even if `since` could be resumed).
   */
  #subscribeAttributes(subscription: Subscription): RequestOf<'subscribe'>['attributes'] {
    const { filter, events } = subscription.options;
    const handlers = [...subscription.handlers];
    const snapshot = handlers.some((handler) => handler.options.snapshot);
    const fresh = handlers.some((handler) => handler.phase === 'pending');
    return named(
      {
        topicName: subscription.topic,
        ...(filter ? { filter } : {}),
        ...(events ? { events } : {}),
        ...(subscription.lastSeq && !fresh ? { since: subscription.lastSeq } : {}),
        ...(snapshot ? { snapshot: true } : {}),
      },
      subscription.alias,
    );
  }

  #sendSubscribe(subscription: Subscription): Promise<SubscribeAnswer> {
    clearTimeout(subscription.retry);
    subscription.retry = undefined;
    const answered = () => {
      if (subscription.inFlight === inFlight) subscription.inFlight = undefined;
    };
    const inFlight: Promise<SubscribeAnswer> = this.#subscribeOnce(subscription, answered).finally(answered);
    subscription.inFlight = inFlight;
    return inFlight;
  }

  async #subscribeOnce(subscription: Subscription, answered: () => void): Promise<SubscribeAnswer> {
    const attributes = this.#subscribeAttributes(subscription);
    const askedToResume = attributes.since !== undefined;
    // The server holds the subscription already (a handler joined wanting a snapshot): it goes on until the new one is live.
    const replacing = subscription.active;
    try {
      // Applied as the answer arrives: the replay or the pages that follow it may come in the same read, before any promise settles.
      return await this.#request('subscribe', attributes, (data) => {
        answered();
        this.#applyAnswer(subscription, data, askedToResume, replacing);
      });
    } catch (error) {
      const clientError = error as RowcastClientError;
      // Lost with the connection (or not answered): the next open subscribes again. A coded refusal is final.
      if (clientError.code !== 'CONNECTION_LOST' && clientError.code !== 'TIMEOUT' && clientError.code !== 'CLOSED') {
        if (replacing && subscription.active) {
          // Refused to the handlers that asked for a snapshot (LIMIT_EXCEEDED, …): the server keeps the subscription for the others.
          this.#fail(subscription, clientError, (handler) => handler.phase === 'pending');
        } else {
          if (this.#subscriptions.get(subscription.key) === subscription) this.#subscriptions.delete(subscription.key);
          for (const handler of [...subscription.handlers]) handler.options.onError?.(clientError);
        }
      }
      throw error;
    }
  }

  /**
   * The name on the connection (`as`) of a new subscription or aggregate of
   * `topic`. One that is being dropped (a component changed its options)
   * hands its name on: the new subscribe replaces it on the server in one
   * step. Otherwise the first of a topic has no name, and each other one
   * held at the same time gets one of its own (`s1`, `s2`, …), so one
   * connection serves them all, each frame going to the one it names.
   */
  #nameFor(topic: string): string | undefined {
    const taken = new Set<string | undefined>();
    let leavingName: { alias: string | undefined } | undefined;
    for (const holders of [this.#subscriptions, this.#aggregates] as const) {
      for (const [key, other] of holders) {
        if (other.topic !== topic) continue;
        if (other.leaving && !leavingName) {
          clearTimeout(other.leaving);
          holders.delete(key);
          leavingName = { alias: other.alias };
          continue;
        }
        taken.add(other.alias);
      }
    }
    if (leavingName && !taken.has(leavingName.alias)) return leavingName.alias;
    if (!taken.has(undefined)) return undefined;
    for (let n = 1; ; n++) if (!taken.has(`s${n}`)) return `s${n}`;
  }

  /** Whether the app holds a subscription or an aggregate of `topic` with the name `alias`. */
  #holds(topic: string, alias: string | undefined): boolean {
    return [...this.#subscriptions.values(), ...this.#aggregates.values()].some((other) => other.topic === topic && other.alias === alias);
  }

  #sendAggregate(aggregate: AggregateSubscription): Promise<SubscribeAnswer> {
    clearTimeout(aggregate.retry);
    aggregate.retry = undefined;
    const answered = () => {
      if (aggregate.inFlight === inFlight) aggregate.inFlight = undefined;
    };
    const inFlight: Promise<SubscribeAnswer> = this.#aggregateOnce(aggregate, answered).finally(answered);
    aggregate.inFlight = inFlight;
    return inFlight;
  }

  async #aggregateOnce(aggregate: AggregateSubscription, answered: () => void): Promise<SubscribeAnswer> {
    // The server answers a connection's requests in order: a diff of the subscription this one replaces may come before its state, none after.
    aggregate.phase = 'sent';
    try {
      // Applied as the answer arrives: the `state` may come in the same read, before any promise settles.
      return await this.#request('subscribe', aggregate.attributes, (data) => {
        answered();
        aggregate.phase = 'counting';
        aggregate.answer = data;
        this.#counting.set(identity(aggregate.topic, aggregate.alias), aggregate);
      });
    } catch (error) {
      aggregate.phase = 'idle';
      const clientError = error as RowcastClientError;
      // Lost with the connection (or not answered): the next open subscribes again. A coded refusal is final.
      if (clientError.code !== 'CONNECTION_LOST' && clientError.code !== 'TIMEOUT' && clientError.code !== 'CLOSED') {
        if (this.#aggregates.get(aggregate.key) === aggregate) this.#aggregates.delete(aggregate.key);
        // One this was to replace (a dropped aggregate or subscription of the topic) is still on the server: end it.
        if (!this.#holds(aggregate.topic, aggregate.alias) && this.#state.status === 'open') this.#request('unsubscribe', named({ topicName: aggregate.topic }, aggregate.alias)).catch(() => {});
        for (const handler of [...aggregate.handlers]) handler.options.onError?.(clientError);
      }
      throw error;
    }
  }

  /**
   * An aggregate's frame: a `state` is the counting aggregate's (the server
   * counted it; it is live), a `diff` a live one's. Frames of an aggregate
   * the app dropped are not given to anyone.
   */
  #aggregateFrame(frame: AggregateFrame): void {
    let aggregate: AggregateSubscription | undefined;
    if (frame.event === 'state') {
      aggregate = this.#counting.get(identity(frame.topic, frame.as));
      this.#counting.delete(identity(frame.topic, frame.as));
      if (!aggregate || aggregate.phase !== 'counting') return;
      aggregate.phase = 'live';
      aggregate.failures = 0;
    } else {
      aggregate = [...this.#aggregates.values()].find((held) => held.topic === frame.topic && held.alias === frame.as && held.phase === 'live');
    }
    if (!aggregate || this.#aggregates.get(aggregate.key) !== aggregate || !aggregate.tally.apply(frame)) return;
    const counts = aggregate.tally.counts!;
    for (const handler of [...aggregate.handlers]) handler.onChange(counts);
  }

  /**
   * A `revoked` frame while the server counts an aggregate of the topic: the
   * counting failed (the database went away, …). Asked for again 1, 2 and 4
   * s later, then reported as `SNAPSHOT_FAILED`. Returns false when no
   * aggregate of the topic was being counted (the frame is for the topic's
   * live subscription).
   */
  #countingFailed(topic: string, alias: string | undefined, reason: string): boolean {
    const aggregate = this.#counting.get(identity(topic, alias));
    if (!aggregate) return false;
    this.#counting.delete(identity(topic, alias));
    if (aggregate.phase !== 'counting' || this.#aggregates.get(aggregate.key) !== aggregate) return true;
    aggregate.phase = 'idle';
    if (aggregate.failures++ < SNAPSHOT_RETRIES) {
      const delayMs = 1000 * 2 ** (aggregate.failures - 1);
      aggregate.retry = setTimeout(() => {
        aggregate.retry = undefined;
        if (this.#aggregates.get(aggregate.key) === aggregate && !aggregate.inFlight && aggregate.phase === 'idle') void this.#sendAggregate(aggregate).catch(() => {});
      }, delayMs);
      return true;
    }
    aggregate.failures = 0;
    this.#aggregates.delete(aggregate.key);
    const error = new RowcastClientError('SNAPSHOT_FAILED', `counting ${topic} failed ${SNAPSHOT_RETRIES + 1} times, lastly: ${reason}`);
    for (const handler of [...aggregate.handlers]) handler.options.onError?.(error);
    return true;
  }

  #applyAnswer(subscription: Subscription, data: SubscribeAnswer, askedToResume: boolean, replacing: boolean): void {
    subscription.active = true;
    if (data.snapshot) {
      // Every handler that wants rows gets this snapshot, from its first page; until its last, none of them gets events.
      subscription.snapshot = { replacing, pages: 0 };
      subscription.lastSeq = undefined;
      for (const handler of subscription.handlers) if (handler.options.snapshot) handler.phase = 'receiving';
    } else {
      subscription.wasLive = true;
      // Resumed: the replay that follows the answer moves lastSeq on. Otherwise start from the answer's position.
      if (!askedToResume || data.resumed === false) subscription.lastSeq = data.seq;
    }
    // Events were missed unless resumed, or the server kept the subscription meanwhile; a snapshot heals its handlers.
    const gap = askedToResume ? data.resumed === false : subscription.wasLive && !replacing && data.snapshot === true;
    if (gap) {
      for (const handler of [...subscription.handlers]) if (!(data.snapshot && handler.options.snapshot)) handler.options.onResync?.();
    }
    // A handler that joined after this subscribe was sent still waits for rows: ask again.
    if (!data.snapshot && [...subscription.handlers].some((handler) => handler.phase === 'pending')) void this.#sendSubscribe(subscription).catch(() => {});
  }

  /** Removes the handlers `which` picks, with `error`; a subscription left without handlers is dropped (and unsubscribed). */
  #fail(subscription: Subscription, error: RowcastClientError, which: (handler: Handler) => boolean): void {
    const failed = [...subscription.handlers].filter(which);
    for (const handler of failed) subscription.handlers.delete(handler);
    if (subscription.handlers.size === 0 && this.#subscriptions.get(subscription.key) === subscription) {
      this.#subscriptions.delete(subscription.key);
      clearTimeout(subscription.leaving);
      clearTimeout(subscription.retry);
      if (subscription.active && this.#state.status === 'open') this.#request('unsubscribe', { topicName: subscription.topic }).catch(() => {});
      subscription.active = false;
    }
    for (const handler of failed) handler.options.onError?.(error);
  }

  #dispatch(event: EventFrame): void {
    const seq = event.part ? `${event.seq}/${event.part}` : event.seq;
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.topic !== event.topic || subscription.alias !== event.as) continue;
      // seqs sort in stream order. After a snapshot, the changes committed while it was read may sort before its last page's seq, which stays the resume point.
      if (!subscription.snapshot && (subscription.lastSeq === undefined || seq > subscription.lastSeq)) subscription.lastSeq = seq;
      if (subscription.lastEvent === undefined || seq > subscription.lastEvent) subscription.lastEvent = seq;
      for (const handler of [...subscription.handlers]) {
        // Waiting for rows: the event is in them or follows them. Seen already: the server's earlier subscription gave it before a snapshot replaced it.
        if (handler.phase !== 'live' || (handler.seen !== undefined && seq <= handler.seen)) continue;
        handler.seen = seq;
        handler.onEvent(event as LiveEvent);
      }
    }
  }

  /** A page of the snapshot on its way: to the handlers receiving it. The last page makes them live and sets where to resume. */
  #snapshotPage(frame: SnapshotFrame): void {
    for (const subscription of this.#subscriptions.values()) {
      const { snapshot } = subscription;
      if (subscription.topic !== frame.topic || subscription.alias !== frame.as || !snapshot) continue;
      const receivers = [...subscription.handlers].filter((handler) => handler.phase === 'receiving');
      const page = { rows: frame.data as SnapshotPage['rows'], first: snapshot.pages++ === 0, done: frame.done };
      if (frame.done) {
        subscription.snapshot = null;
        subscription.lastSeq = frame.seq;
        subscription.wasLive = true;
        subscription.snapshotFailures = 0;
        // The changes committed while the snapshot was read follow: each of them is new to the rows.
        for (const handler of receivers) {
          handler.phase = 'live';
          handler.seen = undefined;
        }
      }
      for (const handler of receivers) handler.options.onSnapshot?.(page);
      // Handlers that joined while it was on its way get one of their own.
      if (frame.done && subscription.active && !subscription.inFlight && [...subscription.handlers].some((handler) => handler.phase === 'pending')) {
        void this.#sendSubscribe(subscription).catch(() => {});
      }
    }
  }

  /**
   * The server ended a snapshot after its answer (`revoked`: the database
   * went away, too many changes while it was read): the handlers that
   * wanted it ask again, a few times, then fail with `SNAPSHOT_FAILED`.
   */
  #snapshotFailed(subscription: Subscription, reason: string): void {
    const { replacing } = subscription.snapshot!;
    subscription.snapshot = null;
    // The server holds the earlier subscription, if there was one.
    subscription.active = replacing;
    for (const handler of subscription.handlers) if (handler.phase === 'receiving') handler.phase = 'pending';
    if (subscription.snapshotFailures++ < SNAPSHOT_RETRIES) {
      const delayMs = 1000 * 2 ** (subscription.snapshotFailures - 1);
      subscription.retry = setTimeout(() => {
        subscription.retry = undefined;
        if (this.#subscriptions.get(subscription.key) === subscription && !subscription.inFlight) void this.#sendSubscribe(subscription).catch(() => {});
      }, delayMs);
      return;
    }
    subscription.snapshotFailures = 0;
    const error = new RowcastClientError('SNAPSHOT_FAILED', `the snapshot of ${subscription.topic} failed ${SNAPSHOT_RETRIES + 1} times, lastly: ${reason}`);
    this.#fail(subscription, error, (handler) => handler.phase === 'pending');
  }

  #revoked(topic: string, alias: string | undefined, reason: string): void {
    for (const [key, aggregate] of this.#aggregates) {
      if (aggregate.topic !== topic || aggregate.alias !== alias || aggregate.phase !== 'live') continue;
      this.#aggregates.delete(key);
      aggregate.phase = 'idle';
      clearTimeout(aggregate.retry);
      const error = new RowcastClientError('FORBIDDEN', `the server revoked the aggregate of ${topic}: ${reason}`);
      for (const handler of [...aggregate.handlers]) handler.options.onError?.(error);
    }
    for (const [key, subscription] of this.#subscriptions) {
      if (subscription.topic !== topic || subscription.alias !== alias) continue;
      if (subscription.snapshot) {
        this.#snapshotFailed(subscription, reason);
        continue;
      }
      this.#subscriptions.delete(key);
      clearTimeout(subscription.retry);
      const error = new RowcastClientError('FORBIDDEN', `the server revoked the subscription to ${topic}: ${reason}`);
      for (const handler of [...subscription.handlers]) handler.options.onError?.(error);
    }
  }

  /** Refreshes the token through `getToken` before its `exp`, on the open connection (`refresh-token`). */
  #scheduleRefresh(token: string): void {
    clearTimeout(this.#refreshTimer);
    const expiresAt = tokenExpiry(token);
    if (!this.#options.getToken || expiresAt === undefined) return;
    const lifetime = expiresAt - Date.now();
    const before = Math.min(this.#options.refreshBeforeMs ?? 30_000, lifetime / 2);
    this.#refreshTimer = setTimeout(() => void this.#refresh(), Math.max(0, lifetime - before));
  }

  async #refresh(): Promise<void> {
    try {
      const token = await this.#token();
      await this.#request('refresh-token', { token });
      this.#scheduleRefresh(token);
    } catch {
      // The connection will close at expiry (4001) and reconnect with a new token.
    }
  }

  #request<M extends Exclude<Method, 'ping'>>(method: M, attributes: RequestOf<M>['attributes'], onAnswer?: (data: ResponseData[M]) => void): Promise<ResponseData[M]> {
    if (this.#closed) return Promise.reject(new RowcastClientError('CLOSED', 'the client was closed'));
    const id = this.#nextId++;
    const frame = JSON.stringify({ id, method, attributes });
    return new Promise<ResponseData[M]>((resolve, reject) => {
      const timeoutMs = this.#options.requestTimeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RowcastClientError('TIMEOUT', `no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const open = this.#state.status === 'open' && this.#socket?.readyState === OPEN;
      this.#pending.set(id, { resolve: resolve as (data: unknown) => void, reject, timer, frame: open ? null : frame, onAnswer: onAnswer as ((data: unknown) => void) | undefined });
      if (open) this.#socket!.send(frame);
    });
  }

  /** Rejects requests that were sent (their answer is lost with the connection); queued ones keep waiting, unless closing. */
  #failPending(code: ClientErrorCode, message: string): void {
    for (const [id, pending] of this.#pending) {
      if (pending.frame !== null && code !== 'CLOSED') continue;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new RowcastClientError(code, message));
    }
  }
}

/** `attributes` with the subscription's name (`as`) when it has one. */
function named<A extends { readonly topicName: string }>(attributes: A, alias: string | undefined): A & { readonly as?: string } {
  return alias === undefined ? attributes : { ...attributes, as: alias };
}

/** Where the connection keeps a subscription: its topic and name, as one key. */
function identity(topic: string, alias: string | undefined): string {
  return alias === undefined ? topic : `${alias}\u0000${topic}`;
}

/** The `exp` of a JWT in ms, read without verifying (the server verifies); undefined when it has none. */
function tokenExpiry(token: string): number | undefined {
  try {
    const payload = token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), '='))) as { exp?: unknown };
    return typeof json.exp === 'number' ? json.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
