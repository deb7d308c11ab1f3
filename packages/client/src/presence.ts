/**
 * Presence in the client: who is present on a topic with presence (a custom
 * topic created with `presence: true`, or an open channel `~name`), kept
 * current from the server's `state` and `diff` frames the way
 * Phoenix.Presence's `syncState` and `syncDiff` keep it, and this
 * connection's own presence, tracked again after every reconnect (the
 * server forgets the presences of a closed connection).
 */
import type { PresenceDiff, PresenceFrame, PresenceState, RequestOf, ResponseData } from '../../../src/protocol/index.js';

/** What an app tracks: a small JSON object (`PRESENCE_MAX_META_BYTES`); the server adds `sub` and `phx_ref`. */
export type PresenceMetaInput = NonNullable<RequestOf<'track'>['attributes']['meta']>;

/** One key's presence: a meta per connection (tab) that tracks it. */
export type PresenceMetas = PresenceState[string];

/** Called for each key that joined (or updated): `current` is the key's presence before, undefined when it was absent. */
export type PresenceJoinListener = (key: string, current: PresenceMetas | undefined, joined: PresenceMetas) => void;

/** Called for each key that left (or updated): `current` is what is left of it, `metas: []` when it is gone. */
export type PresenceLeaveListener = (key: string, current: PresenceMetas, left: PresenceMetas) => void;

/**
 * One topic's presence, as {@link RowcastClient.presence} returns it. The
 * topic is subscribed while it is open (sharing the client's subscription
 * to it, if there is one).
 *
 * @example
 * const room = client.presence('room');
 * room.onSync((state) => render(Object.keys(state)));
 * await room.track({ typing: false });
 * // later
 * room.close(); // untracks, and unsubscribes unless the app is subscribed too
 */
export interface Presence {
  readonly topic: string;
  /** Resolves once the subscription is live; rejects with its error (`TOPIC_NOT_FOUND`, `FORBIDDEN`, …). */
  readonly ready: Promise<ResponseData['subscribe']>;
  /**
   * Tracks this connection on the topic with `meta` (default `{}`); called
   * again, it updates the meta. Resolves with `{topic, key, ref}` (`key` is
   * the token's `sub`). The client tracks the last meta again after every
   * reconnect, until `untrack` or `close`. Rejects with `INVALID_ATTRIBUTES`
   * (the topic has no presence), `LIMIT_EXCEEDED`, `RATE_LIMIT_EXCEEDED`, or
   * `CONNECTION_LOST` (the reconnect tracks it then).
   */
  track(meta?: PresenceMetaInput): Promise<ResponseData['track']>;
  /** Leaves this connection's presence; `untracked` says whether there was one. */
  untrack(): Promise<ResponseData['untrack']>;
  /** Who is present now: key → its metas. A new object after each change, the same one while nothing changes. */
  state(): PresenceState;
  /** Calls `listener` after each state or diff is applied (a reconnect's state replaces everything); returns a function that stops it. */
  onSync(listener: (state: PresenceState) => void): () => void;
  /** Calls `listener` for each key that joins or updates; returns a function that stops it. */
  onJoin(listener: PresenceJoinListener): () => void;
  /** Calls `listener` for each key that leaves or updates; returns a function that stops it. */
  onLeave(listener: PresenceLeaveListener): () => void;
  /** Stops this object's listeners, untracks if it tracked, and unsubscribes unless something else of the app is subscribed. */
  close(): void;
}

/** The client's side of a {@link PresenceChannel}: its requests, and forgetting the channel once no {@link Presence} uses it. */
export interface PresenceChannelOptions {
  readonly topic: string;
  readonly request: <M extends 'track' | 'untrack' | 'presence'>(method: M, attributes: RequestOf<M>['attributes']) => Promise<ResponseData[M]>;
  readonly onEmpty: () => void;
}

/** A subscription as the client's `subscribe` returns it. */
type Subscription = { (): void; readonly ready: Promise<ResponseData['subscribe']> };

const EMPTY: PresenceState = Object.freeze({});

/** One topic's presence on one client, shared by every {@link Presence} of the topic. */
export class PresenceChannel {
  readonly #options: PresenceChannelOptions;
  #state = EMPTY;
  /** The meta the app tracks, tracked again on every reconnect; null when it tracks none. */
  #meta: PresenceMetaInput | null = null;
  /** The {@link Presence} that tracked it: its `close` untracks. */
  #tracker: Presence | null = null;
  /** `track` and `untrack` requests not answered yet: a reconnect does not repeat what they will do. */
  #inFlight = 0;
  #open = 0;
  readonly #onSync = new Set<(state: PresenceState) => void>();
  readonly #onJoin = new Set<PresenceJoinListener>();
  readonly #onLeave = new Set<PresenceLeaveListener>();

  constructor(options: PresenceChannelOptions) {
    this.#options = options;
  }

