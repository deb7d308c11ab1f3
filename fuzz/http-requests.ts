/**
 * Arbitrary HTTP requests for the HTTP fuzzer (fuzz/http.ts), aimed at every
 * route of the server (docs/operations.md, src/http/) and at paths that are none:
 * random and garbage methods, hostile path parameters (malformed percent
 * escapes, tens of KB, raw bytes, traversal), odd query strings, garbage and
 * oversized headers, every kind of `Authorization`, and bodies from the
 * route's own JSON to deep nesting, huge strings and binary. Some are made
 * malformed at the HTTP level on purpose (fuzz/http-malformations.ts).
 *
 * A request is data; {@link encodeRequest} turns it into the bytes sent, with
 * real tokens in place of `{admin}`-style placeholders.
 */
import fc from 'fast-check';
import { MALFORMATIONS, malform, type Malformation, type RequestParts } from './http-malformations.js';

/** The tokens a request may carry, by the placeholder that names them in `authorization`. */
export interface FuzzTokens {
  /** A user's token (`sub`, no admin role). */
  readonly user: string;
  readonly admin: string;
  /** An admin token past its `exp`. */
  readonly expired: string;
  /** An admin token signed with another secret. */
  readonly forged: string;
  /** An admin token with `alg: none`. */
  readonly unsigned: string;
}

/** One request, before encoding. Text fields are latin1 strings: one character per byte sent. */
export interface HttpFuzzRequest {
  readonly method: string;
  /** The request target (path and query), as sent. */
  readonly target: string;
  /** The `Authorization` value, with `{user}`, `{admin}`, … for the tokens of {@link FuzzTokens}; `null`: none. */
  readonly authorization: string | null;
  /** Headers besides `Host`, `Authorization` and the body's framing. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer | null;
  /** Send the body in chunks of this size (`transfer-encoding: chunked`) instead of with a `content-length`. */
  readonly chunkSize: number | null;
  readonly malformation: Malformation | null;
}

/** The methods uWebSockets.js parses; it closes the connection on any other token. */
export const UWS_METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT']);
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;

/** The bytes of `request`, with `tokens` in place of its placeholders. */
export function encodeRequest(request: HttpFuzzRequest, tokens: FuzzTokens): Buffer {
  const authorization = request.authorization?.replace(/\{(\w+)\}/g, (_, name: string) => tokens[name as keyof FuzzTokens] ?? `{${name}}`);
  const headers: string[] = ['Host: 127.0.0.1'];
  if (authorization !== undefined) headers.push(`Authorization: ${authorization}`);
  // HEAD is read to the close (to see whether its answer has a body it must not have): its only Connection is close.
  const isHead = request.method === 'HEAD';
  for (const [name, value] of request.headers) if (!isHead || name.toLowerCase() !== 'connection') headers.push(`${name}: ${value}`);
  if (isHead) headers.push('Connection: close');
  let body = request.body ?? Buffer.alloc(0);
  if (request.chunkSize !== null && request.body !== null) {
    headers.push('Transfer-Encoding: chunked');
    // At most 2,000 chunks: a megabyte in 1-byte chunks tests nothing more, slowly.
    body = chunk(body, Math.max(request.chunkSize, Math.ceil(body.length / 2000)));
  } else if (request.body !== null) {
    headers.push(`Content-Length: ${body.length}`);
  }
  const parts: RequestParts = { method: request.method, target: request.target, requestLine: `${request.method} ${request.target} HTTP/1.1`, headers, body, newline: '\r\n' };
  if (request.malformation) malform(parts, request.malformation);
  const { requestLine, newline } = parts;
  const head = `${requestLine}${newline}${parts.headers.join(newline)}${newline}${newline}`;
  return Buffer.concat([Buffer.from(head, 'latin1'), parts.body]);
}

/** The size in bytes of an encoded request's head (request line and headers). */
export function headBytes(encoded: Buffer): number {
  const end = encoded.indexOf('\r\n\r\n');
  return end < 0 ? encoded.length : end + 4;
}

