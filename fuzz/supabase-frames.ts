/**
 * Arbitrary frames for the Supabase Realtime door (`/realtime/v1/websocket`,
 * vsn 1.0.0 and 2.0.0): joins of `realtime:<name>` channels with hostile
 * configs (bindings arrays with garbage entries, filters that are garbage,
 * schema `*`, events such as `constructor`, `access_token`s that are not
 * JWTs or are tokens of other users, expired, unsigned…), pushes on joined
 * channels (`access_token`, `broadcast`, `presence`, unknown events) with
 * current and stale join_refs, frames of the other vsn's shape, arrays and
 * objects of the wrong shape, garbage text, text that is not UTF-8, deep and
 * huge payloads, binary broadcast pushes (kind 3) whose lengths lie, whose
 * fields are not UTF-8, whose payload is not JSON or whose encoding byte is
 * wrong, binary pushes of kind 0 and of unknown kinds, and bursts (joins to
 * many topics at once, pipelined). Also the Phoenix door's frames
 * (fuzz/phoenix-frames.ts), sent here.
 *
 * {@link SupabaseFuzzRunner} sends each frame and then a barrier, waits for
 * the barrier's reply, and judges what came back in between against what
 * the door must answer (see {@link readSupabaseFrame}, written from the wire
 * format, not from the door's code): a frame that cannot be read gets one
 * `phx_reply` on topic `phoenix` whose reason starts `INVALID_MESSAGE:`; a
 * frame that can gets exactly one `phx_reply` with its topic and ref — ok,
 * or an error `<CODE>: <message>` (never INTERNAL) or `unmatched topic` —
 * except where Phoenix says nothing (a push with a stale join_ref, an
 * `access_token` push, a `broadcast` without `ack`); a `system` error
 * carries a code (docs/supabase.md); a join's ok reply lists every binding
 * with an id; a frame over MAX_MESSAGE_BYTES closes the socket (1009; past
 * twice the limit, or text that is not UTF-8, uWS cuts it: 1006). No other
 * close, no `phx_error`, no hang. The runner follows which channels each
 * connection holds (from the answers) to know which pushes may go
 * unanswered, and aims pushes at them ({@link JOINED}, {@link JOINED_TOPIC}).
 * Each problem is returned as `connection <i> (vsn <v>): <kind>: <details>`.
 *
 * Used by test/fuzz-supabase.test.ts.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { ERROR_CODES } from '../src/protocol/index.js';
import { payloads as phoenixPayloads, phoenixFuzzFrame, refs as phoenixRefs } from './phoenix-frames.js';

export type Vsn = '1.0.0' | '2.0.0';

/** A join_ref that the runner replaces with the channel's current one (or `'99'` when the topic is not joined). */
export const JOINED = '\u0000joined';
/** A topic that the runner replaces with one of the connection's joined channels (`realtime:fz` when none): `${JOINED_TOPIC}<n>`. */
export const JOINED_TOPIC = '\u0000joined-topic:';

export type SupabaseFuzzFrame =
  /** `[join_ref, ref, topic, event, payload]`, sent in the connection's vsn (or the other one's shape when `swapped`). */
  | { readonly connection: number; readonly kind: 'message'; readonly fields: readonly unknown[]; readonly swapped: boolean }
  /** Any JSON value, sent as it is. */
  | { readonly connection: number; readonly kind: 'json'; readonly value: unknown }
  | { readonly connection: number; readonly kind: 'text'; readonly text: string }
  /** A text frame of these bytes (not always UTF-8). */
  | { readonly connection: number; readonly kind: 'raw-text'; readonly bytes: Uint8Array }
  | { readonly connection: number; readonly kind: 'binary'; readonly bytes: Uint8Array }
  /** A binary broadcast push (kind 3) whose join_ref may be {@link JOINED}: built when sent. */
  | { readonly connection: number; readonly kind: 'broadcast-push'; readonly push: BroadcastPush }
  /** A frame of about `ratio` × MAX_MESSAGE_BYTES: a join (text) or a binary broadcast push. */
  | { readonly connection: number; readonly kind: 'huge'; readonly ratio: number; readonly binary: boolean }
  /** Messages sent back to back, each with a ref of the runner's and join_ref null: each must get exactly one reply. */
  | { readonly connection: number; readonly kind: 'burst'; readonly messages: readonly BurstMessage[] };

export interface BurstMessage {
  readonly topic: string;
  readonly event: string;
  readonly payload: unknown;
}

/** The parts of a kind-3 frame, and how it lies. */
export interface BroadcastPush {
  readonly joinRef: string;
  readonly ref: string;
  readonly topic: string;
  readonly event: string;
  readonly meta: string;
  readonly encoding: number;
  readonly payload: Uint8Array;
  /** This field's length byte says `length` instead (0 join_ref … 4 metadata). */
  readonly lie: { readonly field: number; readonly length: number } | null;
  /** This field's bytes are replaced by bytes that are not UTF-8. */
  readonly badField: number | null;
  /** The frame is cut after this many bytes. */
  readonly cut: number | null;
}

const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/** `[[[…1…]]]` / `{"a": …}` nested `depth` levels. */
function nest(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

/** `[` × n then `]` × n: JSON nested n levels, without building it. */
const deepText = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

/** The text of {@link nest}(depth), without building it (JSON.stringify would run out of stack). */
function nestText(depth: number): string {
  let open = '';
  let close = '';
  for (let i = depth - 1; i >= 0; i--) {
    open += i % 2 === 0 ? '[' : '{"a":';
    close = (i % 2 === 0 ? ']' : '}') + close;
  }
  return `${open}1${close}`;
}

const edgeStrings = fc.constantFrom('', '\u0000', '\uFEFF', '\u202E', '\uD800', '𝕏', 'e\u0301', '\r\n', '"', '\\', '__proto__', 'constructor', 'x'.repeat(256));
const text = fc.oneof(fc.string({ maxLength: 24 }), fc.string({ unit: 'binary', maxLength: 24 }), edgeStrings);
const garbage: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.anything({ maxDepth: 2 }) },
  { weight: 2, arbitrary: text },
  { weight: 1, arbitrary: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 28 }) }, { weight: 1, arbitrary: fc.integer({ min: 29, max: 80 }) }).map((depth) => nest(depth)) },
);

/** Channel names: few, so that joins and pushes meet (`fz-chat` and `fz-admin` are custom topics of the test; `~fz` names an open channel). */
const names = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('fz', 'fz', 'fz-chat', 'fz-admin', '~fz', 'notes', 'a:b', 'ünï') },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', ' ', 'realtime:x', 'x'.repeat(246), 'x'.repeat(247), '\uD800') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
const channelTopics = names.map((name) => `realtime:${name}`);
const joinedTopics = fc.nat({ max: 99 }).map((n) => `${JOINED_TOPIC}${n}`);
const topics: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 12, arbitrary: channelTopics },
  { weight: 1, arbitrary: fc.constantFrom('realtime:', 'phoenix', 'Realtime:fz', 'realtime', '', 'table:notes', 'topic:fz-chat') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
);
const events: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom('phx_join', 'phx_leave', 'access_token', 'broadcast', 'presence', 'heartbeat', 'postgres_changes', 'system', 'phx_reply', 'phx_close', 'phx_error', 'track'),
  },
  { weight: 1, arbitrary: fc.constantFrom('', 'e'.repeat(256), 'PHX_JOIN', 'constructor', '__proto__') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
);

