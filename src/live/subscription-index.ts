import type { WebSocket } from 'uWebSockets.js';
import type { EventKind } from '../events/event.js';
import type { Row } from '../replication/transaction.js';
import type { Connection } from './connection.js';

/** How a subscription sees a topic's rows: one filter and one `events` choice, identified by a canonical key. */
export interface GroupSpec {
  /** `''` for the plain group (no filter, every event), which uses the bare partition topics. */
  readonly key: string;
  /** `null`: every row passes. */
  readonly test: ((row: Row) => boolean) | null;
  /** `null`: every kind of event. */
  readonly events: ReadonlySet<EventKind> | null;
}

/**
 * A set of subscriptions that see a topic's rows the same way. All
 * connections in a group share its uWS topics (one per audience partition),
 * so the filter runs once per event for the whole group. A group gets a
 * short `id` when it is made: its uWS topics are `<partition>#<id>`, so the
 * per-event path never builds or copies the (possibly long) filter key.
 */
export interface SubscriptionGroup extends GroupSpec {
  /** `''` for the plain group; else unique on this node for as long as the process runs. */
  readonly id: string;
}

/** The group of subscriptions without filter or `events`: the bare partition topics. */
export const PLAIN_GROUP: SubscriptionGroup = Object.freeze({ key: '', id: '', test: null, events: null });

/** One topic of one connection. */
export interface Subscription {
  readonly group: SubscriptionGroup;
  /** The audience partitions granted. */
  readonly partitions: readonly string[];
}

/** The uWS topic of `partition` for the subscription group with id `id`. */
export function uwsTopic(partition: string, id: string): string {
  return id === '' ? partition : `${partition}#${id}`;
}

/** A filtered group of a topic and how its subscriptions use it. */
interface GroupEntry {
  readonly group: SubscriptionGroup;
  /** Subscriptions in the group. */
  refs: number;
}

/** The filtered groups of one topic, by key, and by the partitions their subscribers hold. */
interface TopicGroups {
  readonly byKey: Map<string, GroupEntry>;
  /** partition → group → subscriptions of the group holding it. */
  readonly byPartition: Map<string, Map<SubscriptionGroup, number>>;
}

/**
 * The permission index's live half. It knows, per topic:
 * - which filtered groups exist, and which audience partitions their
 *   subscribers hold (so the router runs only the filters of groups that
 *   can receive an event: those holding one of its row's partitions);
 * - which sockets hold a subscription (so a policy change revisits exactly
 *   them);
 * - how many subscriptions each user holds over all its connections.
 * All socket (un)subscriptions go through here.
 */
export class SubscriptionIndex {
  readonly #topics = new Map<string, TopicGroups>();
  readonly #subscribers = new Map<string, Set<WebSocket<Connection>>>();
  readonly #perUser = new Map<string, number>();
  #nextId = 0;

  /**
   * The filtered groups of `topic` with a subscriber in `partition` (the
   * plain group is implied), or `undefined`.
   */
  groupsIn(topic: string, partition: string): ReadonlyMap<SubscriptionGroup, number> | undefined {
    return this.#topics.get(topic)?.byPartition.get(partition);
  }

  /** Distinct filtered groups of `topic`. */
  groupCount(topic: string): number {
    return this.#topics.get(topic)?.byKey.size ?? 0;
  }

  /** Subscriptions in the filtered group `key` of `topic` (0: there is none). */
  groupSize(topic: string, key: string): number {
    return this.#topics.get(topic)?.byKey.get(key)?.refs ?? 0;
  }

  /** Whether the filtered group `key` of `topic` has a subscriber holding `partition`. */
  holds(topic: string, partition: string, key: string): boolean {
    const groups = this.#topics.get(topic);
    const entry = groups?.byKey.get(key);
    return entry !== undefined && (groups!.byPartition.get(partition)?.has(entry.group) ?? false);
  }

  /** Whether `topic` has a filtered group with this key. */
  hasGroup(topic: string, key: string): boolean {
    return this.#topics.get(topic)?.byKey.has(key) ?? false;
  }

  /** Subscriptions `sub` holds over all its connections on this node. */
  subscriptionsOf(sub: string): number {
    return this.#perUser.get(sub) ?? 0;
  }

  /** The sockets subscribed to `topic`. */
  subscribersOf(topic: string): ReadonlySet<WebSocket<Connection>> {
    return this.#subscribers.get(topic) ?? EMPTY;
  }