/**
 * The request as it is sent, for reports: tokens as `<admin token>` and the
 * like, a run of one unit of up to 8 characters (`%ZZ%ZZ…`) as `‹%ZZ×5000›`,
 * cut to `max` characters.
 */
export function describeRequest(request: HttpFuzzRequest, max = 600): string {
  const raw = encodeRequest(request, PLACEHOLDERS).toString('latin1');
  const text = raw.replace(/(.{1,8}?)\1{15,}/gs, (run, unit: string) => `‹${unit}×${run.length / unit.length}›`);
  const shown = text.length > max ? `${JSON.stringify(text.slice(0, max))}…` : JSON.stringify(text);
  return text === raw && text.length <= max ? shown : `${shown} (${raw.length} bytes)`;
}

const PLACEHOLDERS: FuzzTokens = { user: '<user token>', admin: '<admin token>', expired: '<expired admin token>', forged: '<forged admin token>', unsigned: '<alg:none admin token>' };

/** `body` framed as `transfer-encoding: chunked`, `size` bytes a chunk. */
function chunk(body: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) {
    const part = body.subarray(at, at + size);
    parts.push(Buffer.from(`${part.length.toString(16)}\r\n`, 'latin1'), part, Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return Buffer.concat(parts);
}

// --- Paths -----------------------------------------------------------------

/** Text as latin1 characters of its UTF-8 bytes (what is sent for raw non-ASCII). */
const utf8 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
const percentEncoded = (bytes: Uint8Array) => [...bytes].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
/** Characters that may stand in a path segment as sent (no space, `?`, `#`, `/` or control bytes). */
const segmentChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&\'()*+,;=:@%"<>[]\\^`{|}');

/** Path segments that attack decoding and lookups. */
const hostileSegment: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      '%ZZ', '%', '%E0%80', '%C0%AF', '%00', '%uD800', '%ED%A0%80', '%FF', 'a%2', '%%', '%%41', '%2e%2e%2f', '%2e%2e', '..', '.', '...',
      '%2F', '%5C', '..%2F..%2Fetc%2Fpasswd', '%2e%2e%2fpackage.json', '%252e%252e', '%C3%A9', '%F0%9D%95%8F', '%EF%BB%BF', '%E2%80%AE',
      '~', "'", '"', '<script>', '${x}', 'null', 'undefined', '__proto__', 'constructor', 'prototype', 'hasOwnProperty', '-1', '0', '1e400', 'NaN',
      'notes%00', 'notes%20', '%20notes', 'NOTES', 'a;b', 'a,b', 'a:b', '@', '*', '%2A', 'public.fuzz_rows', 'rowcast.nope', 'a.b.c',
    ),
  },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 24 }).map((bytes) => String.fromCharCode(...[...bytes].map((b) => 0x80 | b))) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map((s) => utf8(s.replace(/[\s?#/\x00-\x1f\x7f]/g, '')) || 'x') },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 30 }).map(percentEncoded) },
  { weight: 3, arbitrary: fc.string({ unit: segmentChar, minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 70_000 }).map((n) => 'a'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => '%41'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 50, max: 5_000 }).map((n) => '%ZZ'.repeat(n)) },
);

/** A parameter: a plausible value (maybe percent-encoded) most of the time, else a hostile one. */
function param(...plausible: string[]): fc.Arbitrary<string> {
  const value = fc.constantFrom(...plausible);
  return fc.oneof(
    { weight: 5, arbitrary: value },
    { weight: 1, arbitrary: value.map((v) => percentEncoded(Buffer.from(v, 'latin1'))) },
    { weight: 4, arbitrary: hostileSegment },
  );
}

/** Topic names: the witness's table, a second table, custom topics the campaign creates. */
const TOPICS = ['notes', 'fuzz_rows', 'fuzz-room-1', 'fuzz-room-2', 'fuzz-eph', 'lobby', 'nope'];
/** Tables for policies. Never the witness's `notes`: a policy change revokes its subscription by design. */
const TABLES = ['fuzz_rows', 'public.fuzz_rows', 'nope', 'public.nope', 'nope.fuzz_rows'];

const oddQuery: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('?', '?&', '?&&=', '?=', '?a', '?a=%ZZ', '?%ZZ=1', '?a=1&a=2', '?token=garbage', '?before=&limit=', '?limit=1e400', '?a=%00', '?a[]=1&a[b]=2', '?__proto__=1', '??', '?a=?', '?;', '?%') },
  { weight: 3, arbitrary: fc.string({ unit: segmentChar, maxLength: 60 }).map((q) => `?${q}`) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => `?q=${percentEncoded(bytes)}`) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 40_000 }).map((n) => `?q=${'b'.repeat(n)}`) },
);
const queryValue = (...plausible: string[]) => fc.oneof(fc.constantFrom(...plausible), hostileSegment, fc.string({ unit: segmentChar, maxLength: 20 }));
const historyQuery: fc.Arbitrary<string> = fc
  .record(
    {
      before: queryValue('', '1', '0', '-1', '00000000-0000-0000-0000-000000000000', 'abc', '9007199254740993', '1e400'),
      limit: queryValue('', '0', '1', '50', '100', '101', '-1', 'abc', '1e400', '0x10', '1.5', '%205', 'NaN', 'Infinity'),
    },
    { requiredKeys: [] },
  )
  .map(({ before, limit }) => {
    const parts = [...(before !== undefined ? [`before=${before}`] : []), ...(limit !== undefined ? [`limit=${limit}`] : [])];
    return parts.length > 0 ? `?${parts.join('&')}` : '';
  });

