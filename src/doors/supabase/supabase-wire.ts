import { exceedsDepth } from '../../protocol/json-depth.js';
import { binaryFields, decodeFrame, type Decoded, type Vsn } from '../phoenix/phoenix-wire.js';

/*
 * Supabase Realtime's framing is Phoenix's (phoenix-wire.ts) with one more
 * client frame: `@supabase/realtime-js` sends a broadcast in vsn 2.0.0 as a
 * binary frame of kind 3 (docs/supabase.md, "The wire").
 */

/** Kind 3: a user broadcast push. */
const BROADCAST_PUSH = 3;
/** Kind, five one-byte lengths (join_ref, ref, topic, event, metadata) and the payload's encoding. */
const BROADCAST_HEADER = 7;
/** The payload's encodings: raw bytes, or JSON. */
const JSON_ENCODING = 1;

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads one client frame of the Supabase door: a Phoenix frame, or (vsn
 * 2.0.0) a binary broadcast push, read as the JSON push
 * `{event: "broadcast", payload: {type: "broadcast", event, payload}}`.
 */
export function decodeSupabaseFrame(vsn: Vsn, message: ArrayBuffer, isBinary: boolean, maxDepth: number): Decoded {
  if (!isBinary || vsn !== '2.0.0') return decodeFrame(vsn, message, isBinary, maxDepth);
  const bytes = new Uint8Array(message);
  if (bytes[0] !== BROADCAST_PUSH) return decodeFrame(vsn, message, isBinary, maxDepth);
  if (bytes.length < BROADCAST_HEADER) return { ok: false, reason: 'a binary frame is shorter than its header' };
  if (bytes[6] !== JSON_ENCODING) return { ok: false, reason: 'a binary broadcast must carry a JSON payload (encoding 1)' };
  const read = binaryFields(bytes, bytes.subarray(1, 6), BROADCAST_HEADER);
  if ('reason' in read) return { ok: false, reason: read.reason };
  const [joinRef, ref, topic, event] = read.fields as [string, string, string, string, string];
  let payload: unknown;
  try {
    payload = JSON.parse(decoder.decode(bytes.subarray(read.end)));
  } catch {
    return { ok: false, reason: 'the broadcast payload is not JSON' };
  }
  // Checked before it is written out again (JSON.stringify of a deeper value would run out of stack).
  if (exceedsDepth(payload, maxDepth - 2)) return { ok: false, reason: `the frame is nested deeper than ${maxDepth} levels (MAX_FRAME_DEPTH)` };
  const json = JSON.stringify([joinRef === '' ? null : joinRef, ref === '' ? null : ref, topic, 'broadcast', { type: 'broadcast', event, payload }]);
  return decodeFrame(vsn, new TextEncoder().encode(json).buffer as ArrayBuffer, false, maxDepth);
}