  /** Subscribers and distinct filter groups of `topic`, for /status. */
  stats(topic: string): { subscribers: number; filterGroups: number } {
    return { subscribers: this.#subscribers.get(topic)?.size ?? 0, filterGroups: this.groupCount(topic) };
  }

  /**
   * Subscribes `ws` to `topic` with the group `spec` describes (joining the
   * group of that key, or making it), replacing an earlier subscription of
   * the topic.
   */
  subscribe(ws: WebSocket<Connection>, topic: string, spec: GroupSpec, partitions: readonly string[]): Subscription {
    const conn = ws.getUserData();
    this.unsubscribe(ws, topic);
    const group = spec.key === '' ? PLAIN_GROUP : this.#join(topic, spec, partitions);
    for (const partition of partitions) ws.subscribe(uwsTopic(partition, group.id));
    let subscribers = this.#subscribers.get(topic);
    if (!subscribers) this.#subscribers.set(topic, (subscribers = new Set()));
    subscribers.add(ws);
    const subscription: Subscription = { group, partitions };
    conn.subscriptions.set(topic, subscription);
    const sub = conn.principal.sub;
    if (sub !== null) this.#perUser.set(sub, (this.#perUser.get(sub) ?? 0) + 1);
    return subscription;
  }

  /** Ends `ws`'s subscription to `topic`; returns whether it had one. */
  unsubscribe(ws: WebSocket<Connection>, topic: string): boolean {
    const conn = ws.getUserData();
    const subscription = conn.subscriptions.get(topic);
    if (!subscription) return false;
    conn.subscriptions.delete(topic);
    if (!conn.closed) {
      for (const partition of subscription.partitions) ws.unsubscribe(uwsTopic(partition, subscription.group.id));
    }
    this.#forget(ws, conn, topic, subscription);
    return true;
  }

  /** Forgets every subscription of a closed socket (uWS has already dropped its topics). */
  closed(ws: WebSocket<Connection>): void {
    const conn = ws.getUserData();
    for (const [topic, subscription] of conn.subscriptions) this.#forget(ws, conn, topic, subscription);
    conn.subscriptions.clear();
  }

  /** The group of `spec.key` on `topic` (made when it is the first), with `partitions` counted for it. */
  #join(topic: string, spec: GroupSpec, partitions: readonly string[]): SubscriptionGroup {
    let groups = this.#topics.get(topic);
    if (!groups) this.#topics.set(topic, (groups = { byKey: new Map(), byPartition: new Map() }));
    let entry = groups.byKey.get(spec.key);
    if (!entry) {
      const group = Object.freeze({ key: spec.key, id: `g${(this.#nextId++).toString(36)}`, test: spec.test, events: spec.events });
      groups.byKey.set(spec.key, (entry = { group, refs: 0 }));
    }
    entry.refs++;
    for (const partition of partitions) {
      let holders = groups.byPartition.get(partition);
      if (!holders) groups.byPartition.set(partition, (holders = new Map()));
      holders.set(entry.group, (holders.get(entry.group) ?? 0) + 1);
    }
    return entry.group;
  }

  #forget(ws: WebSocket<Connection>, conn: Connection, topic: string, subscription: Subscription): void {
    const { group, partitions } = subscription;
    if (group.key !== '') {
      const groups = this.#topics.get(topic)!;
      for (const partition of partitions) {
        const holders = groups.byPartition.get(partition)!;
        const count = holders.get(group)! - 1;
        if (count === 0) holders.delete(group);
        else holders.set(group, count);
        if (holders.size === 0) groups.byPartition.delete(partition);
      }
      const entry = groups.byKey.get(group.key)!;
      if (--entry.refs === 0) groups.byKey.delete(group.key);
      if (groups.byKey.size === 0) this.#topics.delete(topic);
    }
    const subscribers = this.#subscribers.get(topic);
    subscribers?.delete(ws);
    if (subscribers?.size === 0) this.#subscribers.delete(topic);
    const sub = conn.principal.sub;
    if (sub !== null) {
      const count = (this.#perUser.get(sub) ?? 1) - 1;
      if (count === 0) this.#perUser.delete(sub);
      else this.#perUser.set(sub, count);
    }
  }
}

const EMPTY: ReadonlySet<never> = new Set();