// --- Bodies ----------------------------------------------------------------

const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');
const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('', '\u0000', '\uD800', '\uDFFF', '\uFEFF', '\u202E', '𝕏', 'e\u0301', '"', '\\'));
const topicName = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...TOPICS) }, { weight: 1, arbitrary: text }, { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,140}$/) });
const access = fc.oneof(fc.constantFrom('anyone', 'authenticated', 'admin'), fc.jsonValue({ maxDepth: 1 }));
const createTopicBody = fc
  .record(
    {
      name: topicName,
      description: fc.oneof(text, fc.integer({ min: 1000, max: 1100 }).map((n) => 'd'.repeat(n))),
      history: fc.oneof(fc.constantFrom(0, 1, 100), fc.integer(), fc.double()),
      maxSubscribers: fc.oneof(fc.integer({ min: -1, max: 10 }), fc.jsonValue({ maxDepth: 0 })),
      readers: access,
      writers: access,
    },
    { requiredKeys: ['name'] },
  )
  .map(json);
const messageBody = fc.record({ message: fc.oneof(fc.jsonValue({ maxDepth: 3 }), text) }, { requiredKeys: [] }).map(json);
/** Supabase's broadcast bodies: `{"messages": [...]}` (send()'s fallback), near-misses and junk. */
const broadcastMessage = fc.record(
  {
    topic: fc.oneof(fc.constantFrom(...TOPICS), text),
    event: fc.oneof(fc.constantFrom('wave', 'cursor', ''), text),
    payload: fc.jsonValue({ maxDepth: 3 }),
    private: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 0 })),
  },
  { requiredKeys: [] },
);
const broadcastBody = fc
  .oneof(
    { weight: 4, arbitrary: fc.record({ messages: fc.array(broadcastMessage, { maxLength: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ messages: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.array(fc.constant({ topic: 'lobby', event: 'x' }), { minLength: 101, maxLength: 120 })) }) },
  )
  .map(json);
/** httpSend()'s body: the payload itself. */
const payloadBody = fc.jsonValue({ maxDepth: 3 }).map(json);

const policyBody = fc
  .record(
    {
      read: fc.oneof(fc.constantFrom('public', 'owner', 'group', 'admin'), fc.jsonValue({ maxDepth: 0 })),
      ownerColumn: fc.oneof(fc.constantFrom('owner_id', 'id', 'nope', ''), text),
      groupColumn: fc.oneof(fc.constantFrom('group_id', 'id', 'nope', ''), text),
      groupClaim: fc.oneof(fc.constantFrom('groups', 'app.groups', ''), text),
    },
    { requiredKeys: [] },
  )
  .map(json);

/** `[[[…1…]]]` or `{"a":{"a":…}}`, `depth` deep, wrapped in `wrap` (a route's own shape) or bare. */
const deepJson = fc
  .record({ depth: fc.integer({ min: 1000, max: 20_000 }), object: fc.boolean(), wrap: fc.constantFrom('%', '{"message":%}', '{"name":"fuzz-deep","description":%}', '{"read":%}'), balanced: fc.boolean() })
  .map(({ depth, object, wrap, balanced }) => {
    const inner = object ? `${'{"a":'.repeat(depth)}1${balanced ? '}'.repeat(depth) : ''}` : `${'['.repeat(depth)}1${balanced ? ']'.repeat(depth) : ''}`;
    return Buffer.from(wrap.replace('%', inner), 'latin1');
  });
const hugeString = fc
  .record({ size: fc.integer({ min: 10_000, max: 1_200_000 }), wrap: fc.constantFrom('{"message":"%"}', '{"name":"%"}', '"%"', '{"read":"public","groupClaim":"%"}') })
  .map(({ size, wrap }) => Buffer.from(wrap.replace('%', 'x'.repeat(size)), 'latin1'));
const randomBody: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue().map(json) },
  { weight: 2, arbitrary: text.map((t) => Buffer.from(t, 'utf8')) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('{', '{"message":', 'null', 'true', '[]', '{}', '"x"', '{"message":1,}', "{'message':1}", '\uFEFF{"message":1}', '{"message":"\\ud800"}', '{"message":"\\u0000"}', '{"__proto__":{"x":1},"message":1}', 'NaN', '1e400')
      .map((t) => Buffer.from(t, 'utf8')),
  },
  { weight: 1, arbitrary: fc.constant(Buffer.from('{"message":1}', 'utf16le')) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
);

