import type { Event, FrameEncoder } from '../events/event.js';
import type { FrameSource } from '../log/replay-window.js';
import { adminPartition } from '../policies/audience-partitions.js';
import type { FrameKind } from '../protocol/index.js';
import type { GroupSpec } from './session-types.js';
import { framesForGroup } from './event-router.js';

/**
 * How a subscription of `grant` sees an event: the frames of its group that
 * reach its partitions. An event that cannot be serialized is skipped (and
 * marked dropped), as it was when it was routed live.
 */
export function frameSource({ topic, partitions, group }: { readonly topic: { readonly name: string }; readonly partitions: readonly string[]; readonly group: GroupSpec }, encoder: FrameEncoder): FrameSource {
  const granted = new Set(partitions);
  const admin = adminPartition(topic.name);
  return (event: Event, emit) => {
    if (event.dropped !== null) return;
    const frames: Array<[string, FrameKind]> = [];
    try {
      framesForGroup(event, group, admin, (partition, kind) => {
        if (granted.has(partition)) frames.push([event.seenFrom(partition, admin).frameFor(encoder, kind), kind]);
      });
    } catch (error) {
      event.markDropped(error instanceof Error ? error.message : String(error));
      return;
    }
    for (const [frame, kind] of frames) emit(frame, kind);
  };
}
