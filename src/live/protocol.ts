/**
 * The /live wire protocol (DESIGN.md §3): every client frame as a union on
 * `method`, every server frame as a union on `type`, and the one function
 * that turns a text frame into a request or a coded error. Nothing else in
 * the server parses client frames.
 */
import { z } from 'zod';
import { RowcastError, type ErrorCode } from '../errors.js';
import { SINCE_PATTERN } from '../events/seq.js';
import type { EventKind } from '../events/event.js';
import type { ReadPolicy } from '../policies/read-policy.js';
import { storable } from '../db/storable.js';
import { exceedsDepth } from './json-depth.js';

/** A request id, echoed in its response. */
export type RequestId = string | number;

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
const topicKind = z.enum(['anyone', 'authenticated', 'admin']);
const none = z.object({}).passthrough();

/** The attributes each method takes. */
const attributeSchemas = {
  subscribe: z.object({
    topicName: topicNames,
    filter: z.record(z.string().min(1).max(63), condition).optional(),
    events: z.array(z.enum(['create', 'update', 'delete'])).min(1).optional(),
    since: z
      .string()
      .regex(SINCE_PATTERN, 'must be the seq of the last frame seen, such as 00000000016B3A28-00000000, with /part if the frame had a part')
      .optional(),
  }),
  unsubscribe: z.object({ topicName: topicNames }),
  'new-message': z.object({ topicName: z.string().min(1).max(1024), message: z.unknown().refine((m) => m !== undefined, 'is required') }),
  'create-topic': z.object({
    name: z.string().max(1024),
    description: z.string().max(1024).optional(),
    history: z.number().int().min(0).optional(),
    maxSubscribers: z.number().int().positive().optional(),
    readers: topicKind.optional(),
    writers: topicKind.optional(),
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
  ping: none,
} as const;

/** Every method of the protocol. */
export type Method = keyof typeof attributeSchemas;

/** A client frame that passed validation: a union on `method`. */
export type ClientRequest = {
  [M in Method]: { readonly method: M; readonly id: RequestId | undefined; readonly attributes: z.infer<(typeof attributeSchemas)[M]> };
}[Method];

/** The request of method `M`. */
export type RequestOf<M extends Method> = Extract<ClientRequest, { method: M }>;

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

/**
 * The id and method of a JSON value, when it is an object with a valid `id`
 * (a string of at most 128 characters or a finite number): whatever else is
 * wrong with it, it is answered as a request, with that id.
 */
function headOf(json: unknown): RequestHead | null {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return null;
  const { id, method } = json as Record<string, unknown>;
  if (!requestId.safeParse(id).success) return null;
  return typeof method === 'string' && method.length <= 64 ? { id: id as RequestId, method } : { id: id as RequestId };
}

/** The outcome of {@link parseClientFrame}. */
export type ParsedFrame =
  | { readonly ok: true; readonly request: ClientRequest }
  | {
      readonly ok: false;
      /** Present when the frame was a request: answer with a `response`; else with an `error` frame. */
      readonly request: RequestHead | null;
      readonly error: RowcastError;
    };

/**
 * Parses one text frame. Not JSON, not an object or no `method` →
 * `INVALID_MESSAGE`; nested deeper than `maxDepth` → `LIMIT_EXCEEDED`; a
 * method outside the protocol → `UNKNOWN_METHOD`; attributes that do not
 * fit the method → `INVALID_ATTRIBUTES` naming the attribute.
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
  const unstorable = unstorableText(attributes);
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

/**
 * The path of the first string (or key) in `value` that Postgres cannot
 * store — one with U+0000 or a lone surrogate — or `null`. Iterative, so
 * deep nesting cannot exhaust the stack.
 */
function unstorableText(value: unknown): string | null {
  const stack: Array<[unknown, string]> = [[value, 'attributes']];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === 'string') {
      if (!storable(item)) return path;
    } else if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) stack.push([item[i], `${path}[${i}]`]);
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        if (!storable(key)) return `${path} (a key)`;
        stack.push([child, `${path}.${key}`]);
      }
    }
  }
  return null;
}


function invalid(request: RequestHead | null, code: ErrorCode, message: string): ParsedFrame {
  return { ok: false, request, error: new RowcastError(code, message) };
}

/** What a client is told about itself on open. */
export interface SessionData {
  readonly connectionId: string;
  readonly user: { readonly sub: string | null; readonly role: string | null };
  readonly serverTime: string;
  /** The bounds this connection works within (README, Configuration): a request past one is refused with `LIMIT_EXCEEDED`. */
  readonly limits: {
    readonly maxMessageBytes: number;
    readonly messagesPerSecond: number;
    readonly maxSubscriptions: number;
    readonly maxSubscriptionsPerUser: number;
    readonly maxFrameDepth: number;
    readonly maxPendingRequests: number;
    readonly maxFilterValues: number;
    readonly maxFilterValueLength: number;
    readonly maxFilterKeyBytes: number;
    readonly maxFilterGroupsPerConnection: number;
  };
}