// --- Routes ----------------------------------------------------------------

/** A route of the server: its path (`:x` parameters), its methods, what its query and body look like. */
interface RouteTemplate {
  readonly path: ReadonlyArray<string | fc.Arbitrary<string>>;
  readonly methods: readonly string[];
  readonly query?: fc.Arbitrary<string>;
  readonly body?: fc.Arbitrary<Buffer>;
}

const ROUTES: readonly RouteTemplate[] = [
  { path: [], methods: ['GET'] },
  { path: ['inspector', param('index.html', 'app.js', 'inspector.css', 'nope.js', '.env', 'package.json')], methods: ['GET'] },
  { path: ['client', param('index.js', 'client.js', 'live-rows.js', 'index.js.map', 'index.d.ts', 'react.js', 'nope.js')], methods: ['GET'] },
  { path: ['health'], methods: ['GET'] },
  { path: ['status'], methods: ['GET'] },
  { path: ['metrics'], methods: ['GET'] },
  { path: ['live'], methods: ['GET'] },
  { path: ['admin', 'topics'], methods: ['GET', 'POST'], body: createTopicBody },
  { path: ['admin', 'topics', param(...TOPICS)], methods: ['DELETE'] },
  { path: ['admin', 'topics', param(...TOPICS), 'messages'], methods: ['POST'], body: messageBody },
  { path: ['admin', 'topics', param(...TOPICS), 'history'], methods: ['GET'], query: historyQuery },
  { path: ['admin', 'policies'], methods: ['GET'] },
  { path: ['admin', 'policies', param(...TABLES)], methods: ['PUT', 'DELETE'], body: policyBody },
  { path: ['admin', 'connections'], methods: ['GET'] },
  { path: ['admin', 'connections', param('conn-000000000000', 'fuzz-000000000000', 'admin-api', 'conn')], methods: ['DELETE'] },
  { path: ['realtime', 'v1', 'api', 'broadcast'], methods: ['POST'], body: broadcastBody },
  {
    path: ['realtime', 'v1', 'api', 'broadcast', param(...TOPICS), 'events', param('wave', 'cursor')],
    methods: ['POST'],
    query: fc.constantFrom('', '?private=true', '?private=false'),
    body: payloadBody,
  },
];

