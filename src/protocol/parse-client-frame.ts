/**
 * The one parser of `/live` client frames: a text frame becomes a
 * {@link ClientRequest} or a coded error. The schemas (zod) are checked at
 * compile time against the protocol's attribute types, so the two cannot
 * drift apart. Server side only: the client SDK never imports this file.
 */
import { z } from 'zod';
import type { Attributes, ClientRequest, Method, RequestId } from './client-frames.js';
import type { ErrorCode } from './error-codes.js';
import { exceedsDepth } from './json-depth.js';
import { unstorableText } from './storable-text.js';
import { TOPIC_ACCESS } from './topics.js';

/** `since`: a seq, optionally followed by `/` and the part of the frame. */
export const SINCE_PATTERN = /^[0-9A-F]{16}-[0-9A-F]{8}(\/[12])?$/;

/** One topic name or several, comma-separated. */
const topicNames = z
  .string()
  .max(4096)
  .refine((names) => names.split(',').some((n) => n.trim().length > 0), 'must name at least one topic');
// Hard caps only: the configured bounds (MAX_FILTER_VALUES, MAX_FILTER_VALUE_LENGTH) are checked when the filter is compiled.
const scalar = z.union([z.string().max(65_536), z.number(), z.boolean(), z.null()]);
const condition = z
  .object({
    eq: scalar,
    neq: scalar,
    lt: scalar,
    lte: scalar,
    gt: scalar,
    gte: scalar,
    in: z.array(scalar).max(10_000),
  })
  .partial()
  .strict()
  .refine((c) => Object.keys(c).length > 0, 'needs at least one operator');
const access = z.enum(TOPIC_ACCESS);
const none = z.object({}).passthrough();

/** The attributes each method takes. */
/** A subscription's name on its connection (`as`): short, and made of characters that need no escaping anywhere. */
const subscriptionName = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1–64 characters of A-Z a-z 0-9 _ . : -');

const attributeSchemas = {
  subscribe: z.object({
    topicName: topicNames,
    filter: z.record(z.string().min(1).max(63), condition).optional(),
    events: z.array(z.enum(['create', 'update', 'delete'])).min(1).optional(),
    since: z
      .string()
      .regex(SINCE_PATTERN, 'must be the seq of the last frame seen, such as 00000000016B3A28-00000000, with /part if the frame had a part')
      .optional(),
    snapshot: z.boolean().optional(),
    aggregate: z.object({ count: z.literal(true), groupBy: z.string().min(1).max(63).optional() }).optional(),
    as: subscriptionName.optional(),
  }),
  unsubscribe: z.object({ topicName: topicNames, as: subscriptionName.optional() }),
  'new-message': z.object({ topicName: z.string().min(1).max(1024), message: z.unknown().refine((m) => m !== undefined, 'is required') }),
  'direct-message': z.object({ to: z.string().min(1).max(1024), message: z.unknown().refine((m) => m !== undefined, 'is required') }),
  'create-topic': z.object({
    name: z.string().max(1024),
    description: z.string().max(1024).optional(),
    history: z.number().int().min(0).optional(),
    maxSubscribers: z.number().int().positive().optional(),
    readers: access.optional(),
    writers: access.optional(),
    presence: z.boolean().optional(),
  }),
  'destroy-topic': z.object({ name: z.string().min(1).max(1024) }),
  'list-topic': none,
  'get-topic': z.object({ topicName: z.string().min(1).max(1024) }),
  history: z.object({
    topicName: z.string().min(1).max(1024),
    before: z.union([z.string().max(64), z.number()]).optional(),
    limit: z.number().int().min(1).max(100).optional(),
  }),
  'refresh-token': z.object({ token: z.string().min(1).max(16_384) }),
  // The meta's size is bounded by PRESENCE_MAX_META_BYTES when it is tracked.
  track: z.object({ topicName: z.string().min(1).max(1024), meta: z.record(z.string(), z.unknown()).optional() }),
  untrack: z.object({ topicName: z.string().min(1).max(1024) }),
  presence: z.object({ topicName: z.string().min(1).max(1024) }),
  ping: none,
} as const satisfies { readonly [M in Method]: z.ZodType };

// Each schema's output must be its method's protocol type, and the other way round (the protocol's types are read-only).
type DeepReadonly<T> = T extends (infer E)[] ? ReadonlyArray<DeepReadonly<E>> : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
type Agrees<M extends Method> = z.infer<(typeof attributeSchemas)[M]> extends Attributes[M]
  ? Attributes[M] extends DeepReadonly<z.input<(typeof attributeSchemas)[M]>>
    ? true
    : false
  : false;
