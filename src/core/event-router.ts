import type { TemplatedApp } from 'uWebSockets.js';
import type { Event } from '../events/event.js';
import type { EventKind, FrameKind } from '../protocol/index.js';
import { adminPartition } from '../policies/audience-partitions.js';
import type { GroupSpec, SessionPort, SubscriptionGroup } from './session-types.js';
import { uwsTopic, type SubscriptionIndex } from './subscription-index.js';

const NONE: readonly string[] = [];

/** What the router counts, read by /status and /metrics. */
export interface RouterCounters {
  /** Events routed. */
  readonly count: number;
  /** Frames handed to sockets (an event to 100 subscribers counts 100). */
  readonly deliveries: number;
  /** Events that could not be serialized and were not delivered. */
  readonly dropped: number;
  /** Events routed, by topic. */
  readonly byTopic: ReadonlyMap<string, number>;
}

/** Where the router publishes: uWS's native fan-out to every socket subscribed to a topic. */
export type Publisher = Pick<TemplatedApp, 'publish' | 'numSubscribers'>;

/** What the router calls back. */
export interface RouterHooks {
  /** A custom topic's message was routed (or dropped). */
  readonly onMessage?: (event: Event) => void;
  /** An event could not be serialized: it went to no one. */
  readonly onDropped?: (event: Event, error: unknown) => void;
  /** The port of the connection that published a message (its {@link Event.origin}), when it is on this node. */
  readonly originPort?: (origin: string) => SessionPort | undefined;
}

/**
 * The per-event hot path. For every event: the subscription groups that
 * hold one of the row's partitions (old or new) or the admins' `t|all`, and
 * for each the frame that partition sees, published to the group's uWS
 * topic. Per partition the change is a `create` (the row enters what that
 * audience sees), an `update` (it stays), or a `delete` (it leaves), so a
 * client cache built from events is always exactly what it may read.
 *
 * The cost of an event is (partitions of its row) × (groups holding them);
 * each group's filter runs once; delivery to the sockets is uWS's native
 * fan-out. Nothing here loops over subscribers, and a group whose
 * subscribers hold none of the row's partitions costs nothing.
 *
 * Non-admin partitions get the event without its table's hidden columns
 * ({@link Event.visible}: stripped and serialized once per event).
 *
 * An event is delivered whole or not at all: every frame it needs is
 * serialized before the first is published. One that cannot be (a `jsonb`
 * value nested too deep for `JSON.stringify`) is marked dropped and reported
 * through `onDropped`, and the stream goes on.
 */
export function routeEvents(subscribe: (listener: (event: Event) => void) => void, app: Publisher, index: SubscriptionIndex, hooks: RouterHooks = {}): RouterCounters {
  const byTopic = new Map<string, number>();
  const counter = { count: 0, deliveries: 0, dropped: 0, byTopic };
  // The frames of the event being routed, collected before any is published (reused: no allocation per event).
  const topics: string[] = [];
  const kinds: FrameKind[] = [];
  // The event each frame is made of: the whole change for the admins' partition, else its visible part.
  const views: Event[] = [];
  const groupsOf: SubscriptionGroup[] = [];
  const audiences: number[] = [];
  // A group holding several of the row's partitions is visited once per event: it is marked with the event's
  // number. (Not a Set cleared per event: Set.clear allocates a new table each time, and in a 200,000-row
  // burst that garbage was promoted, adding ~20 MiB to the peak.)
  const visitedBy = new WeakMap<SubscriptionGroup, number>();
  let group: SubscriptionGroup | null = null;
  let current: Event | null = null;
  let admin = '';
  // A frame is collected only for a uWS topic that has subscribers (so it is not even serialized otherwise).
  const collect = (partition: string, kind: FrameKind) => {
    const topic = uwsTopic(partition, group!.id);
    const subscribers = app.numSubscribers(topic);
    if (subscribers === 0) return;
    topics.push(topic);
    kinds.push(kind);
    views.push(current!.seenFrom(partition, admin));
    groupsOf.push(group!);
    audiences.push(subscribers);
  };
  // Hoisted callbacks: the per-event path allocates no closures or iterators.
  const visitGroup = (_count: number, candidate: SubscriptionGroup) => {
    if (visitedBy.get(candidate) === counter.count) return;
    visitedBy.set(candidate, counter.count);
    group = candidate;
    framesForGroup(current!, candidate, admin, collect);
  };
  const visit = (partition: string) => {
    index.groupsIn(current!.topic, partition)?.forEach(visitGroup);
  };
  subscribe((event) => {
    counter.count++;
    byTopic.set(event.topic, (byTopic.get(event.topic) ?? 0) + 1);
    topics.length = 0;
    kinds.length = 0;
    views.length = 0;
    groupsOf.length = 0;
    audiences.length = 0;
    try {
      if (event.dropped !== null) throw new Error(event.dropped);
      current = event;
      admin = adminPartition(event.topic);
      for (const partition of event.partitions) visit(partition);
      for (const partition of event.oldPartitions ?? NONE) visit(partition);
      visit(admin);
      for (let i = 0; i < kinds.length; i++) views[i]!.frameFor(groupsOf[i]!.encoder, kinds[i]!);
    } catch (error) {
      counter.dropped++;
      event.markDropped(error instanceof Error ? error.message : String(error));
      hooks.onDropped?.(event, error);
      if (event.kind === 'new-message') hooks.onMessage?.(event);
      return;
    } finally {
      current = null;
      group = null;
    }
    for (let i = 0; i < topics.length; i++) {
      counter.deliveries += audiences[i]!;
      const frame = views[i]!.frameFor(groupsOf[i]!.encoder, kinds[i]!);
      if (event.origin !== null && groupsOf[i]!.encoder.skipsOrigin === true) publishSkippingOrigin(app, topics[i]!, frame, hooks.originPort?.(event.origin));
      else app.publish(topics[i]!, frame, false);
    }
    if (event.kind === 'new-message') hooks.onMessage?.(event);
  });
  return counter;
}