/** Paths near the routes, or nowhere. */
const unknownPath: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '/admin', '/admin/', '/admin/topicsx', '/admin/topics/', '/admin/topics//messages', '/admin/topics/notes/messages/x', '/admin/topics/notes/nope',
    '/admin/policies/', '/admin/connections/', '/ADMIN/topics', '/Admin/Topics', '/healthz', '/health/', '/status/', '/status.json', '/metrics/x',
    '/inspector', '/inspector/', '/client', '/client/', '/live/', '/live/x', '/.env', '/favicon.ico', '/index.html', '/%2e%2e/etc/passwd',
    '//', '///', '/./', '/%2F', '/%00', '/%ZZ', '/%', '/a/b/c/d/e/f', '/dist/src/server.js', '/package.json', '/../package.json',
  ),
  fc.array(hostileSegment, { minLength: 1, maxLength: 5 }).map((segments) => `/${segments.join('/')}`),
);

/** How a path is bent out of shape: doubled or trailing slashes, traversal. */
function bend(path: string, how: number): string {
  switch (how) {
    case 0:
      return `${path}/`;
    case 1:
      return path.replace('/', '//');
    case 2:
      return `/..${path}`;
    case 3:
      return `/%2e%2e%2f${path.slice(1)}`;
    case 4:
      return path.replace(/\/([^/]*)$/, '/./$1');
    default:
      return `${path}/../${path.split('/').pop()}`;
  }
}

const routed: fc.Arbitrary<{ route: RouteTemplate; path: string; query: string }> = fc
  .integer({ min: 0, max: ROUTES.length - 1 })
  .chain((i) => {
    const route = ROUTES[i]!;
    const segments = route.path.map((s) => (typeof s === 'string' ? fc.constant(s) : s));
    return fc.record({
      route: fc.constant(route),
      path: fc.tuple(...segments).map((parts) => `/${parts.join('/')}`),
      query: fc.oneof({ weight: 5, arbitrary: route.query ?? fc.constant('') }, { weight: 2, arbitrary: oddQuery }),
    });
  });

const garbageMethod = fc.oneof(fc.constantFrom('get', 'Post', 'PROPFIND', 'FOO', 'M-SEARCH', 'BREW', 'X', 'GETS', 'DELETEX', 'PURGE'), fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,24}$/));

/** `Authorization` values: none, broken, and every token kind (placeholders of {@link FuzzTokens}). */
const authorization: fc.Arbitrary<string | null> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('Bearer {admin}') },
  { weight: 3, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.constant('Bearer {user}') },
  { weight: 1, arbitrary: fc.constantFrom('Bearer {expired}', 'Bearer {forged}', 'Bearer {unsigned}') },
  { weight: 1, arbitrary: fc.constantFrom('bearer {admin}', 'BEARER  {admin} ', 'Bearer\t{admin}', 'Bearer {admin}x', 'Bearer {admin} {admin}', 'Token {admin}', '{admin}') },
  { weight: 2, arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', 'Bearer a.b.c', 'Bearer e30.e30.', 'Bearer null', '') },
  { weight: 1, arbitrary: fc.string({ unit: segmentChar, maxLength: 80 }).map((t) => `Bearer ${t}`) },
  { weight: 1, arbitrary: fc.integer({ min: 3000, max: 30_000 }).map((n) => `Bearer ${'x'.repeat(n)}`) },
);

