import type { FrameEncoder } from '../events/event.js';
import type { GroupSpec, SessionState, SubscriptionGroup, SubscriptionHandle } from './session-types.js';

/** The uWS topic of `partition` for the subscription group with id `id`. */
export function uwsTopic(partition: string, id: string): string {
  return id === '' ? partition : `${partition}#${id}`;
}

/** A group of a topic and how many subscriptions use it. */
interface GroupEntry {
  readonly group: SubscriptionGroup;
  refs: number;
}

/** The groups of one topic, by key, and by the partitions their subscribers hold. */
interface TopicGroups {
  readonly byKey: Map<string, GroupEntry>;
  /** partition → group → subscriptions of the group holding it. */
  readonly byPartition: Map<string, Map<SubscriptionGroup, number>>;
}

/**
 * The permission index's live half. It knows, per topic:
 * - which groups exist, and which audience partitions their subscribers hold
 *   (so the router runs only the filters of groups that can receive an
 *   event: those holding one of its row's partitions);
 * - which subscriptions exist (so a policy change revisits exactly them);
 * - how many subscriptions each user holds over all its sessions.
 * All subscriptions are made and ended here, and the sessions' uWS topics
 * follow them.
 */
export class SubscriptionIndex {
  readonly #topics = new Map<string, TopicGroups>();
  readonly #handles = new Map<string, Set<SubscriptionHandle>>();
  readonly #perUser = new Map<string, number>();
  readonly #plain: FrameEncoder;
  readonly #endListeners: Array<(handle: SubscriptionHandle) => void> = [];
  #nextId = 0;

  /** `plain`: the encoder whose unfiltered group uses the bare partition names (`/live`'s). */
  constructor(plain: FrameEncoder) {
    this.#plain = plain;
  }

  /** Calls `listener` after each subscription ends (however it ends). */
  onEnd(listener: (handle: SubscriptionHandle) => void): void {
    this.#endListeners.push(listener);
  }

  /** The groups of `topic` with a subscriber in `partition`, or `undefined`. */
  groupsIn(topic: string, partition: string): ReadonlyMap<SubscriptionGroup, number> | undefined {
    return this.#topics.get(topic)?.byPartition.get(partition);
  }

  /** Distinct filtered groups of `topic` (over all encoders; unfiltered ones are not counted). */
  groupCount(topic: string): number {
    let count = 0;
    for (const { group } of this.#topics.get(topic)?.byKey.values() ?? []) if (group.key !== '') count++;
    return count;
  }

  /** Subscriptions in the group of `key` and `encoder` on `topic` (0: there is none). */
  groupSize(topic: string, key: string, encoder: FrameEncoder): number {
    return this.#topics.get(topic)?.byKey.get(groupKey(key, encoder))?.refs ?? 0;
  }

  /** Whether `topic` has the group of `key` and `encoder`. */
  hasGroup(topic: string, key: string, encoder: FrameEncoder): boolean {
    return this.#topics.get(topic)?.byKey.has(groupKey(key, encoder)) ?? false;
  }

  /** Whether the group of `key` and `encoder` on `topic` has a subscriber holding `partition`. */
  holds(topic: string, partition: string, key: string, encoder: FrameEncoder): boolean {
    const groups = this.#topics.get(topic);
    const entry = groups?.byKey.get(groupKey(key, encoder));
    return entry !== undefined && (groups!.byPartition.get(partition)?.has(entry.group) ?? false);
  }

  /** Subscriptions `sub` holds over all its sessions on this node. */
  subscriptionsOf(sub: string): number {
    return this.#perUser.get(sub) ?? 0;
  }

  /** The subscriptions to `topic`. */
  handlesOf(topic: string): ReadonlySet<SubscriptionHandle> {
    return this.#handles.get(topic) ?? EMPTY;
  }

  /** Sessions subscribed to `topic` and distinct filter groups, for /status. */
  stats(topic: string): { subscribers: number; filterGroups: number } {
    const sessions = new Set<SessionState>();
    for (const handle of this.#handles.get(topic) ?? EMPTY) sessions.add(handle.session);
    return { subscribers: sessions.size, filterGroups: this.groupCount(topic) };
  }

  /** Subscribes `session` to `topic` with the group `spec` and `encoder` describe (joining it, or making it). */
  subscribe(session: SessionState, topic: string, spec: GroupSpec, encoder: FrameEncoder, partitions: readonly string[]): SubscriptionHandle {
    const group = this.#join(topic, spec, encoder, partitions);
    const handle: SubscriptionHandle = Object.freeze({ session, topic, group, partitions });
    for (const partition of partitions) session.holdTopic(uwsTopic(partition, group.id));
    let handles = this.#handles.get(topic);
    if (!handles) this.#handles.set(topic, (handles = new Set()));
    handles.add(handle);
    session.handles.add(handle);
    const sub = session.principal.sub;
    if (sub !== null) this.#perUser.set(sub, (this.#perUser.get(sub) ?? 0) + 1);
    return handle;
  }

  /** Ends a subscription; returns whether it was held. */
  unsubscribe(handle: SubscriptionHandle): boolean {
    const { session, topic, group, partitions } = handle;
    if (!session.handles.delete(handle)) return false;
    for (const partition of partitions) session.releaseTopic(uwsTopic(partition, group.id));
    const groups = this.#topics.get(topic)!;
    for (const partition of partitions) {
      const holders = groups.byPartition.get(partition)!;
      const count = holders.get(group)! - 1;
      if (count === 0) holders.delete(group);
      else holders.set(group, count);
      if (holders.size === 0) groups.byPartition.delete(partition);
    }
    const entryKey = groupKey(group.key, group.encoder);
    const entry = groups.byKey.get(entryKey)!;
    if (--entry.refs === 0) groups.byKey.delete(entryKey);
    if (groups.byKey.size === 0) this.#topics.delete(topic);
    const handles = this.#handles.get(topic)!;
    handles.delete(handle);
    if (handles.size === 0) this.#handles.delete(topic);
    const sub = session.principal.sub;
    if (sub !== null) {
      const count = (this.#perUser.get(sub) ?? 1) - 1;
      if (count === 0) this.#perUser.delete(sub);
      else this.#perUser.set(sub, count);
    }
    for (const listener of this.#endListeners) listener(handle);
    return true;
  }

  /** The group of `spec` and `encoder` on `topic` (made when it is the first), with `partitions` counted for it. */
  #join(topic: string, spec: GroupSpec, encoder: FrameEncoder, partitions: readonly string[]): SubscriptionGroup {
    let groups = this.#topics.get(topic);
    if (!groups) this.#topics.set(topic, (groups = { byKey: new Map(), byPartition: new Map() }));
    const key = groupKey(spec.key, encoder);
    let entry = groups.byKey.get(key);
    if (!entry) {
      const id = spec.key === '' && encoder === this.#plain ? '' : `g${(this.#nextId++).toString(36)}`;
      const group: SubscriptionGroup = Object.freeze({ key: spec.key, id, test: spec.test, events: spec.events, encoder });
      groups.byKey.set(key, (entry = { group, refs: 0 }));
    }
    entry.refs++;
    for (const partition of partitions) {
      let holders = groups.byPartition.get(partition);
      if (!holders) groups.byPartition.set(partition, (holders = new Map()));
      holders.set(entry.group, (holders.get(entry.group) ?? 0) + 1);
    }
    return entry.group;
  }
}

/** A group's identity on its topic: its encoder and its filter. */
function groupKey(key: string, encoder: FrameEncoder): string {
  return `${encoder.slot}|${key}`;
}

const EMPTY: ReadonlySet<never> = new Set();
