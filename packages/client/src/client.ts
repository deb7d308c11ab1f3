/**
 * The rowcast client: one /live connection that reconnects by itself,
 * resumes every subscription with `since` its last `seq`, refreshes its token
 * before it expires, and turns requests into promises. Runs in browsers
 * (the global `WebSocket`) and in Node ≥ 20 (pass `WebSocket` from `ws`).
 *
 * Only types come from the server's modules (`import type`), so the built
 * client pulls in nothing of the server.
 */
import type { ErrorCode, EventFrame, Method, RequestOf, ResponseData, ServerFrame, SessionData } from '../../../src/protocol/index.js';
import { PresenceChannel, type Presence } from './presence.js';

/** Errors only the client raises: the connection went away with the request in flight, the client was closed, no answer in time. */
export type ClientErrorCode = ErrorCode | 'CONNECTION_LOST' | 'CLOSED' | 'TIMEOUT';

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

export interface SubscribeOptions {
  readonly filter?: RequestOf<'subscribe'>['attributes']['filter'];
  readonly events?: RequestOf<'subscribe'>['attributes']['events'];
  /** Resume from here on the first subscribe too (a `seq` the app stored); afterwards the client tracks it. */
  readonly since?: string;
  /**
   * The server could not replay what was missed while disconnected
   * (`resumed: false`): events may be missing, refetch. Also called when the
   * first subscribe had `since` and could not resume.
   */
  readonly onResync?: () => void;
  /** The subscription failed (a coded error) or was revoked by the server (`FORBIDDEN`, after a token refresh with other rights). */
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
}