/** Header values: printable ASCII and obs-text (bytes 0x80–0xFF), as HTTP allows. */
const headerValue = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }).map((v) => v.trim()),
  fc.uint8Array({ maxLength: 30 }).map((bytes) => String.fromCharCode(...[...bytes].map((b) => 0x80 | b))),
);
const header: fc.Arbitrary<readonly [string, string]> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constant('Content-Type'), fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', '*/*', '', 'json', 'application/json;;;')) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('Content-Type'), headerValue) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Accept', 'Accept-Encoding', 'Origin', 'Cookie', 'X-Forwarded-For', 'Referer', 'User-Agent', 'X-Request-Id', 'If-None-Match', 'Range'), headerValue) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('Expect'), fc.constantFrom('100-continue', 'garbage')) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('Connection'), fc.constantFrom('keep-alive', 'close', 'garbage')) },
  // uWebSockets.js takes header names of letters, digits and `-` only (others: the `unusual-header-name` malformation).
  { weight: 1, arbitrary: fc.tuple(fc.stringMatching(/^[A-Za-z0-9-]{1,30}$/), headerValue) },
);
/** A header of KBs (past 4 KB the request is `overLimit`). */
const longHeader: fc.Arbitrary<readonly [string, string]> = fc.tuple(fc.constantFrom('X-Fuzz-Long', 'Cookie'), fc.integer({ min: 2000, max: 30_000 }).map((n) => 'c'.repeat(n)));

/**
 * A body for `method` on `route`: mostly the route's own JSON or junk when the
 * method takes one, now and then one where none belongs.
 */
function bodyFor(method: string, route: RouteTemplate | null): fc.Arbitrary<Buffer | null> {
  const none = fc.constant(null);
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') return fc.oneof({ weight: 6, arbitrary: none }, { weight: 1, arbitrary: randomBody });
  return fc.oneof(
    { weight: 8, arbitrary: route?.body ?? randomBody },
    { weight: 4, arbitrary: randomBody },
    { weight: 2, arbitrary: deepJson },
    { weight: 1, arbitrary: hugeString },
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
    { weight: 1, arbitrary: none },
  );
}

const request: fc.Arbitrary<HttpFuzzRequest> = fc
  .record({
    aim: fc.oneof({ weight: 8, arbitrary: routed }, { weight: 1, arbitrary: unknownPath.map((path) => ({ route: null, path, query: '' })) }),
    bent: sometimes(fc.nat({ max: 5 }), 12),
    methodKind: fc.nat({ max: 14 }),
    anyMethod: fc.constantFrom(...METHODS),
    garbageMethod,
    authorization,
    headers: fc.array(header, { maxLength: 4 }),
    longHeader: sometimes(longHeader, 15),
    chunkSize: sometimes(fc.integer({ min: 1, max: 4096 }), 10),
    malformation: sometimes(fc.constantFrom(...MALFORMATIONS), 12),
  })
  .chain((r) => {
    const { route } = r.aim;
    // Mostly the route's own method, else any common one, now and then a token no server knows.
    const method = r.methodKind <= 9 && route ? route.methods[r.methodKind % route.methods.length]! : r.methodKind <= 13 ? r.anyMethod : r.garbageMethod;
    return bodyFor(method, route).map((body) => {
      const path = r.bent === null ? r.aim.path : bend(r.aim.path, r.bent);
      return fuzzRequest({
        method,
        target: `${path}${r.aim.query}`,
        authorization: r.authorization,
        headers: r.longHeader ? [...r.headers, r.longHeader] : r.headers,
        body,
        chunkSize: body !== null && body.length > 0 ? r.chunkSize : null,
        malformation: r.malformation,
      });
    });
  });

/** `arbitrary` once in `every` draws, else `null`. */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, every: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: every - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });
}

/** Gives a request a short printout for fast-check's counterexamples (the request as sent, cut). */
function fuzzRequest(fields: HttpFuzzRequest): HttpFuzzRequest {
  return Object.defineProperty(fields, fc.toStringMethod, { value: () => describeRequest(fields, 300), enumerable: false });
}

/** Arbitrary HTTP requests for the whole server (see the module comment). */
export function fuzzHttpRequest(): fc.Arbitrary<HttpFuzzRequest> {
  return request;
}
