import { exceedsDepth } from '../../protocol/json-depth.js';

/** Phoenix serializer versions: `1.0.0` (JSON objects, the default) and `2.0.0` (JSON arrays, binary pushes in). */
export type Vsn = '1.0.0' | '2.0.0';

/** One Phoenix message, either way (docs/phoenix.md, "The wire"). */
export interface PhoenixMessage {
  readonly joinRef: string | null;
  readonly ref: string | null;
  readonly topic: string;
  readonly event: string;
  readonly payload: unknown;
}

/** A frame that is not a message: why, for the `phoenix` topic's error reply. */
export type Decoded = { readonly ok: true; readonly message: PhoenixMessage } | { readonly ok: false; readonly reason: string };

/** Longest ref, join_ref, topic or event accepted (binary frames cannot carry more than 255 bytes anyway). */
const MAX_FIELD = 255;

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads one client frame: V1 a JSON object `{topic, event, payload, ref,
 * join_ref?}`; V2 a JSON array `[join_ref, ref, topic, event, payload]` or a
 * binary push (kind 0: four one-byte lengths, the four strings, the raw
 * payload). A binary payload arrives as `Uint8Array`.
 */
export function decodeFrame(vsn: Vsn, message: ArrayBuffer, isBinary: boolean, maxDepth: number): Decoded {
  if (isBinary) return vsn === '2.0.0' ? decodeBinary(new Uint8Array(message)) : { ok: false, reason: 'binary frames need vsn=2.0.0' };
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(message));
  } catch {
    return { ok: false, reason: 'the frame is not JSON' };
  }
  if (exceedsDepth(json, maxDepth)) return { ok: false, reason: `the frame is nested deeper than ${maxDepth} levels (MAX_FRAME_DEPTH)` };
  if (vsn === '2.0.0') {
    if (!Array.isArray(json) || json.length !== 5) return { ok: false, reason: 'a vsn=2.0.0 frame is [join_ref, ref, topic, event, payload]' };
    const [joinRef, ref, topic, event, payload] = json as unknown[];
    return checked(joinRef, ref, topic, event, payload);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { ok: false, reason: 'a vsn=1.0.0 frame is {"topic", "event", "payload", "ref"}' };
  const { join_ref: joinRef = null, ref = null, topic, event, payload } = json as Record<string, unknown>;
  return checked(joinRef, ref, topic, event, payload);
}

function checked(joinRef: unknown, ref: unknown, topic: unknown, event: unknown, payload: unknown): Decoded {
  const isRef = (value: unknown) => value === null || (typeof value === 'string' && value.length <= MAX_FIELD) || (typeof value === 'number' && Number.isSafeInteger(value));
  if (!isRef(joinRef) || !isRef(ref)) return { ok: false, reason: 'join_ref and ref are strings or null' };
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_FIELD) return { ok: false, reason: 'topic is a string of 1 to 255 characters' };
  if (typeof event !== 'string' || event.length === 0 || event.length > MAX_FIELD) return { ok: false, reason: 'event is a string of 1 to 255 characters' };
  const asRef = (value: unknown) => (value === null ? null : String(value));
  return { ok: true, message: { joinRef: asRef(joinRef), ref: asRef(ref), topic, event, payload: payload ?? {} } };
}

/** V2 binary, kind 0 (a push). Kinds 1 and 2 are server frames; 3 (broadcast) is Supabase's. */
function decodeBinary(bytes: Uint8Array): Decoded {
  if (bytes.length < 5) return { ok: false, reason: 'a binary frame is shorter than its header' };
  if (bytes[0] !== 0) return { ok: false, reason: `binary frames of kind ${bytes[0]} are not accepted here (kind 0: push)` };
  const read = binaryFields(bytes, bytes.subarray(1, 5), 5);
  if ('reason' in read) return { ok: false, reason: read.reason };
  const [joinRef, ref, topic, event] = read.fields as [string, string, string, string];
  return checked(joinRef === '' ? null : joinRef, ref === '' ? null : ref, topic, event, bytes.slice(read.end));
}

/** The UTF-8 strings of a binary frame, of the `lengths` its header gives, from `offset` on; `end` is where they stop. */
export function binaryFields(bytes: Uint8Array, lengths: Uint8Array, offset: number): { fields: string[]; end: number } | { reason: string } {
  const fields: string[] = [];
  for (const length of lengths) {
    if (offset + length > bytes.length) return { reason: 'a binary frame is shorter than its header says' };
    try {
      fields.push(decoder.decode(bytes.subarray(offset, offset + length)));
    } catch {
      return { reason: 'a binary frame field is not UTF-8' };
    }
    offset += length;
  }
  return { fields, end: offset };
}

/** A server frame as text in `vsn` (V1 sends no `join_ref`). */
export function encodeMessage(vsn: Vsn, message: PhoenixMessage): string {
  if (vsn === '2.0.0') return JSON.stringify([message.joinRef, message.ref, message.topic, message.event, message.payload]);
  return JSON.stringify({ topic: message.topic, event: message.event, payload: message.payload, ref: message.ref });
}

/** The text before and after a payload of `prefix` + value + `suffix` in a server message of `vsn`. */
export function envelope(vsn: Vsn, topic: string, event: string, prefix: string, suffix: string): [string, string] {
  const marker = '\u0000payload\u0000';
  const text = encodeMessage(vsn, { joinRef: null, ref: null, topic, event, payload: marker });
  const at = text.indexOf(JSON.stringify(marker));
  return [text.slice(0, at) + prefix, suffix + text.slice(at + JSON.stringify(marker).length)];
}