/** Tokens: the test's (valid, expired, other users', unsigned…) and garbage. */
function accessTokens(tokens: readonly string[]): fc.Arbitrary<unknown> {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return fc.oneof(
    { weight: 3, arbitrary: tokens.length > 0 ? fc.constantFrom(...tokens) : fc.constant('') },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '',
        'garbage',
        'a.b.c',
        'Bearer x',
        `${b64({ alg: 'none' })}.${b64({ sub: 'x' })}.`,
        `${b64({ alg: 'HS256' })}.${b64([1])}.x`,
        `${b64('s')}.${b64({})}.x`,
        `${b64({ alg: {} })}.${b64({})}.x`,
        `${b64({ alg: 'RS256' })}.${b64({ sub: 'x' })}.x`,
        'x'.repeat(20_000),
      ),
    },
    { weight: 1, arbitrary: text },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
  );
}

const filters: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'id=eq.1',
      'id=gt.5',
      'id=in.(1,2,3)',
      'body=in.(a,"b c")',
      'body=eq.x',
      'id=neq.2',
      'id=is.null',
      '',
      'id=eq.',
      '=eq.1',
      'id=zz.1',
      'id=in.(',
      'id=in.()',
      'nope=eq.1',
      'id=eq.abc',
      'id=eq.1,body=eq.x',
      'and=(id.eq.1)',
      'body=like.%x',
      'id',
      'id=eq.1e400',
      'id=eq.\u0000',
      `id=in.(${Array.from({ length: 300 }, (_, i) => i).join(',')})`,
      `body=eq.${'x'.repeat(1100)}`,
    ),
  },
  { weight: 1, arbitrary: text },
  { weight: 1, arbitrary: garbage },
);

/** A `postgres_changes` binding: near-valid ones, and garbage entries. */
const binding: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        event: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('*', 'INSERT', 'UPDATE', 'DELETE') },
          { weight: 2, arbitrary: fc.constantFrom('insert', '', 'TRUNCATE', 'constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf') },
          { weight: 1, arbitrary: garbage },
        ),
        schema: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('public', 'public', '*', 'rowcast', 'pg_catalog', 'nope', '') },
          { weight: 1, arbitrary: fc.constantFrom('x'.repeat(1025), 'constructor') },
          { weight: 1, arbitrary: garbage },
        ),
        table: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('notes', 'notes', '*', 'nope', 'secret', '') },
          { weight: 1, arbitrary: fc.constantFrom('x'.repeat(1025), 'notes,notes', '"notes"', 'public.notes') },
          { weight: 1, arbitrary: garbage },
        ),
        filter: filters,
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: garbage },
);

function joinPayloads(tokens: readonly string[]): fc.Arbitrary<unknown> {
  const flag = fc.oneof({ weight: 4, arbitrary: fc.boolean() }, { weight: 1, arbitrary: garbage });
  const config = fc.record(
    {
      broadcast: fc.oneof(
        { weight: 4, arbitrary: fc.record({ self: flag, ack: flag, replay: fc.oneof(fc.record({ since: fc.integer(), limit: fc.integer() }), garbage) }, { requiredKeys: [] }) },
        { weight: 1, arbitrary: garbage },
      ),
      presence: fc.oneof(fc.record({ key: fc.oneof(text, garbage), enabled: flag }, { requiredKeys: [] }), garbage),
      postgres_changes: fc.oneof(
        { weight: 6, arbitrary: fc.array(binding, { maxLength: 5 }) },
        // Identical bindings (one subscription, one id each).
        { weight: 1, arbitrary: fc.tuple(binding, fc.integer({ min: 2, max: 8 })).map(([b, n]) => Array.from({ length: n }, () => b)) },
        // Past MAX_SUBSCRIPTIONS.
        { weight: 1, arbitrary: fc.integer({ min: 95, max: 130 }).map((n) => Array.from({ length: n }, (_, i) => ({ event: 'INSERT', schema: 'public', table: 'notes', filter: `id=eq.${i}` }))) },
        { weight: 1, arbitrary: garbage },
      ),
      private: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: garbage }),
    },
    { requiredKeys: [] },
  );
  return fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        config: fc.oneof({ weight: 6, arbitrary: config }, { weight: 1, arbitrary: garbage }),
        // Mostly none: the channel acts for the socket's apikey.
        access_token: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: accessTokens(tokens) }),
      }),
    },
    { weight: 1, arbitrary: garbage },
  );
}

const broadcastPayloads: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      {
        type: fc.oneof(fc.constant('broadcast'), garbage),
        event: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('msg', 'cursor', 'x'.repeat(255)) }, { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(256)) }, { weight: 1, arbitrary: garbage }),
        payload: fc.oneof({ weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) }, { weight: 1, arbitrary: garbage }),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: garbage },
);

const presencePayloads: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ type: fc.constant('presence'), event: fc.constantFrom('track', 'untrack', 'x'), payload: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] }),
  garbage,
);

/** `[event, payload]`, mostly matched, sometimes not. */
function eventsAndPayloads(tokens: readonly string[]): fc.Arbitrary<[unknown, unknown]> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.tuple(fc.constant('phx_join'), joinPayloads(tokens)) },
    { weight: 2, arbitrary: fc.tuple(fc.constant('access_token'), fc.oneof(fc.record({ access_token: accessTokens(tokens) }, { requiredKeys: [] }), garbage)) },
    { weight: 3, arbitrary: fc.tuple(fc.constant('broadcast'), broadcastPayloads) },
    { weight: 1, arbitrary: fc.tuple(fc.constant('presence'), presencePayloads) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('phx_leave', 'heartbeat'), fc.oneof(fc.constant({}), garbage)) },
    { weight: 2, arbitrary: fc.tuple(events, fc.oneof(phoenixPayloads, joinPayloads(tokens), broadcastPayloads)) },
  );
}

const joinRefs: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(JOINED) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 9 }).map(String) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 9 }) },
  { weight: 1, arbitrary: phoenixRefs },
);
const messageRefs: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 99 }).map(String) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.constantFrom('r'.repeat(255), 'r'.repeat(256), 2 ** 53, 1.5, -0) },
  { weight: 1, arbitrary: phoenixRefs },
);