/** Publishes `frame` to every subscriber of `topic` but the origin's socket (uWS's publish knows no exceptions: it steps out for the moment). */
function publishSkippingOrigin(app: Publisher, topic: string, frame: string, origin: SessionPort | undefined): void {
  if (origin?.publishWithout) origin.publishWithout(topic, () => app.publish(topic, frame, false));
  else app.publish(topic, frame, false);
}

/**
 * What `event` means to subscription `group`: calls `emit` with each
 * partition it reaches and the kind of frame it is there. Publishing (to the
 * uWS topics of the group) and replaying (to one subscription) share this.
 */
export function framesForGroup(event: Event, group: GroupSpec, admin: string, emit: (partition: string, kind: FrameKind) => void): void {
  if (event.kind === 'new-message') {
    for (const partition of event.partitions) emit(partition, 'new-message');
    return;
  }
  const row = event.row;
  const old = event.old;
  const test = group.test;
  // Whether the row passes the group's filter now and passed it before the change.
  const isIn = row !== null && (test === null || test(row));
  let wasIn: boolean;
  let before: readonly string[];
  let after: readonly string[];
  switch (event.kind) {
    case 'create':
      wasIn = false;
      before = NONE;
      after = event.partitions;
      break;
    case 'update':
      // Without the old row (no REPLICA IDENTITY FULL) a move cannot be seen: treat it as staying.
      wasIn = old === null ? isIn : test === null || test(old);
      before = event.oldPartitions ?? event.partitions;
      after = event.partitions;
      break;
    case 'delete':
      // A key-only old row cannot be filtered: tell the group, a delete of an unknown id is harmless.
      wasIn = test === null || !event.oldComplete || test(old!);
      before = event.partitions;
      after = NONE;
      break;
  }
  // Leaving partitions first: a user in both the old and the new partition (two of their
  // groups) sees delete then create, and their cache still ends with the row.
  for (let i = 0; i < before.length; i++) {
    const partition = before[i]!;
    if (!after.includes(partition)) emitKind(group, partition, wasIn, false, emit);
  }
  emitKind(group, admin, wasIn, isIn, emit);
  for (let i = 0; i < after.length; i++) {
    const partition = after[i]!;
    emitKind(group, partition, wasIn && before.includes(partition), isIn, emit);
  }
}

function emitKind(group: GroupSpec, partition: string, wasIn: boolean, isIn: boolean, emit: (partition: string, kind: FrameKind) => void): void {
  const kind: EventKind | null = wasIn ? (isIn ? 'update' : 'delete') : isIn ? 'create' : null;
  if (kind === null || (group.events !== null && !group.events.has(kind))) return;
  emit(partition, kind);
}
