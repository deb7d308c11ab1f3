import type { TemplatedApp } from 'uWebSockets.js';
import type { Event, EventKind, FrameKind } from '../events/event.js';
import type { EventLog } from '../log/event-log.js';
import { adminPartition } from '../policies/audience-partitions.js';
import { PLAIN_GROUP, uwsTopic, type SubscriptionGroup, type SubscriptionIndex } from './subscription-index.js';
const NONE: readonly string[] = [];

/**
 * Publishes every event of the log to the uWS topics of its audience: for
 * each subscription group of the event's topic (the plain one and each
 * distinct filter), each partition the row was or is in, and the admins'
 * `t|all`. Per partition the change is a `create` (the row enters what that
 * audience sees), an `update` (it stays), or a `delete` (it leaves), so a
 * client cache built from events is always exactly what it may read.
 *
 * The cost of an event is (groups of its topic) × (partitions of its row);
 * each group's filter runs once; delivery to the sockets is uWS's native
 * fan-out. Nothing here loops over subscribers.
 *
 * @returns live counts of events routed, in all and by topic (for /metrics).
 */
export function routeEvents(
  log: EventLog,
  app: Pick<TemplatedApp, 'publish' | 'numSubscribers'>,
  index: SubscriptionIndex,
  onMessage?: (event: Event) => void,
): { readonly count: number; readonly deliveries: number; readonly byTopic: ReadonlyMap<string, number> } {
  const byTopic = new Map<string, number>();
  const counter = { count: 0, deliveries: 0, byTopic };
  // A frame goes out only to a uWS topic that has subscribers (it is not even serialized
  // otherwise); their number is what `deliveries` counts.
  const send = (topic: string, event: Event, kind: FrameKind) => {
    const subscribers = app.numSubscribers(topic);
    if (subscribers === 0) return;
    counter.deliveries += subscribers;
    app.publish(topic, event.frame(kind), false);
  };
  // One publishing callback for all events (no closure per event or frame): it reads the event and group key being routed.
  let current: Event | null = null;
  let key = '';
  const publish = (partition: string, kind: FrameKind) => send(uwsTopic(partition, key), current!, kind);
  log.subscribe((event) => {
    counter.count++;
    byTopic.set(event.topic, (byTopic.get(event.topic) ?? 0) + 1);
    if (event.kind === 'new-message') {
      for (const partition of event.partitions) send(partition, event, 'new-message');
      onMessage?.(event);
      return;
    }
    const admin = adminPartition(event.topic);
    current = event;
    key = '';
    framesForGroup(event, PLAIN_GROUP, admin, publish);
    const groups = index.groupsOf(event.topic);
    if (groups) {
      for (const { group } of groups) {
        key = group.key;
        framesForGroup(event, group, admin, publish);
      }
    }
  });
  return counter;
}

/**
 * What `event` means to subscription `group`: calls `emit` with each
 * partition it reaches and the kind of frame it is there. Publishing (to the
 * uWS topics of the group) and replaying (to one connection) share this.
 */
export function framesForGroup(
  event: Event,
  group: SubscriptionGroup,
  admin: string,
  emit: (partition: string, kind: FrameKind) => void,
): void {
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

function emitKind(
  group: SubscriptionGroup,
  partition: string,
  wasIn: boolean,
  isIn: boolean,
  emit: (partition: string, kind: FrameKind) => void,
): void {
  const kind: EventKind | null = wasIn ? (isIn ? 'update' : 'delete') : isIn ? 'create' : null;
  if (kind === null || (group.events !== null && !group.events.has(kind))) return;
  emit(partition, kind);
}