  /** A {@link Presence} on `subscription`, the one its topic's frames come through. */
  open(subscription: Subscription): Presence {
    this.#open++;
    const stops = new Set<() => void>();
    const listen = <L>(set: Set<L>, listener: L) => {
      set.add(listener);
      const stop = () => {
        set.delete(listener);
        stops.delete(stop);
      };
      stops.add(stop);
      return stop;
    };
    let closed = false;
    const presence: Presence = {
      topic: this.#options.topic,
      ready: subscription.ready,
      track: (meta = {}) => {
        this.#tracker = presence;
        return this.#track(meta);
      },
      untrack: () => this.#untrack(),
      state: () => this.#state,
      onSync: (listener) => listen(this.#onSync, listener),
      onJoin: (listener) => listen(this.#onJoin, listener),
      onLeave: (listener) => listen(this.#onLeave, listener),
      close: () => {
        if (closed) return;
        closed = true;
        for (const stop of [...stops]) stop();
        if (this.#tracker === presence) this.#untrack().catch(() => {});
        subscription();
        if (--this.#open === 0) this.#options.onEmpty();
      },
    };
    return presence;
  }

  /** Asks for the state: for a channel opened on a subscription the server already holds, whose `state` frame came before. */
  fetchState(): void {
    this.#options.request('presence', { topicName: this.#options.topic }).then(
      (data) => this.#sync(data.state),
      () => {}, // a reconnect resubscribes, and its state frame follows
    );
  }

  /** A `presence` frame of the topic. */
  receive(frame: PresenceFrame): void {
    if (frame.event === 'state') this.#sync(frame.data);
    else this.#applyDiff(frame.data);
  }

  /** The connection is open again (after its resubscriptions): the app's meta is tracked again, unless a request on its way does it. */
  reconnected(): void {
    if (this.#meta !== null && this.#inFlight === 0) this.#track(this.#meta).catch(() => {});
  }

  #track(meta: PresenceMetaInput): Promise<ResponseData['track']> {
    this.#meta = meta;
    return this.#counted(this.#options.request('track', { topicName: this.#options.topic, meta }));
  }

  #untrack(): Promise<ResponseData['untrack']> {
    this.#meta = null;
    this.#tracker = null;
    return this.#counted(this.#options.request('untrack', { topicName: this.#options.topic }));
  }

  #counted<T>(request: Promise<T>): Promise<T> {
    this.#inFlight++;
    const settled = () => {
      this.#inFlight--;
    };
    request.then(settled, settled);
    return request;
  }

  /** syncState: the new state replaces the held one; joins and leaves are what differs, per meta (`phx_ref`). */
  #sync(next: PresenceState): void {
    const joins: Record<string, PresenceMetas> = {};
    const leaves: Record<string, PresenceMetas> = {};
    for (const [key, current] of Object.entries(this.#state)) {
      const refs = new Set(next[key]?.metas.map((meta) => meta.phx_ref));
      const left = current.metas.filter((meta) => !refs.has(meta.phx_ref));
      if (left.length > 0) leaves[key] = { metas: left };
    }
    for (const [key, presence] of Object.entries(next)) {
      const refs = new Set(this.#state[key]?.metas.map((meta) => meta.phx_ref));
      const joined = presence.metas.filter((meta) => !refs.has(meta.phx_ref));
      if (joined.length > 0) joins[key] = { metas: joined };
    }
    const changed = Object.keys(joins).length > 0 || Object.keys(leaves).length > 0;
    this.#publish(changed ? next : this.#state, { joins, leaves });
  }

  /** syncDiff: joins first (a key's joined metas replace those with the same `phx_ref`), then leaves; a leave of an unknown meta is ignored. */
  #applyDiff(diff: PresenceDiff): void {
    const state: Record<string, PresenceMetas> = { ...this.#state };
    const joins: Record<string, PresenceMetas> = {};
    const leaves: Record<string, PresenceMetas> = {};
    for (const [key, joined] of Object.entries(diff.joins)) {
      const refs = new Set(joined.metas.map((meta) => meta.phx_ref));
      state[key] = { metas: [...(state[key]?.metas.filter((meta) => !refs.has(meta.phx_ref)) ?? []), ...joined.metas] };
      joins[key] = joined;
    }
    for (const [key, left] of Object.entries(diff.leaves)) {
      const current = state[key];
      if (!current) continue;
      const refs = new Set(left.metas.map((meta) => meta.phx_ref));
      const metas = current.metas.filter((meta) => !refs.has(meta.phx_ref));
      if (metas.length === current.metas.length) continue;
      if (metas.length === 0) delete state[key];
      else state[key] = { metas };
      leaves[key] = left;
    }
    const changed = Object.keys(joins).length > 0 || Object.keys(leaves).length > 0;
    this.#publish(changed ? state : this.#state, { joins, leaves });
  }

  /** Keeps `state` and tells the listeners: onJoin and onLeave for what `diff` says, then onSync. */
  #publish(state: PresenceState, diff: PresenceDiff): void {
    const before = this.#state;
    this.#state = state;
    for (const [key, joined] of Object.entries(diff.joins)) {
      for (const listener of [...this.#onJoin]) listener(key, before[key], joined);
    }
    for (const [key, left] of Object.entries(diff.leaves)) {
      for (const listener of [...this.#onLeave]) listener(key, state[key] ?? { metas: [] }, left);
    }
    for (const listener of [...this.#onSync]) listener(state);
  }
}
