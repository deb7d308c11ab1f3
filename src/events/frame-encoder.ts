import type { FrameKind } from '../protocol/index.js';
import type { Event } from './event.js';

/**
 * How a door turns events into its frames. The router publishes, for each
 * subscription group, `event.frameFor(group.encoder, kind)`: each encoder's
 * frame of an event is made once and shared by every recipient of that
 * door, whatever the number of groups. `/live` has one encoder; a door whose
 * frames differ per subscription (a channel's binding ids) has one per
 * rendering.
 */
export interface FrameEncoder {
  /** Where an event keeps this encoder's frames: unique per encoder, from {@link encoderSlot}. */
  readonly slot: number;
  /** The frame of `event` seen as `kind`. Throws when the row cannot be serialized (the router then drops the event). */
  encode(event: Event, kind: FrameKind): string;
  /** What a table topic's admins get instead of an event that could not be serialized. */
  encodeDropped(event: Event): string;
}

/** The slot of the default encoder (`/live`'s): events keep its frames in fields, not in a map. */
export const DEFAULT_ENCODER_SLOT = 0;

let nextSlot = DEFAULT_ENCODER_SLOT + 1;

/** A slot for a new {@link FrameEncoder} (other than the default one). */
export function encoderSlot(): number {
  return nextSlot++;
}