function messages(tokens: readonly string[]): fc.Arbitrary<unknown[]> {
  return fc
    .tuple(joinRefs, messageRefs, topics, joinedTopics, fc.nat({ max: 1 }), eventsAndPayloads(tokens))
    // Pushes go half the time to a channel the connection joined.
    .map(([joinRef, ref, topic, joined, toJoined, [event, payload]]) => [joinRef, ref, event !== 'phx_join' && toJoined === 1 ? joined : topic, event, payload]);
}

/** Objects and arrays of the wrong shape for either vsn. */
const wrongShapes: fc.Arbitrary<unknown> = fc.oneof(
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 7 }),
  fc.record({ topic: topics, event: events, payload: fc.anything({ maxDepth: 2 }), ref: phoenixRefs, join_ref: phoenixRefs }, { requiredKeys: [] }),
  fc.constantFrom(null, 0, 'phx_join', [], {}, [null, null, 'realtime:fz', 'phx_join'], [null, null, 'realtime:fz', 'phx_join', {}, {}], { topic: 'realtime:fz' }, { event: 'heartbeat', topic: 'phoenix' }),
  fc.jsonValue({ maxDepth: 3 }),
);

const garbageText = fc.oneof(
  text,
  fc.constantFrom('', ' ', 'null', '[', '{', '["1","1","realtime:fz","phx_join",{}', '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}x', '\uFEFF[]', 'NaN'),
  fc.integer({ min: 1, max: 40_000 }).map((n) => '['.repeat(n)),
  fc.integer({ min: 25, max: 6000 }).map((n) => `[null,"1","realtime:fz","phx_join",${nestText(n)}]`),
  fc.integer({ min: 25, max: 6000 }).map((n) => `{"topic":"realtime:fz","event":"broadcast","ref":"1","payload":{"type":"broadcast","event":"e","payload":${nestText(n)}}}`),
);

/** Text frames whose bytes are not UTF-8 (uWS cuts such a socket). */
const notUtf8 = fc.oneof(
  fc.constantFrom(Uint8Array.of(0xff), Uint8Array.of(0x5b, 0xc3), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xc0, 0xaf), Uint8Array.of(0xf8, 0x88, 0x80, 0x80, 0x80)),
  fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom(0x80, 0xbf, 0xfe, 0xff)).map(([prefix, bad]) => new Uint8Array([...utf8(prefix), bad])),
);

const pushPayloads = fc.oneof(
  { weight: 8, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => utf8(JSON.stringify(v))) },
  { weight: 1, arbitrary: fc.constantFrom('', 'not json', '{', 'undefined', '{"a":1}{"b":2}', 'NaN', '\u0000', ' 1 ', '"\uD800"').map(utf8) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) },
  { weight: 1, arbitrary: fc.constantFrom(Uint8Array.of(0x22, 0xff, 0x22), Uint8Array.of(0x7b, 0xc3, 0x7d)) },
  // Around MAX_FRAME_DEPTH, and far past it (deeper than JSON.stringify can go: about 5,000 levels).
  { weight: 2, arbitrary: fc.oneof(fc.integer({ min: 20, max: 40 }), fc.constantFrom(100, 1_000, 6_000, 12_000, 30_000)).map((n) => utf8(deepText(n))) },
);

/** A value of `arbitrary` once in `n` times, else null. */
const once = <T>(n: number, arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });

const broadcastPushes: fc.Arbitrary<BroadcastPush> = fc.record({
  joinRef: fc.oneof({ weight: 4, arbitrary: fc.constant(JOINED) }, { weight: 2, arbitrary: fc.constantFrom('', '1', '2') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }),
  ref: fc.oneof(fc.constantFrom('', '7', '8'), fc.string({ maxLength: 8 })),
  topic: fc.oneof({ weight: 6, arbitrary: joinedTopics }, { weight: 4, arbitrary: channelTopics }, { weight: 1, arbitrary: fc.constantFrom('', 'phoenix', 'realtime:') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }),
  event: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('msg', 'cursor', 'x'.repeat(255)) }, { weight: 1, arbitrary: fc.constantFrom('', 'heartbeat', 'phx_join') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }),
  meta: fc.oneof({ weight: 4, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('{}', '{"replayed":true}', 'not json') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }),
  encoding: fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 2, 255) }),
  payload: pushPayloads,
  lie: once(5, fc.record({ field: fc.nat({ max: 4 }), length: fc.nat({ max: 255 }) })),
  badField: once(10, fc.nat({ max: 4 })),
  cut: once(10, fc.nat({ max: 40 })),
});

/** A kind-3 frame of `push`, its join_ref already resolved. */
export function encodeBroadcastPush(push: BroadcastPush, joinRef: string): Uint8Array {
  const fields = [joinRef, push.ref, push.topic, push.event, push.meta].map((field, i) => (push.badField === i ? Uint8Array.of(0xc3, 0x28) : utf8(field)));
  const lengths = fields.map((field, i) => (push.lie?.field === i ? push.lie.length : field.length & 0xff));
  const bytes = new Uint8Array(Buffer.concat([Uint8Array.of(3, ...lengths, push.encoding), ...fields, push.payload]));
  return push.cut === null ? bytes : bytes.subarray(0, push.cut);
}

/** Kind 0 (a Phoenix binary push: raw payload, not accepted by this door's channels), with lies. */
const kindZero = fc
  .record({
    fields: fc.tuple(fc.constantFrom('', '1'), fc.constantFrom('', '2'), fc.oneof(channelTopics, fc.constant('phoenix')), fc.constantFrom('broadcast', 'heartbeat', 'phx_join', 'presence', '')),
    payload: fc.uint8Array({ maxLength: 16 }),
    lie: once(4, fc.record({ field: fc.nat({ max: 3 }), length: fc.nat({ max: 255 }) })),
  })
  .map(({ fields, payload, lie }) => {
    const bytes = fields.map(utf8);
    return new Uint8Array(Buffer.concat([Uint8Array.of(0, ...bytes.map((b, i) => (lie?.field === i ? lie.length : b.length))), ...bytes, payload]));
  });

const binaries = fc.oneof(
  { weight: 2, arbitrary: kindZero },
  // Unknown kinds, and the server's own kinds (1, 2, 4).
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1, 2, 4, 5, 7, 255), fc.uint8Array({ maxLength: 24 })).map(([kind, rest]) => new Uint8Array([kind, ...rest])) },
  // Kind 3 shorter than its header.
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 6 }).map((rest) => new Uint8Array([3, ...rest.subarray(0, 5)])) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
);