/** Every frame the server sends, as a union on `type`. */
export type ServerFrame =
  | { readonly type: 'session'; readonly status: 'open'; readonly data: SessionData }
  | { readonly type: 'response'; readonly id?: RequestId; readonly method: string; readonly ok: true; readonly data: unknown }
  | {
      readonly type: 'response';
      readonly id?: RequestId;
      readonly method?: string;
      readonly ok: false;
      readonly error: ErrorBody;
    }
  | {
      readonly type: 'event';
      readonly topic: string;
      readonly event: EventKind | 'new-message';
      readonly seq: string;
      readonly ts: string;
      readonly data: { readonly type: string; readonly id: string; readonly attributes: unknown; readonly old?: unknown };
    }
  | { readonly type: 'pong'; readonly id?: RequestId }
  | { readonly type: 'subscription'; readonly topic: string; readonly status: 'revoked'; readonly reason: string }
  | { readonly type: 'error'; readonly error: ErrorBody };

/** A column of a table topic. */
export interface TopicColumn {
  readonly name: string;
  /** The SQL type as Postgres formats it (`integer`, `numeric(10,2)`, …). */
  readonly type: string;
}

/** Who may read or write a custom topic. */
export type TopicAccess = 'anyone' | 'authenticated' | 'admin';

/** A table topic as `list-topic` shows it. */
export interface TableTopicSummary {
  readonly name: string;
  readonly kind: 'table';
  readonly schema: string;
  readonly table: string;
  readonly read: ReadPolicy['read'];
}

/** A table topic as `get-topic` describes it. */
export interface TableTopicDetail extends TableTopicSummary {
  readonly primaryKey: readonly string[];
  readonly columns: readonly TopicColumn[];
}

/** A custom topic as `list-topic` shows it. */
export interface CustomTopicSummary {
  readonly name: string;
  readonly kind: 'custom';
  readonly description: string;
  readonly subscribers: number;
}

/** A custom topic as `get-topic` and `create-topic` describe it. */
export interface CustomTopicDetail extends CustomTopicSummary {
  /** Messages kept; 0: ephemeral (never stored). */
  readonly history: number;
  readonly maxSubscribers: number | null;
  readonly readers: TopicAccess;
  readonly writers: TopicAccess;
  readonly createdBy: string | null;
  readonly createdAt: string;
}

/** A stored message of a custom topic, as `history` returns it; `seq` is null until the stream has delivered it. */
export interface StoredMessage {
  readonly id: string;
  readonly seq: string | null;
  readonly sender: string | null;
  readonly message: unknown;
  readonly createdAt: string;
}

/**
 * The `data` of each method's successful response. The server's handlers
 * are typed against it and the client SDK returns it, so the two cannot
 * drift apart.
 */
export interface ResponseData {
  readonly subscribe: {
    readonly topics: string[];
    /** Where the subscription starts: `since` this resumes a client that saw no event. */
    readonly seq: string;
    /** Present when the request had `since`. */
    readonly resumed?: boolean;
  };
  readonly unsubscribe: { readonly topics: string[] };
  readonly 'list-topic': { readonly topics: Array<TableTopicSummary | CustomTopicSummary> };
  readonly 'get-topic': TableTopicDetail | CustomTopicDetail;
  readonly 'create-topic': CustomTopicDetail;
  readonly 'destroy-topic': { readonly name: string };
  readonly 'new-message': { readonly id: string; readonly seq: string | null };
  readonly history: { readonly topic: string; readonly messages: StoredMessage[] };
  readonly 'refresh-token': { readonly sub: string | null; readonly role: string | null; readonly expiresAt: string | null; readonly revoked: string[] };
  readonly ping: null;
}

/** The `error` of a response or error frame; `retryAfter` (ms) with `RATE_LIMIT_EXCEEDED`. */
export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryAfter?: number;
}

/** The successful `response` frame of `request`, echoing its `id`. */
export function responseFrame(request: { readonly id: RequestId | undefined; readonly method: string }, data: unknown): ServerFrame {
  return request.id === undefined
    ? { type: 'response', method: request.method, ok: true, data }
    : { type: 'response', id: request.id, method: request.method, ok: true, data };
}

/** Serializes a server frame. Event frames are not built here: they are serialized once, upstream. */
export function encodeFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}
