import type { WebSocket } from 'uWebSockets.js';
import type { EventKind } from '../events/event.js';
import type { Row } from '../replication/transaction.js';
import type { Connection } from './connection.js';

/**
 * A set of subscriptions that see a topic's rows the same way: one filter
 * and one `events` choice. All connections in a group share its uWS topics
 * (one per audience partition), so the filter runs once per event for the
 * whole group.
 */
export interface SubscriptionGroup {
  /** `''` for the plain group (no filter, every event), which uses the bare partition topics. */
  readonly key: string;
  /** `null`: every row passes. */
  readonly test: ((row: Row) => boolean) | null;
  /** `null`: every kind of event. */
  readonly events: ReadonlySet<EventKind> | null;
}

/** The group of subscriptions without filter or `events`: the bare partition topics. */
export const PLAIN_GROUP: SubscriptionGroup = Object.freeze({ key: '', test: null, events: null });

/** One topic of one connection. */
export interface Subscription {
  readonly group: SubscriptionGroup;
  /** The audience partitions granted. */
  readonly partitions: readonly string[];
}

/** The uWS topic of `partition` for subscription group `key`. */
export function uwsTopic(partition: string, key: string): string {
  return key === '' ? partition : `${partition}#${key}`;
}

/**
 * The permission index's live half: which subscription groups exist per
 * topic (so the router knows which filters to run) and which sockets hold a
 * subscription to each topic (so a policy change can revisit exactly them).
 * All socket (un)subscriptions go through here.
 */
export class SubscriptionIndex {
  /** topic → group key → group and how many subscriptions use it. */
  readonly #groups = new Map<string, Map<string, { group: SubscriptionGroup; refs: number }>>();
  readonly #subscribers = new Map<string, Set<WebSocket<Connection>>>();

  /** The filtered groups of `topic` (the plain group is implied). */
  groupsOf(topic: string): Iterable<{ group: SubscriptionGroup }> | undefined {
    return this.#groups.get(topic)?.values();
  }

  /** The sockets subscribed to `topic`. */
  subscribersOf(topic: string): ReadonlySet<WebSocket<Connection>> {
    return this.#subscribers.get(topic) ?? EMPTY;
  }

  /** Subscribers and distinct filter groups of `topic`, for /status. */
  stats(topic: string): { subscribers: number; filterGroups: number } {
    return { subscribers: this.#subscribers.get(topic)?.size ?? 0, filterGroups: this.#groups.get(topic)?.size ?? 0 };
  }

  /** Subscribes `ws` to `topic`, replacing an earlier subscription of it. */
  subscribe(ws: WebSocket<Connection>, topic: string, subscription: Subscription): void {
    const conn = ws.getUserData();
    this.unsubscribe(ws, topic);
    const { group, partitions } = subscription;
    if (group.key !== '') {
      let groups = this.#groups.get(topic);
      if (!groups) this.#groups.set(topic, (groups = new Map()));
      const entry = groups.get(group.key);
      if (entry) entry.refs++;
      else groups.set(group.key, { group, refs: 1 });
    }
    for (const partition of partitions) ws.subscribe(uwsTopic(partition, group.key));
    let subscribers = this.#subscribers.get(topic);
    if (!subscribers) this.#subscribers.set(topic, (subscribers = new Set()));
    subscribers.add(ws);
    conn.subscriptions.set(topic, subscription);
  }

  /** Ends `ws`'s subscription to `topic`; returns whether it had one. */
  unsubscribe(ws: WebSocket<Connection>, topic: string): boolean {
    const conn = ws.getUserData();
    const subscription = conn.subscriptions.get(topic);
    if (!subscription) return false;
    conn.subscriptions.delete(topic);
    if (!conn.closed) {
      for (const partition of subscription.partitions) ws.unsubscribe(uwsTopic(partition, subscription.group.key));
    }
    this.#forget(ws, topic, subscription);
    return true;
  }

  /** Forgets every subscription of a closed socket (uWS has already dropped its topics). */
  closed(ws: WebSocket<Connection>): void {
    const conn = ws.getUserData();
    for (const [topic, subscription] of conn.subscriptions) this.#forget(ws, topic, subscription);
    conn.subscriptions.clear();
  }

  #forget(ws: WebSocket<Connection>, topic: string, subscription: Subscription): void {
    const key = subscription.group.key;
    if (key !== '') {
      const groups = this.#groups.get(topic)!;
      const entry = groups.get(key)!;
      if (--entry.refs === 0) groups.delete(key);
      if (groups.size === 0) this.#groups.delete(topic);
    }
    const subscribers = this.#subscribers.get(topic);
    subscribers?.delete(ws);
    if (subscribers?.size === 0) this.#subscribers.delete(topic);
  }
}

const EMPTY: ReadonlySet<never> = new Set();