const schemasAgree: { readonly [M in Method]: Agrees<M> } = {
  subscribe: true,
  unsubscribe: true,
  'new-message': true,
  'direct-message': true,
  'create-topic': true,
  'destroy-topic': true,
  'list-topic': true,
  'get-topic': true,
  history: true,
  'refresh-token': true,
  track: true,
  untrack: true,
  presence: true,
  ping: true,
};
void schemasAgree;

const requestId = z.union([z.string().max(128), z.number().finite()]);
const envelope = z.object({
  id: requestId.optional(),
  method: z.string().max(64),
  attributes: z.unknown().optional(),
});

/** What a failed frame is answered as: a `response` with its id (and method, if it has one), or an `error` frame. */
export interface RequestHead {
  readonly id: RequestId | undefined;
  readonly method?: string;
}

/** A frame's failure: the code and message to answer with. */
export interface FrameError {
  readonly code: ErrorCode;
  readonly message: string;
}

/** The outcome of {@link parseClientFrame}. */
export type ParsedFrame =
  | { readonly ok: true; readonly request: ClientRequest }
  | {
      readonly ok: false;
      /** Present when the frame was a request: answer with a `response`; else with an `error` frame. */
      readonly request: RequestHead | null;
      readonly error: FrameError;
    };

/**
 * The id and method of a JSON value, when it is an object with a valid `id`:
 * whatever else is wrong with it, it is answered as a request, with that id.
 */
function headOf(json: unknown): RequestHead | null {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return null;
  const { id, method } = json as Record<string, unknown>;
  if (!requestId.safeParse(id).success) return null;
  return typeof method === 'string' && method.length <= 64 ? { id: id as RequestId, method } : { id: id as RequestId };
}

/**
 * Parses one text frame. Not JSON, not an object or no `method` →
 * `INVALID_MESSAGE`; nested deeper than `maxDepth` → `LIMIT_EXCEEDED`; a
 * method outside the protocol → `UNKNOWN_METHOD`; attributes that do not
 * fit the method → `INVALID_ATTRIBUTES` naming the attribute.
 *
 * @example
 * parseClientFrame('{"id":1,"method":"ping"}', 32) // { ok: true, request: { method: 'ping', id: 1, attributes: {} } }
 */
export function parseClientFrame(text: string, maxDepth: number): ParsedFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return invalid(null, 'INVALID_MESSAGE', 'the frame is not JSON');
  }
  if (exceedsDepth(json, maxDepth)) {
    return invalid(headOf(json), 'LIMIT_EXCEEDED', `the frame is nested deeper than ${maxDepth} levels (MAX_FRAME_DEPTH)`);
  }
  const head = envelope.safeParse(json);
  if (!head.success) {
    const issue = head.error.issues[0]!;
    const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    return invalid(headOf(json), 'INVALID_MESSAGE', `not a request (${where}${issue.message}); expected {"method": string, "attributes": object}`);
  }
  return parseRequest(head.data.method, head.data.id, head.data.attributes);
}

/**
 * Checks `attributes` against `method` (what {@link parseClientFrame} does
 * once the envelope is read; the admin API calls it with a parsed body).
 */
export function parseRequest(method: string, id: RequestId | undefined, attributes: unknown): ParsedFrame {
  const request = { id, method };
  if (!Object.hasOwn(attributeSchemas, method)) {
    return invalid(request, 'UNKNOWN_METHOD', `unknown method ${JSON.stringify(method.slice(0, 64))}`);
  }
  const unstorable = unstorableText(attributes, 'attributes');
  if (unstorable !== null) {
    return invalid(request, 'INVALID_ATTRIBUTES', `${unstorable}: text must be well-formed Unicode without U+0000 (Postgres cannot store it)`);
  }
  const schema = attributeSchemas[method as Method];
  const parsed = schema.safeParse(attributes ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = issue.path.length > 0 ? issue.path.join('.') : 'attributes';
    return invalid(request, 'INVALID_ATTRIBUTES', `${name}: ${issue.message}`);
  }
  return { ok: true, request: { method, id, attributes: parsed.data } as ClientRequest };
}

/**
 * The `id` and `method` of a frame if it is shaped like a request, without
 * checking its attributes: for answering a request that will not be run.
 */
export function requestIdOf(text: string): RequestHead | null {
  try {
    return headOf(JSON.parse(text));
  } catch {
    return null;
  }
}

function invalid(request: RequestHead | null, code: ErrorCode, message: string): ParsedFrame {
  return { ok: false, request, error: { code, message } };
}