function bursts(tokens: readonly string[]): fc.Arbitrary<BurstMessage[]> {
  const validTopics = fc.oneof({ weight: 6, arbitrary: channelTopics.filter((t) => t.length <= 255) }, { weight: 1, arbitrary: fc.constantFrom('realtime:', 'phoenix', 'table:notes') });
  const message = fc.record({
    topic: validTopics,
    event: fc.constantFrom('phx_join', 'phx_join', 'phx_join', 'phx_leave', 'presence', 'bogus', 'heartbeat', 'postgres_changes'),
    payload: fc.oneof({ weight: 4, arbitrary: joinPayloads(tokens) }, { weight: 1, arbitrary: fc.constant({}) }),
  });
  return fc.oneof(
    { weight: 2, arbitrary: fc.array(message, { minLength: 2, maxLength: 30 }) },
    // Joins to many distinct topics at once (and, mostly, leaves of them).
    {
      weight: 1,
      arbitrary: fc.record({ count: fc.integer({ min: 10, max: 150 }), payload: joinPayloads(tokens), leave: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), salt: fc.nat({ max: 999 }) }).map(({ count, payload, leave, salt }) => [
        ...Array.from({ length: count }, (_, i) => ({ topic: `realtime:fz-many-${salt}-${i}`, event: 'phx_join', payload })),
        ...(leave ? Array.from({ length: count }, (_, i) => ({ topic: `realtime:fz-many-${salt}-${i}`, event: 'phx_leave', payload: {} })) : []),
      ]),
    },
  );
}

/**
 * One arbitrary frame for one of `connections` connections. `tokens` are
 * real tokens for `access_token` (valid ones, an expired one, other users',
 * an admin's…): the generator adds garbage of its own.
 */
export function supabaseFuzzFrame(connections: number, tokens: readonly string[] = []): fc.Arbitrary<SupabaseFuzzFrame> {
  const connection = fc.nat({ max: connections - 1 });
  return fc.oneof(
    { weight: 30, arbitrary: fc.record({ connection, kind: fc.constant('message' as const), fields: messages(tokens), swapped: fc.constant(false) }) },
    { weight: 2, arbitrary: fc.record({ connection, kind: fc.constant('message' as const), fields: messages(tokens), swapped: fc.constant(true) }) },
    { weight: 3, arbitrary: fc.record({ connection, kind: fc.constant('json' as const), value: wrongShapes }) },
    { weight: 3, arbitrary: fc.record({ connection, kind: fc.constant('text' as const), text: garbageText }) },
    { weight: 1, arbitrary: fc.record({ connection, kind: fc.constant('raw-text' as const), bytes: notUtf8 }) },
    { weight: 10, arbitrary: fc.record({ connection, kind: fc.constant('broadcast-push' as const), push: broadcastPushes }) },
    { weight: 3, arbitrary: fc.record({ connection, kind: fc.constant('binary' as const), bytes: binaries }) },
    { weight: 1, arbitrary: fc.record({ connection, kind: fc.constant('huge' as const), ratio: fc.constantFrom(0.5, 0.98, 1.01, 1.9, 2.5), binary: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ connection, kind: fc.constant('burst' as const), messages: bursts(tokens) }) },
    // The Phoenix door's frames, here.
    {
      weight: 3,
      arbitrary: phoenixFuzzFrame(connections).map((frame): SupabaseFuzzFrame => {
        if (frame.kind === 'text') return frame;
        if (frame.kind === 'binary') return frame;
        return frame.message.length === 5 ? { connection: frame.connection, kind: 'message', fields: frame.message, swapped: false } : { connection: frame.connection, kind: 'json', value: frame.message };
      }),
    },
  );
}

// ---------------------------------------------------------------------------
// What the door must make of a frame: the wire format (docs: Phoenix's
// serializers plus Supabase's kind-3 broadcast push), read independently of
// the door's code.

/** A client frame as the door must read it. */
export type ReadFrame =
  | { readonly ok: false; readonly why: string }
  | { readonly ok: true; readonly joinRef: string | null; readonly ref: string | null; readonly topic: string; readonly event: string; readonly payload: unknown; readonly binaryPayload: boolean };

const MAX_FIELD = 255;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether JSON `value` nests containers deeper than `max` (the value itself is level 1). */
function deeperThan(value: unknown, max: number): boolean {
  let level: unknown[] = [value];
  for (let depth = 1; level.length > 0; depth++) {
    const next: unknown[] = [];
    for (const item of level) {
      if (item === null || typeof item !== 'object') continue;
      if (depth > max) return true;
      next.push(...(Array.isArray(item) ? item : Object.values(item)));
    }
    level = next;
  }
  return false;
}

function fields(joinRef: unknown, ref: unknown, topic: unknown, event: unknown, payload: unknown, binaryPayload: boolean): ReadFrame {
  const isRef = (v: unknown) => v === null || (typeof v === 'string' && v.length <= MAX_FIELD) || (typeof v === 'number' && Number.isSafeInteger(v));
  if (!isRef(joinRef) || !isRef(ref)) return { ok: false, why: 'join_ref or ref is not a string, an integer or null' };
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_FIELD) return { ok: false, why: 'topic is not a string of 1 to 255 characters' };
  if (typeof event !== 'string' || event.length === 0 || event.length > MAX_FIELD) return { ok: false, why: 'event is not a string of 1 to 255 characters' };
  const asRef = (v: unknown) => (v === null ? null : String(v));
  return { ok: true, joinRef: asRef(joinRef), ref: asRef(ref), topic, event, payload: payload ?? {}, binaryPayload };
}

/** The `n` length-prefixed UTF-8 fields after a header of `header` bytes whose bytes 1…n are their lengths; then the offset of what follows. */
function lengthPrefixed(bytes: Uint8Array, header: number, n: number): { strings: string[]; offset: number } | string {
  if (bytes.length < header) return 'shorter than its header';
  const strings: string[] = [];
  let offset = header;
  for (let i = 1; i <= n; i++) {
    const length = bytes[i]!;
    if (offset + length > bytes.length) return 'shorter than its header says';
    try {
      strings.push(strictUtf8.decode(bytes.subarray(offset, offset + length)));
    } catch {
      return 'a field is not UTF-8';
    }
    offset += length;
  }
  return { strings, offset };
}

/**
 * What the door must read `data` as (a text frame's bytes are UTF-8, checked
 * by uWS before this): vsn 1.0.0 `{topic, event, payload, ref, join_ref?}`,
 * vsn 2.0.0 `[join_ref, ref, topic, event, payload]` or a binary push of
 * kind 0 (raw payload) or 3 (`broadcast`, JSON payload); nothing nested
 * deeper than `maxDepth`.
 */
