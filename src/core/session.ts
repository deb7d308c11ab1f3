import type { Principal } from '../auth/principal.js';
import type { ResponseData } from '../protocol/index.js';
import type { CoreContext } from './core-context.js';
import type { SessionInfo, SessionPort, SessionState, SubscribeRequest, Subscribed, SubscriptionHandle } from './session-types.js';
import { subscribe } from './subscribe.js';
import * as topics from './topic-operations.js';
import { refreshToken } from './token-refresh.js';

/**
 * One connection of any door, as the core sees it: who it acts for, what it
 * is subscribed to, and every operation a door may run for it. Each
 * operation checks permissions and limits and answers with the protocol's
 * response data, or throws a `RowcastError`. A session may also live within
 * another's connection, acting for another user (a Supabase channel with its
 * own token): it has a `parent`, and ends with it.
 */
export class Session implements SessionState {
  readonly id: string;
  readonly client: string;
  readonly port: SessionPort;
  principal: Principal;
  /** Its subscriptions (kept by the SubscriptionIndex). */
  readonly handles = new Set<SubscriptionHandle>();
  /** The session whose connection this one shares (`null`: it is the connection's own). */
  readonly parent: Session | null;
  /** Sessions opened within this one's connection (see {@link SessionState.connection}). */
  readonly children = new Set<Session>();
  /** Set when the door's socket closed: nothing may touch the socket after. */
  closed = false;
  /** Flow control (BackpressureGauge): when its unsent bytes first passed the high-water mark (0: below it). */
  congestedSince = 0;
  /** Unsent bytes at the last look while congested, and when they last went down. */
  congestedBytes = 0;
  drainedAt = 0;
  readonly #context: CoreContext;
  /** uWS topic → subscriptions of this session using it (the socket is subscribed while any does). */
  readonly #topics = new Map<string, number>();

  constructor(context: CoreContext, info: SessionInfo, principal: Principal, port: SessionPort, parent: Session | null = null) {
    this.#context = context;
    this.parent = parent;
    this.id = info.id;
    this.client = info.client;
    this.principal = principal;
    this.port = port;
  }

  /** This session, its parent and their other children. */
  get connection(): Iterable<Session> {
    const root = this.parent ?? this;
    return [root, ...root.children];
  }

  /**
   * Subscribes to one or more topics, all or nothing (see {@link subscribe}).
   * `commit` runs in the synchronous step that makes the subscriptions live:
   * the door sends the answer and the replayed frames there, so the first
   * live event follows them with nothing between and nothing twice. It does
   * not run when the session closed meanwhile.
   */
  subscribe(request: SubscribeRequest, commit: (subscribed: Subscribed) => void): Promise<void> {
    return subscribe(this.#context, this, request, commit);
  }

  /** Ends one of this session's subscriptions; returns whether it held it. */
  unsubscribe(handle: SubscriptionHandle): boolean {
    return handle.session === this && this.#context.index.unsubscribe(handle);
  }

  /** `new-message`: publishes to a custom topic this user may write. */
  publish(topicName: string, message: unknown): Promise<ResponseData['new-message']> {
    return topics.publish(this.#context, this, topicName, message);
  }

  /** `direct-message`: to every connection of user `to`, kept in their inbox. */
  directMessage(to: string, message: unknown): Promise<ResponseData['direct-message']> {
    return topics.directMessage(this.#context, this, to, message);
  }

  history(topicName: string, before: string | number | undefined, limit: number | undefined): Promise<ResponseData['history']> {
    return topics.history(this.#context, this, topicName, before, limit);
  }

  listTopics(): ResponseData['list-topic'] {
    return topics.listTopics(this.#context, this);
  }

  getTopic(name: string): ResponseData['get-topic'] {
    return topics.getTopic(this.#context, this, name);
  }

  createTopic(attributes: topics.CreateTopic): Promise<ResponseData['create-topic']> {
    return topics.createTopic(this.#context, this, attributes);
  }

  destroyTopic(name: string): Promise<ResponseData['destroy-topic']> {
    return topics.destroyTopic(this.#context, this, name);
  }

  /**
   * `track`: this session's presence on a topic it is subscribed to becomes
   * `meta` (see PresenceTracking). `key` is the door's choice (a Supabase
   * channel's); else the token's `sub`.
   */
  track(topicName: string, meta: Readonly<Record<string, unknown>>, key?: string): ResponseData['track'] {
    return this.#context.presence.track(this, topicName, meta, key);
  }

  untrack(topicName: string): ResponseData['untrack'] {
    return this.#context.presence.untrack(this, topicName);
  }

  /** Who is present on `topicName`, as its subscribers were last told. */
  presence(topicName: string): ResponseData['presence'] {
    return this.#context.presence.state(this, topicName);
  }

  /**
   * The presence state a door sends right after this session's subscription
   * to `topicName` went live (as JSON, for its encoder), or `null` when the
   * topic has no presence. Diffs published after this call continue it.
   */
  presenceSnapshot(topicName: string): string | null {
    return this.#context.registry.custom(topicName)?.presence ? this.#context.presenceStore.stateJson(topicName) : null;
  }

  /**
   * Replaces the session's token (same `sub`). Subscriptions the new token
   * reads differently are ended and reported to the door (`revoked`).
   */
  refreshToken(token: string): ResponseData['refresh-token'] {
    return refreshToken(this.#context, this, token);
  }

  /** The session ends (its socket or channel is gone): every subscription ends, and every session opened within it. */
  close(): void {
    this.closed = true;
    this.#context.presence.sessionEnded(this);
    for (const handle of [...this.handles]) this.#context.index.unsubscribe(handle);
    for (const child of [...this.children]) child.close();
    this.parent?.children.delete(this);
  }

  /** A subscription uses `uwsTopic`: the socket subscribes to it with the first. */
  holdTopic(uwsTopic: string): void {
    const count = this.#topics.get(uwsTopic) ?? 0;
    this.#topics.set(uwsTopic, count + 1);
    if (count === 0 && !this.closed) this.port.subscribeTopic(uwsTopic);
  }

  /** A subscription stopped using `uwsTopic`: the socket unsubscribes with the last. */
  releaseTopic(uwsTopic: string): void {
    const count = (this.#topics.get(uwsTopic) ?? 1) - 1;
    if (count > 0) {
      this.#topics.set(uwsTopic, count);
      return;
    }
    this.#topics.delete(uwsTopic);
    if (!this.closed) this.port.unsubscribeTopic(uwsTopic);
  }
}
