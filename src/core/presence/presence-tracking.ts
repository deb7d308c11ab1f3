import { randomBytes } from 'node:crypto';
import { RowcastError } from '../../errors.js';
import type { ResponseData } from '../../protocol/index.js';
import type { CustomTopic } from '../../topics/topic-registry.js';
import { mayAccess } from '../../topics/custom-topic-access.js';
import type { PresenceLimits } from '../client-limits.js';
import { RateLimiter, type Bucket } from '../rate-limiter.js';
import type { SessionState, SubscriptionHandle } from '../session-types.js';
import { stateWeight, type PresenceEntry, type PresenceStore } from './presence-store.js';

/** What tracking needs from the core. */
export interface TrackingContext {
  readonly store: PresenceStore;
  readonly limits: PresenceLimits;
  readonly customTopic: (name: string) => CustomTopic | undefined;
}

/** Longest key a client may choose (the Supabase door's `config.presence.key`). */
export const MAX_PRESENCE_KEY_LENGTH = 256;

/**
 * The sessions' side of presence: each session holds at most one presence
 * per topic, made by `track` (again: an update), ended by `untrack`, by the
 * end of its last subscription to the topic, or by the end of the session.
 * Every limit is checked here, whatever the door.
 */
export class PresenceTracking {
  readonly #context: TrackingContext;
  /** session → topic → its presence. */
  readonly #held = new Map<SessionState, Map<string, PresenceEntry>>();
  /** Track and untrack requests per connection (the connection's root session). */
  readonly #buckets = new WeakMap<SessionState, Bucket>();
  readonly #limiter: RateLimiter;
  /** This node's refs: a random prefix (unique over nodes and restarts), then a counter. */
  readonly #refPrefix = randomBytes(6).toString('base64url');
  #refs = 0;

  constructor(context: TrackingContext) {
    this.#context = context;
    this.#limiter = new RateLimiter(context.limits.tracksPerSecond, context.limits.tracksPerSecond);
  }

  /**
   * `track`: the session's presence on `topicName` becomes `meta` (joined,
   * or updated: a new ref with `phx_ref_prev`). The session must be
   * subscribed to the topic, which must have presence. `key` is the door's
   * (a Supabase channel's `config.presence.key`); else the token's `sub`.
   */
  track(session: SessionState, topicName: string, meta: Readonly<Record<string, unknown>>, key?: string): ResponseData['track'] {
    const topic = this.#topicOf(session, topicName, true);
    this.#take(session);
    const { store, limits } = this.#context;
    const who = key ?? keyOf(session);
    if (who === '' || who.length > MAX_PRESENCE_KEY_LENGTH) throw new RowcastError('INVALID_ATTRIBUTES', `a presence key has 1 to ${MAX_PRESENCE_KEY_LENGTH} characters`);
    const previous = this.#held.get(session)?.get(topic.name);
    const sameKey = previous !== undefined && previous.key === who;
    if (!sameKey) {
      if (store.metaCount(topic.name, who) === 0 && store.keyCount(topic.name) >= limits.maxMembers) {
        throw new RowcastError('LIMIT_EXCEEDED', `${topic.name} has ${limits.maxMembers} members present, the most it may (PRESENCE_MAX_MEMBERS)`);
      }
      if (store.metaCount(topic.name, who) >= limits.maxMetasPerKey) {
        throw new RowcastError('LIMIT_EXCEEDED', `${JSON.stringify(who.slice(0, 64))} is present ${limits.maxMetasPerKey} times on ${topic.name}, the most it may be (PRESENCE_MAX_METAS_PER_KEY)`);
      }
    }
    const ref = `${this.#refPrefix}${(this.#refs++).toString(36)}`;
    const json = metaJson(meta, session.principal.sub, ref, sameKey ? previous.ref : undefined, limits.maxMetaBytes);
    const entry: PresenceEntry = { topic: topic.name, key: who, ref, json, node: store.node };
    const bytes = store.stateBytes(topic.name) - (previous ? stateWeight(previous) : 0) + stateWeight(entry);
    if (bytes > limits.maxStateBytes) {
      throw new RowcastError('LIMIT_EXCEEDED', `${topic.name}'s presence state would be about ${bytes} bytes, more than ${limits.maxStateBytes} (half of MAX_BACKPRESSURE_BYTES: each joiner gets it whole)`);
    }
    if (previous) store.leave(previous.topic, previous.ref);
    store.join(entry);
    let held = this.#held.get(session);
    if (!held) this.#held.set(session, (held = new Map()));
    held.set(topic.name, entry);
    return { topic: topic.name, key: who, ref };
  }