export function readSupabaseFrame(vsn: Vsn, data: Uint8Array, isBinary: boolean, maxDepth: number): ReadFrame {
  if (isBinary) {
    if (vsn !== '2.0.0') return { ok: false, why: 'binary in vsn 1.0.0' };
    if (data[0] === 3) {
      if (data.length < 7) return { ok: false, why: 'kind 3 shorter than its header' };
      if (data[6] !== 1) return { ok: false, why: `kind 3 with encoding ${data[6]}` };
      const read = lengthPrefixed(data, 7, 5);
      if (typeof read === 'string') return { ok: false, why: `kind 3 ${read}` };
      const [joinRef, ref, topic, event] = read.strings as [string, string, string, string];
      let payload: unknown;
      try {
        payload = JSON.parse(strictUtf8.decode(data.subarray(read.offset)));
      } catch {
        return { ok: false, why: 'kind 3 payload is not JSON' };
      }
      const message = [joinRef === '' ? null : joinRef, ref === '' ? null : ref, topic, 'broadcast', { type: 'broadcast', event, payload }];
      if (deeperThan(message, maxDepth)) return { ok: false, why: 'kind 3 nested too deep' };
      return fields(message[0], message[1], topic, 'broadcast', message[4], false);
    }
    if (data[0] !== 0) return { ok: false, why: data.length === 0 ? 'empty binary frame' : `binary kind ${data[0]}` };
    const read = lengthPrefixed(data, 5, 4);
    if (typeof read === 'string') return { ok: false, why: `kind 0 ${read}` };
    const [joinRef, ref, topic, event] = read.strings as [string, string, string, string];
    return fields(joinRef === '' ? null : joinRef, ref === '' ? null : ref, topic, event, data.subarray(read.offset), true);
  }
  let json: unknown;
  try {
    json = JSON.parse(strictUtf8.decode(data));
  } catch {
    return { ok: false, why: 'not JSON' };
  }
  if (deeperThan(json, maxDepth)) return { ok: false, why: 'nested too deep' };
  if (vsn === '2.0.0') {
    if (!Array.isArray(json) || json.length !== 5) return { ok: false, why: 'not a 5-array' };
    const [joinRef, ref, topic, event, payload] = json as unknown[];
    return fields(joinRef, ref, topic, event, payload, false);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { ok: false, why: 'not an object' };
  const { join_ref: joinRef = null, ref = null, topic, event, payload } = json as Record<string, unknown>;
  return fields(joinRef, ref, topic, event, payload, false);
}

// ---------------------------------------------------------------------------
// The runner.

/** Error codes a reply may carry: every one but INTERNAL (a bug), NOT_FOUND (HTTP) and EVENT_DROPPED (to admins). */
const REPLY_CODES: ReadonlySet<string> = new Set(ERROR_CODES.filter((code) => code !== 'INTERNAL' && code !== 'NOT_FOUND' && code !== 'EVENT_DROPPED'));
const BARRIER_TOPIC = 'fz:barrier';
const RUNNER_REF = '\u0001';

/** A frame the server sent (`joinRef` is null in vsn 1.0.0). */
export interface Received {
  readonly joinRef: string | null;
  readonly ref: string | null;
  readonly topic: string;
  readonly event: string;
  readonly payload: any;
  readonly text: string;
}

/** Replies, `system` messages, closes and errors answer a frame; change events and broadcasts do not. */
const ANSWERS = new Set(['phx_reply', 'phx_error', 'phx_close', 'system']);

class Connection {
  readonly socket: WebSocket;
  readonly vsn: Vsn;
  readonly received: Received[] = [];
  readonly problems: string[] = [];
  /** Joined channels: topic → the join's join_ref and whether broadcasts are acknowledged. */
  readonly joined = new Map<string, { joinRef: string | null; ack: boolean }>();
  closeCode: number | null = null;
  closeReason = '';
  /** Received frames before this one were looked at (the runner follows `phx_close`s that came between two frames' answers). */
  cursor = 0;
  #wake: (() => void) | null = null;

  private constructor(socket: WebSocket, vsn: Vsn) {
    this.socket = socket;
    this.vsn = vsn;
    socket.on('message', (data, isBinary) => {
      if (isBinary) return; // a broadcast in binary (kind 4) is no answer
      const raw = String(data);
      try {
        const frame = JSON.parse(raw) as unknown;
        if (vsn === '2.0.0') {
          if (!Array.isArray(frame) || frame.length !== 5) throw new Error('not [join_ref, ref, topic, event, payload]');
          const [joinRef, ref, topic, event, payload] = frame as [string | null, string | null, string, string, unknown];
          this.received.push({ joinRef, ref, topic, event, payload, text: raw });
        } else {
          if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) throw new Error('not {topic, event, payload, ref}');
          const { ref = null, topic, event, payload } = frame as Record<string, any>;
          this.received.push({ joinRef: null, ref, topic, event, payload, text: raw });
        }
      } catch (error) {
        this.problems.push(`a server frame that is not a vsn ${vsn} message: ${(error as Error).message}; ${clip(raw)}`);
      }
      this.#wake?.();
    });
    socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = String(reason);
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  static open(url: string, vsn: Vsn): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { maxPayload: 256 * 1024 * 1024 });
      socket.once('open', () => resolve(new Connection(socket, vsn)));
      socket.once('error', reject);
    });
  }

  send(data: Uint8Array | string, binary: boolean): void {
    this.socket.send(data, { binary });
  }

  /** A message of the runner's, in this connection's vsn. */
  encode(joinRef: string | null, ref: string, topic: string, event: string, payload: unknown): string {
    return this.vsn === '2.0.0' ? JSON.stringify([joinRef, ref, topic, event, payload]) : JSON.stringify({ join_ref: joinRef, ref, topic, event, payload });
  }

  /** Waits for a received frame at or after `from` that `match`es; null when the socket closed; throws after `timeoutMs`. */
  async until(from: number, match: (r: Received) => boolean, timeoutMs: number): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    for (let i = from; ; ) {
      for (; i < this.received.length; i++) if (match(this.received[i]!)) return i;
      if (this.closeCode !== null) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** The kind of a problem {@link SupabaseFuzzRunner.run} returned: its text between the connection and the details. */
export function problemKind(problem: string): string {
  return /^connection \d+ \(vsn [\d.]+\): ([^:]*)/.exec(problem)?.[1] ?? problem.slice(0, 80);
}

/** What the runner needs to know of the server (its MAX_MESSAGE_BYTES and MAX_FRAME_DEPTH). */
export interface SupabaseFuzzLimits {
  readonly maxMessageBytes: number;
  readonly maxFrameDepth: number;
}

/** `text` for a report: runs of one character shortened (`x×1025`), at most 300 characters. */
const clip = (text: string) => {
  const short = text.replace(/(.)\1{15,}/gsu, (run, c: string) => `${c}×${[...run].length}`);
  return short.length > 300 ? `${short.slice(0, 300)}… (${text.length} characters)` : short;
};

const show = (data: Uint8Array | string, binary: boolean) => {
  if (!binary) return clip(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  const hex = Buffer.from(data).toString('hex');
  return `binary ${hex.length > 300 ? `${hex.slice(0, 300)}… (${data.length} bytes)` : hex}`;
};

/**
 * Connections to the Supabase door (each of its own vsn) that send fuzz
 * frames and judge each frame's answer (see the top of this file).
 */
export class SupabaseFuzzRunner {
  readonly #targets: ReadonlyArray<{ readonly url: string; readonly vsn: Vsn }>;
  readonly #limits: SupabaseFuzzLimits;
  #connections: Connection[] = [];
  #next = 0;
  sent = 0;
  /** What single frames earned: `ok`, an error code, `unmatched topic`, `silent`, `closed <code>`. */
  readonly outcomes = new Map<string, number>();
  /** What the messages of bursts earned. */
  readonly burstOutcomes = new Map<string, number>();
  /** Frames sent by kind, and how many of them the door must read (`read`) and must refuse (`unreadable`). */
  readonly kinds = new Map<string, number>();

  /** `targets`: one per connection, the URL (with `vsn` and `apikey`) and its vsn. */
  constructor(targets: ReadonlyArray<{ readonly url: string; readonly vsn: Vsn }>, limits: SupabaseFuzzLimits) {
    this.#targets = targets;
    this.#limits = limits;
  }

  /** Every frame connection `i` received (since it was last opened), parsed. */
  received(i: number): readonly Received[] {
    return this.#connections[i]!.received;
  }

  async open(): Promise<void> {
    this.#connections = await Promise.all(this.#targets.map(({ url, vsn }) => Connection.open(url, vsn)));
  }

  close(): void {
    for (const connection of this.#connections) connection.socket.close();
  }

  #count(map: Map<string, number>, key: string, n = 1): void {
    map.set(key, (map.get(key) ?? 0) + n);
  }

  /**
   * Sends `frames` (each connection's in order, connections at once) and
   * returns what went wrong, each as `connection <i> (vsn <v>): <kind>: <details>`
   * (see {@link problemKind}).
   */
  async run(frames: readonly SupabaseFuzzFrame[], timeoutMs = 20_000): Promise<string[]> {
    const problems: string[] = [];
    const byConnection = new Map<number, SupabaseFuzzFrame[]>();
    for (const frame of frames) {
      const i = frame.connection % this.#connections.length;
      byConnection.set(i, [...(byConnection.get(i) ?? []), frame]);
    }
    await Promise.all(
      [...byConnection].map(async ([i, list]) => {
        for (const frame of list) {
          const found = frame.kind === 'burst' ? await this.#burst(i, frame.messages, timeoutMs) : await this.#one(i, frame, timeoutMs);
          this.#count(this.kinds, frame.kind);
          problems.push(...found.map((p) => `connection ${i} (vsn ${this.#targets[i]!.vsn}): ${p}`));
          const connection = this.#connections[i]!;
          problems.push(...connection.problems.splice(0).map((p) => `connection ${i} (vsn ${connection.vsn}): ${p}`));
          if (connection.closeCode !== null || found.some((p) => p.startsWith('HANG'))) {
            connection.socket.terminate();
            this.#connections[i] = await Connection.open(this.#targets[i]!.url, this.#targets[i]!.vsn);
          }
        }
      }),
    );
    return problems;
  }

  /** The bytes of `frame` on `connection`. */
  #wire(connection: Connection, frame: Exclude<SupabaseFuzzFrame, { kind: 'burst' }>): { data: Uint8Array; binary: boolean } {
    const joinRefOf = (topic: unknown) => (typeof topic === 'string' && connection.joined.has(topic) ? connection.joined.get(topic)!.joinRef : '99');
    const topicOf = (topic: unknown) => {
      if (typeof topic !== 'string' || !topic.startsWith(JOINED_TOPIC)) return topic;
      const joined = [...connection.joined.keys()];
      return joined.length === 0 ? 'realtime:fz' : joined[Number(topic.slice(JOINED_TOPIC.length)) % joined.length]!;
    };
    switch (frame.kind) {
      case 'message': {
        const [joinRef, ref, rawTopic, event, payload] = frame.fields;
        const topic = topicOf(rawTopic);
        const resolved = joinRef === JOINED ? joinRefOf(topic) : joinRef;
        const asArray = (connection.vsn === '2.0.0') !== frame.swapped;
        const value = asArray ? [resolved, ref, topic, event, payload] : { join_ref: resolved, ref, topic, event, payload };
        return { data: utf8(JSON.stringify(value)), binary: false };
      }
      case 'json':
        return { data: utf8(JSON.stringify(frame.value) ?? 'undefined'), binary: false };
      case 'text':
        return { data: utf8(frame.text), binary: false };
      case 'raw-text':
        return { data: frame.bytes, binary: false };
      case 'binary':
        return { data: frame.bytes, binary: true };
      case 'broadcast-push': {
        const push = { ...frame.push, topic: topicOf(frame.push.topic) as string };
        return { data: encodeBroadcastPush(push, push.joinRef === JOINED ? (joinRefOf(push.topic) ?? '') : push.joinRef), binary: true };
      }
      case 'huge': {
        const size = Math.round(this.#limits.maxMessageBytes * frame.ratio);
        if (frame.binary) {
          const push: BroadcastPush = { joinRef: '', ref: 'h', topic: 'realtime:~fz', event: 'huge', meta: '', encoding: 1, payload: utf8(JSON.stringify('x'.repeat(Math.max(0, size - 40)))), lie: null, badField: null, cut: null };
          return { data: encodeBroadcastPush(push, joinRefOf(push.topic) ?? ''), binary: true };
        }
        const message = connection.encode(null, 'h', 'realtime:fz-huge', 'phx_join', { config: {}, pad: 'x'.repeat(Math.max(0, size - 120)) });
        return { data: utf8(message), binary: false };
      }
    }
  }

  /** Sends a barrier (a `phx_leave` of a topic never joined: answered ok, in order, behind everything before it) and waits for its reply; null when the socket closed. */
  async #barrier(connection: Connection, timeoutMs: number): Promise<{ index: number; reply: Received } | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ref = `${RUNNER_REF}b${this.#next++}`;
      const from = connection.received.length;
      connection.send(connection.encode(null, ref, BARRIER_TOPIC, 'phx_leave', {}), false);
      const index = await connection.until(from, (r) => r.event === 'phx_reply' && r.ref === ref && r.topic === BARRIER_TOPIC, Math.max(1, deadline - Date.now()));
      if (index === null) return null;
      const reply = connection.received[index]!;
      // Refused at once for a full queue (after a burst): not behind the rest yet; again.
      if (reply.payload?.status === 'error' && String(reply.payload?.response?.reason).startsWith('LIMIT_EXCEEDED')) continue;
      return { index, reply };
    }
  }

  /** Checks the form of every answer: coded errors, no INTERNAL, no `phx_error`. */
  #checkForms(answers: readonly Received[], problems: string[], frameOf: (answer: Received) => string): void {
    for (const [before, answer] of answers.entries()) {
      const count = problems.length;
      if (answer.event === 'phx_error') problems.push(`phx_error: ${clip(answer.text)}`);
      if (answer.event === 'phx_reply') {
        const { status, response } = answer.payload ?? {};
        if (status === 'ok') {
          if (response === null || typeof response !== 'object') problems.push(`an ok reply without a response object: ${clip(answer.text)}`);
        } else if (status === 'error') {
          const reason = response?.reason;
          const code = typeof reason === 'string' ? /^([A-Z_]+): ./.exec(reason)?.[1] : undefined;
          if (reason !== 'unmatched topic' && (code === undefined || !REPLY_CODES.has(code))) problems.push(`an error reply with INTERNAL or without a documented code: ${clip(answer.text)}`);
        } else problems.push(`a reply whose status is neither ok nor error: ${clip(answer.text)}`);
      }
      if (answer.event === 'system') {
        const { status, message, extension } = answer.payload ?? {};
        if (typeof extension !== 'string' || (status !== 'ok' && status !== 'error') || typeof message !== 'string') problems.push(`a malformed system message: ${clip(answer.text)}`);
        else if (/(^|: )INTERNAL: /.test(message)) problems.push(`an INTERNAL system message: ${clip(answer.text)}`);
        // docs/supabase.md: "The codes are those of the protocol" (`INSERT on public.secret: TOPIC_NOT_FOUND: …`).
        else if (status === 'error' && !/(^|: )[A-Z][A-Z_]+: /.test(message)) problems.push(`a system error without a code: ${clip(answer.text)}`);
      }
      for (let i = count; i < problems.length; i++) problems[i] += `; to ${frameOf(answer)}${before > 0 ? ` (after ${before} other answers)` : ''}`;
    }
  }

  /** Follows the `phx_close`s received since the last frame's answers (a channel whose token expired ends on its own). */
  #catchUp(connection: Connection): void {
    for (const frame of connection.received.slice(connection.cursor)) if (frame.event === 'phx_close') connection.joined.delete(frame.topic);
    connection.cursor = connection.received.length;
  }

  /** Follows joins, leaves and closes among `answers` (in order): `readOf` names the message a reply answers, if any. */
  #track(connection: Connection, readOf: (reply: Received) => (ReadFrame & { ok: true }) | undefined, answers: readonly Received[]): void {
    for (const answer of answers) {
      if (answer.event === 'phx_close') connection.joined.delete(answer.topic);
      if (answer.event !== 'phx_reply') continue;
      const read = readOf(answer);
      if (read === undefined || read.binaryPayload) continue;
      if (read.event === 'phx_leave') connection.joined.delete(read.topic);
      if (read.event === 'phx_join' && answer.payload?.status === 'ok') {
        const config = (read.payload as any)?.config;
        connection.joined.set(read.topic, { joinRef: read.joinRef, ack: config?.broadcast?.ack === true });
      }
    }
  }

  async #one(i: number, frame: Exclude<SupabaseFuzzFrame, { kind: 'burst' }>, timeoutMs: number): Promise<string[]> {
    const connection = this.#connections[i]!;
    const { data, binary } = this.#wire(connection, frame);
    const read = readSupabaseFrame(connection.vsn, data, binary, this.#limits.maxFrameDepth);
    const problems: string[] = [];
    const describe = () => `the frame ${show(data, binary)} (read as ${read.ok ? `${clip(read.event)} on ${clip(JSON.stringify(read.topic))}, ref ${clip(JSON.stringify(read.ref))}` : `unreadable: ${read.why}`})`;
    let utf8Text = true;
    if (!binary) {
      try {
        strictUtf8.decode(data);
      } catch {
        utf8Text = false;
      }
    }
    this.#catchUp(connection);
    const from = connection.received.length;
    this.sent++;
    connection.send(data, binary);
    let barrier;
    try {
      barrier = await this.#barrier(connection, timeoutMs);
    } catch (error) {
      return [`HANG: ${(error as Error).message} after ${describe()}; received since: ${connection.received.slice(from).map((r) => clip(r.text)).join(' | ')}`];
    }
    if (barrier === null) {
      const { closeCode: code, closeReason: reason } = connection;
      this.#count(this.outcomes, `closed ${code}`);
      const over = data.length > this.#limits.maxMessageBytes;
      // Over MAX_MESSAGE_BYTES: 1009; past twice that (uWS's maxPayloadLength), or text that is not UTF-8, uWS cuts the socket (1006).
      const expected = (over && code === 1009) || ((data.length > 2 * this.#limits.maxMessageBytes || !utf8Text) && code === 1006);
      if (!expected) problems.push(`an unexpected close: ${code} (${reason}) after ${describe()}`);
      return problems;
    }
    if (data.length > this.#limits.maxMessageBytes || !utf8Text) problems.push(`no close after a frame over MAX_MESSAGE_BYTES or not UTF-8: ${describe()}`);
    if (barrier.reply.payload?.status !== 'ok') problems.push(`the barrier refused: ${clip(barrier.reply.text)}`);
    connection.cursor = barrier.index + 1;
    const answers = connection.received.slice(from, barrier.index).filter((r) => ANSWERS.has(r.event));
    this.#checkForms(answers, problems, describe);
    const replies = answers.filter((r) => r.event === 'phx_reply');
    const shown = () => `; answers: ${answers.map((a) => clip(a.text)).join(' | ') || 'none'}`;
    if (!read.ok) {
      this.#count(this.kinds, 'unreadable');
      const reply = replies[0];
      const refused = replies.length === 1 && reply!.topic === 'phoenix' && reply!.ref === null && reply!.payload?.status === 'error' && String(reply!.payload?.response?.reason).startsWith('INVALID_MESSAGE: ');
      if (!refused || replies.length !== 1) problems.push(`an unreadable frame not refused with one INVALID_MESSAGE on topic phoenix: ${describe()}${shown()}`);
      this.#count(this.outcomes, refused ? 'INVALID_MESSAGE (unreadable)' : 'wrong');
      return problems;
    }
    this.#count(this.kinds, read.binaryPayload ? 'read (kind 0)' : 'read');
    const mine = replies.filter((r) => r.topic === read.topic && r.ref === read.ref);
    if (mine.length !== replies.length) problems.push(`a reply to something else: ${describe()}${shown()}`);
    if (mine.length > 1) problems.push(`several replies: ${mine.length} to ${describe()}${shown()}`);
    const channel = connection.joined.get(read.topic);
    const push = channel !== undefined && read.event !== 'phx_join' && read.event !== 'phx_leave' && !read.binaryPayload;
    const stale = push && read.joinRef !== null && read.joinRef !== channel.joinRef;
    // The channel ended on its own meanwhile (its token expired): the push may have come after.
    const ended = push && answers.some((a) => a.event === 'phx_close' && a.topic === read.topic);
    // Phoenix's silences: a stale join_ref; `access_token` (answered only when it ends the channel); `broadcast` without `ack`.
    const mayBeSilent = push && (stale || read.event === 'access_token' || (read.event === 'broadcast' && !channel.ack));
    if (push) this.#count(this.kinds, stale ? 'push with a stale join_ref' : `${['access_token', 'broadcast', 'presence'].includes(read.event) ? read.event : 'another event'} on a joined channel`);
    const reply = mine[0];
    if (reply === undefined) {
      if (!mayBeSilent) problems.push(`no reply: ${describe()}${shown()}`);
      this.#count(this.outcomes, 'silent');
    } else {
      const status = reply.payload?.status;
      const reason = String(reply.payload?.response?.reason ?? '');
      this.#count(this.outcomes, status === 'ok' ? 'ok' : reason === 'unmatched topic' ? reason : reason.split(':')[0]!);
      const must = (ok: boolean, what: string) => {
        if (!ok) problems.push(`${what}: ${describe()}${shown()}`);
      };
      if (stale && !ended) must(false, 'a push with a stale join_ref was answered');
      if (read.topic === 'phoenix' && read.event === 'heartbeat') must(status === 'ok', 'a heartbeat not answered ok');
      else if (read.binaryPayload) must(status === 'error' && reason.startsWith('INVALID_MESSAGE: '), 'a binary (kind 0) payload not refused with INVALID_MESSAGE');
      else if (read.event === 'phx_leave') must(status === 'ok', 'a leave not answered ok');
      else if (read.event === 'phx_join' && (!read.topic.startsWith('realtime:') || read.topic === 'realtime:')) must(status === 'error' && reason === 'unmatched topic', 'a join of a topic that is no realtime channel not answered unmatched topic');
      else if (read.event !== 'phx_join' && channel === undefined) must(status === 'error' && reason === 'unmatched topic', 'a push on a channel not joined not answered unmatched topic');
      else if (read.event === 'presence') {
        // ok only for a track of an object (none or null: an empty one) or an untrack; else a coded error.
        const push = read.payload as any;
        const valid = push?.event === 'untrack' || (push?.event === 'track' && (push.payload == null || (typeof push.payload === 'object' && !Array.isArray(push.payload))));
        must(status === 'error' ? /^[A-Z_]+: /.test(reason) : valid, 'a presence push answered ok that is no track of an object nor an untrack, or an error without a code');
      } else if (read.event !== 'phx_join' && read.event !== 'broadcast' && read.event !== 'access_token') must(status === 'error', 'an unknown event on a joined channel not answered with an error');
      if (read.event === 'phx_join' && status === 'ok') {
        // The reply lists every binding, in order, each with an id (realtime-js checks it).
        const sent = (read.payload as any)?.config?.postgres_changes;
        const listed = reply.payload?.response?.postgres_changes;
        const count = Array.isArray(sent) ? sent.length : 0;
        must(Array.isArray(listed) && listed.length === count && listed.every((b: any) => Number.isSafeInteger(b?.id)), 'a join reply that does not list every binding with an id');
      }
    }
    this.#track(connection, (r) => (r.topic === read.topic && r.ref === read.ref ? read : undefined), answers);
    return problems;
  }

  /** Sends `messages` back to back, each with a ref of the runner's and join_ref null, then a barrier: each is answered exactly once. */
  async #burst(i: number, messages: readonly BurstMessage[], timeoutMs: number): Promise<string[]> {
    const connection = this.#connections[i]!;
    const problems: string[] = [];
    this.#catchUp(connection);
    const from = connection.received.length;
    const sent = messages.map((message) => {
      const ref = `${RUNNER_REF}m${this.#next++}`;
      const data = utf8(connection.encode(null, ref, message.topic, message.event, message.payload));
      const read = readSupabaseFrame(connection.vsn, data, false, this.#limits.maxFrameDepth);
      connection.send(data, false);
      this.sent++;
      return { ref, data, read };
    });
    let barrier;
    // A long burst keeps the socket alive as realtime-js would: the door closes one silent for 60 s.
    const keepAlive = setInterval(() => connection.send(connection.encode(null, `${RUNNER_REF}h${this.#next++}`, 'phoenix', 'heartbeat', {}), false), 20_000);
    try {
      barrier = await this.#barrier(connection, timeoutMs);
    } catch (error) {
      const answered = new Set(connection.received.slice(from).map((r) => r.ref));
      return [`HANG: ${(error as Error).message} after a burst of ${messages.length}: ${sent.filter((s) => !answered.has(s.ref)).length} unanswered, the first ${show(sent.find((s) => !answered.has(s.ref))?.data ?? '', false)}`];
    } finally {
      clearInterval(keepAlive);
    }
    if (barrier === null) return [`an unexpected close: ${connection.closeCode} (${connection.closeReason}) during a burst of ${messages.length}`];
    connection.cursor = barrier.index + 1;
    const ours = (r: Received) => (r.topic === BARRIER_TOPIC && r.ref?.startsWith(RUNNER_REF) === true) || (r.topic === 'phoenix' && r.ref?.startsWith(`${RUNNER_REF}h`) === true);
    const answers = connection.received.slice(from, barrier.index).filter((r) => ANSWERS.has(r.event) && !ours(r));
    const byRef = new Map(sent.map((s) => [s.ref, s.data] as const));
    this.#checkForms(answers, problems, (answer) => {
      const data = byRef.get(answer.ref ?? '');
      return data ? `${show(data, false)} (in a burst of ${messages.length})` : `a burst of ${messages.length}`;
    });
    const replies = new Map<string | null, Received[]>();
    for (const answer of answers) if (answer.event === 'phx_reply') replies.set(answer.ref, [...(replies.get(answer.ref) ?? []), answer]);
    const unreadable = sent.filter((s) => !s.read.ok).length;
    const refused = (replies.get(null) ?? []).filter((r) => r.topic === 'phoenix' && String(r.payload?.response?.reason).startsWith('INVALID_MESSAGE: ')).length;
    if (refused !== unreadable) problems.push(`unreadable messages of a burst not each refused with INVALID_MESSAGE: ${unreadable} unreadable, ${refused} refused`);
    for (const { ref, data, read } of sent) {
      if (!read.ok) continue;
      const mine = (replies.get(ref) ?? []).filter((r) => r.topic === read.topic);
      if (mine.length !== 1) problems.push(`not one reply to a message of a burst: ${mine.length} to ${show(data, false)} (in a burst of ${messages.length})`);
      const reply = mine[0];
      if (reply) {
        const reason = String(reply.payload?.response?.reason ?? '');
        this.#count(this.burstOutcomes, reply.payload?.status === 'ok' ? 'ok' : reason === 'unmatched topic' ? reason : reason.split(':')[0]!);
      }
    }
    const reads = new Map(sent.map(({ ref, read }) => [ref, read] as const));
    this.#track(connection, (r) => {
      const read = reads.get(r.ref ?? '');
      return read?.ok && read.topic === r.topic ? read : undefined;
    }, answers);
    return problems;
  }
}