/** One server-side subscription, shared by every app subscription with the same topic and options. */
interface Subscription {
  readonly key: string;
  readonly topic: string;
  readonly options: SubscribeOptions;
  readonly handlers: Set<Handler>;
  /** `seq` (with `/part`) of the last event delivered: `since` on the next subscribe. */
  lastSeq: string | undefined;
  /** The server holds this subscription (answered on the current connection). */
  active: boolean;
  /** A subscribe for it is sent or queued, not yet answered. */
  inFlight: Promise<SubscribeAnswer> | undefined;
  /** An unsubscribe waiting a tick, so an immediate resubscribe (React strict mode) costs no frames. */
  leaving: ReturnType<typeof setTimeout> | undefined;
}
interface Handler {
  readonly onEvent: (event: LiveEvent) => void;
  readonly options: SubscribeOptions;
}

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
  /** Topic → its presence, while a {@link Presence} of it is open. */
  readonly #presences = new Map<string, PresenceChannel>();
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
   * server cannot replay. Subscriptions with the same topic and options share
   * one on the server. Returns the function that unsubscribes.
   */
  subscribe<A = Record<string, unknown>>(topic: string, options: SubscribeOptions, onEvent: (event: LiveEvent<A>) => void): Unsubscribe {
    if (topic.includes(',')) throw new TypeError(`subscribe: one topic per call (got ${JSON.stringify(topic)})`);
    const key = JSON.stringify([topic, options.filter ?? null, options.events ?? null]);
    const handler: Handler = { onEvent: onEvent as (event: LiveEvent) => void, options };
    let subscription = this.#subscriptions.get(key);
    for (const [otherKey, other] of this.#subscriptions) {
      if (other.topic !== topic || other === subscription) continue;
      if (other.leaving) {
        // Being dropped (a component changed its filter): the new subscribe replaces it on the server.
        clearTimeout(other.leaving);
        this.#subscriptions.delete(otherKey);
      } else {
        const error = new RowcastClientError('INVALID_ATTRIBUTES', `${topic} is already subscribed with other filter/events on this client; one connection has one subscription per topic`);
        const unsubscribe = Object.assign(() => {}, { ready: Promise.reject(error) });
        unsubscribe.ready.catch(() => {});
        return unsubscribe;
      }
    }
    let ready: Promise<SubscribeAnswer>;
    if (subscription) {
      clearTimeout(subscription.leaving);
      subscription.leaving = undefined;
      subscription.handlers.add(handler);
      ready = subscription.inFlight ?? (subscription.active ? Promise.resolve({ topics: [topic], seq: subscription.lastSeq ?? '' }) : this.#sendSubscribe(subscription));
    } else {
      subscription = { key, topic, options, handlers: new Set([handler]), lastSeq: options.since, active: false, inFlight: undefined, leaving: undefined };
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
        const release = () => {
          // A newer subscription to the topic has replaced this one on the server: leave it be.
          const replaced = [...this.#subscriptions.values()].some((other) => other.topic === topic);
          if (owned.active && !replaced && this.#state.status === 'open') this.#request('unsubscribe', { topicName: topic }).catch(() => {});
          owned.active = false;
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
    for (const subscription of this.#subscriptions.values()) clearTimeout(subscription.leaving);
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
    const socket = this.#options.tokenInQuery ? new this.#WebSocket(url.toString()) : new this.#WebSocket(url.toString(), [SUBPROTOCOL, `${BEARER}${token}`]);
    this.#socket = socket;
    socket.onmessage = (message) => {
      if (this.#socket === socket) this.#onFrame(String(message.data), token);
    };
    socket.onerror = () => {}; // a close follows; the close carries what is known
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      clearTimeout(this.#refreshTimer);
      for (const subscription of this.#subscriptions.values()) subscription.active = false;
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
        if (frame.ok) pending.resolve(frame.data);
        else pending.reject(new RowcastClientError(frame.error.code, frame.error.message, frame.error.retryAfter));
        return;
      }
      case 'event':
        this.#dispatch(frame);
        return;
      case 'subscription':
        this.#revoked(frame.topic, frame.reason);
        return;
      case 'presence':
        this.#presences.get(frame.topic)?.receive(frame);
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
    for (const pending of this.#pending.values()) {
      if (pending.frame !== null) {
        this.#socket!.send(pending.frame);
        pending.frame = null;
      }
    }
    for (const channel of this.#presences.values()) channel.reconnected();
  }

  #subscribeAttributes(subscription: Subscription): RequestOf<'subscribe'>['attributes'] {
    const { filter, events } = subscription.options;
    return {
      topicName: subscription.topic,
      ...(filter ? { filter } : {}),
      ...(events ? { events } : {}),
      ...(subscription.lastSeq ? { since: subscription.lastSeq } : {}),
    };
  }

  #sendSubscribe(subscription: Subscription): Promise<SubscribeAnswer> {
    const inFlight = this.#subscribeOnce(subscription).finally(() => {
      if (subscription.inFlight === inFlight) subscription.inFlight = undefined;
    });
    subscription.inFlight = inFlight;
    return inFlight;
  }

  async #subscribeOnce(subscription: Subscription): Promise<SubscribeAnswer> {
    const askedToResume = subscription.lastSeq !== undefined;
    try {
      const data = await this.#request('subscribe', this.#subscribeAttributes(subscription));
      subscription.active = true;
      // Resumed: the replay that follows the answer moves lastSeq on. Otherwise start from the answer's position.
      if (!askedToResume || data.resumed === false) subscription.lastSeq = data.seq;
      if (askedToResume && data.resumed === false) {
        for (const handler of [...subscription.handlers]) handler.options.onResync?.();
      }
      return data;
    } catch (error) {
      const clientError = error as RowcastClientError;
      // Lost with the connection (or not answered): the next open subscribes again. A coded refusal is final.
      if (clientError.code !== 'CONNECTION_LOST' && clientError.code !== 'TIMEOUT' && clientError.code !== 'CLOSED') {
        if (this.#subscriptions.get(subscription.key) === subscription) this.#subscriptions.delete(subscription.key);
        for (const handler of [...subscription.handlers]) handler.options.onError?.(clientError);
      }
      throw error;
    }
  }

  #dispatch(event: EventFrame): void {
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.topic !== event.topic) continue;
      subscription.lastSeq = event.part ? `${event.seq}/${event.part}` : event.seq;
      for (const handler of [...subscription.handlers]) handler.onEvent(event as LiveEvent);
    }
  }

  #revoked(topic: string, reason: string): void {
    for (const [key, subscription] of this.#subscriptions) {
      if (subscription.topic !== topic) continue;
      this.#subscriptions.delete(key);
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

  #request<M extends Exclude<Method, 'ping'>>(method: M, attributes: RequestOf<M>['attributes']): Promise<ResponseData[M]> {
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
      this.#pending.set(id, { resolve: resolve as (data: unknown) => void, reject, timer, frame: open ? null : frame });
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