  /** `untrack`: the session's presence on `topicName` leaves; says whether there was one. */
  /** The presences `session` holds: topic, key, ref and meta of each. */
  of(session: SessionState): Array<{ readonly topic: string; readonly key: string; readonly ref: string; readonly meta: unknown }> {
    return [...(this.#held.get(session)?.values() ?? [])].map(({ topic, key, ref, json }) => ({ topic, key, ref, meta: JSON.parse(json) as unknown }));
  }

  untrack(session: SessionState, topicName: string): ResponseData['untrack'] {
    this.#take(session);
    return { topic: topicName, untracked: this.#leave(session, topicName) };
  }

  /** `presence`: who is present on a topic the session may read, as its subscribers were last told. */
  state(session: SessionState, topicName: string): ResponseData['presence'] {
    const topic = this.#topicOf(session, topicName, false);
    // A large room's state is costly to send: asking counts like a track.
    this.#take(session);
    return { topic: topic.name, state: JSON.parse(this.#context.store.stateJson(topic.name)) };
  }

  /** A subscription ended: without another on its topic, the session's presence there leaves. */
  subscriptionEnded(handle: SubscriptionHandle): void {
    const { session, topic } = handle;
    if (!this.#held.get(session)?.has(topic)) return;
    for (const other of session.handles) if (other.topic === topic) return;
    this.#leave(session, topic);
  }

  /** The session ended: all its presences leave. */
  sessionEnded(session: SessionState): void {
    for (const topic of [...(this.#held.get(session)?.keys() ?? [])]) this.#leave(session, topic);
  }

  #leave(session: SessionState, topic: string): boolean {
    const held = this.#held.get(session);
    const entry = held?.get(topic);
    if (!held || !entry) return false;
    held.delete(topic);
    if (held.size === 0) this.#held.delete(session);
    this.#context.store.leave(entry.topic, entry.ref);
    return true;
  }

  /** The custom topic with presence that `session` may use: subscribed to it when tracking, a reader when asking. */
  #topicOf(session: SessionState, name: string, tracking: boolean): CustomTopic {
    const topic = this.#context.customTopic(name);
    if (!topic || !mayAccess(topic.readers, session.principal)) throw new RowcastError('TOPIC_NOT_FOUND', `no custom topic named ${JSON.stringify(name.slice(0, 128))}`);
    if (!topic.presence) throw new RowcastError('INVALID_ATTRIBUTES', `topicName: ${name} has no presence (an admin creates topics with presence: true)`);
    if (tracking && ![...session.handles].some((handle) => handle.topic === name)) {
      throw new RowcastError('INVALID_ATTRIBUTES', `topicName: subscribe to ${name} before tracking presence on it`);
    }
    return topic;
  }

  /** One track, untrack or presence request from the session's connection (`PRESENCE_TRACK_RATE` per second, in bursts of as many). */
  #take(session: SessionState): void {
    const root = [...session.connection][0]!;
    let bucket = this.#buckets.get(root);
    if (!bucket) this.#buckets.set(root, (bucket = this.#limiter.bucket()));
    const decision = this.#limiter.take(bucket);
    // A flood of tracks is refused, never a reason to close: the connection's frames have their own limiter.
    if (decision.verdict !== 'run') {
      const wait = decision.verdict === 'refuse' ? decision.retryAfter : Math.ceil(1000 / this.#context.limits.tracksPerSecond);
      throw new RowcastError('RATE_LIMIT_EXCEEDED', `at most ${this.#context.limits.tracksPerSecond} presence updates per second per connection (PRESENCE_TRACK_RATE): retry in ${wait} ms`);
    }
  }
}

/** A session's key on `/live` and Phoenix: its `sub`, or for an anonymous connection one of its own. */
function keyOf(session: SessionState): string {
  return session.principal.sub ?? `anonymous:${session.id}`;
}

/** The meta clients see, as JSON: the client's fields, then `sub`, `phx_ref` and `phx_ref_prev` set by the server. */
function metaJson(meta: Readonly<Record<string, unknown>>, sub: string | null, ref: string, previous: string | undefined, maxBytes: number): string {
  let own: string;
  try {
    own = JSON.stringify(meta);
  } catch {
    throw new RowcastError('INVALID_ATTRIBUTES', 'meta: must be a JSON object');
  }
  if (Buffer.byteLength(own) > maxBytes) throw new RowcastError('LIMIT_EXCEEDED', `meta: ${Buffer.byteLength(own)} bytes of JSON, more than ${maxBytes} (PRESENCE_MAX_META_BYTES)`);
  const { sub: _sub, phx_ref: _ref, phx_ref_prev: _prev, ...rest } = meta;
  return JSON.stringify({ ...rest, sub, phx_ref: ref, ...(previous !== undefined ? { phx_ref_prev: previous } : {}) });
}
