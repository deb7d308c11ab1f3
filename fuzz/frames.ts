/**
 * Fuzzing the /live socket (issues 6 and 16): arbitrary frames from several
 * connections at once — random text and bytes, random JSON, valid methods
 * with random attributes, huge strings, deep nesting, unicode edge cases,
 * large and numerous distinct filters (many filter groups), tokens with bad
 * claims through `refresh-token`, and floods of slow requests — and the
 * rule they are checked against: every frame that is an object with an id
 * gets exactly one response with that id, with a documented code other than
 * INTERNAL when it fails, and no connection is closed.
 *
 * Used by test/fuzz.test.ts (a few thousand frames) and `npm run fuzz` (a
 * long campaign).
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { ERROR_CODES } from '../src/protocol/index.js';

/** The error codes a garbage frame may earn: every one but INTERNAL (a bug), NOT_FOUND (HTTP) and EVENT_DROPPED (to admins). */
const EXPECTED_CODES: ReadonlySet<string> = new Set(ERROR_CODES.filter((code) => code !== 'INTERNAL' && code !== 'NOT_FOUND' && code !== 'EVENT_DROPPED'));

const METHODS = ['subscribe', 'unsubscribe', 'list-topic', 'get-topic', 'new-message', 'create-topic', 'destroy-topic', 'history', 'refresh-token', 'track', 'untrack', 'presence', 'ping'];

/** A frame to send: `request` frames get an id of the runner's when sent. */
export type FuzzFrame =
  | { readonly kind: 'request'; readonly body: Record<string, unknown>; readonly stringId: boolean; readonly connection: number }
  /** `refresh-token` with a token for these claims, signed with the server's secret (`SELF` in `sub` stands for the connection's own). */
  | { readonly kind: 'refresh'; readonly claims: Record<string, unknown>; readonly connection: number }
  /** The same request `count` times in a row, each with its own id: a flood of (slow) requests. */
  | { readonly kind: 'flood'; readonly body: Record<string, unknown>; readonly count: number; readonly connection: number }
  | { readonly kind: 'text'; readonly text: string; readonly connection: number }
  | { readonly kind: 'binary'; readonly bytes: Uint8Array; readonly connection: number };

const edgeStrings = fc.constantFrom('', '\u0000', '\uFEFF', '\u202E', '\uD800', '\uDFFF', '𝕏𝕐', 'e\u0301', '\r\n', '"', '\\', 'notes', 'notes,notes', 'notes, nope', ',', '__proto__', 'constructor');
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), edgeStrings);
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: text },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }).map((depth) => nest(depth)) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 60_000 }).map((n) => 'x'.repeat(n)) },
);
const seqLike = fc.oneof(
  fc.tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat()).map(([lsn, i]) => `${lsn.toString(16).toUpperCase().padStart(16, '0')}-${i.toString(16).toUpperCase().padStart(8, '0')}`),
  text,
);
const condition = fc.dictionary(fc.constantFrom('eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in', 'like'), value, { maxKeys: 3 });
const attributes: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      {
        topicName: fc.oneof(edgeStrings, text),
        filter: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom('id', 'body'), text), fc.oneof(condition, value), { maxKeys: 3 }), value),
        events: fc.oneof(fc.array(fc.constantFrom('create', 'update', 'delete', 'x')), value),
        since: seqLike,
        name: text,
        message: value,
        history: fc.oneof(fc.integer(), value),
        limit: fc.oneof(fc.integer(), value),
        before: value,
        token: text,
        readers: fc.oneof(fc.constantFrom('anyone', 'authenticated', 'admin'), value),
        meta: fc.oneof(fc.dictionary(text, value, { maxKeys: 4 }), value),
        presence: fc.oneof(fc.boolean(), value),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.dictionary(text, value, { maxKeys: 4 }) },
  { weight: 1, arbitrary: value },
);
/** Subscribes to `notes` with filters near and past every bound: many values, long ones, each batch distinct (new groups). */
const filterSubscribe = fc
  .record({ values: fc.integer({ min: 1, max: 150 }), length: fc.integer({ min: 1, max: 400 }), seed: fc.nat(), text: fc.boolean(), events: fc.boolean() })
  .map(({ values, length, seed, text: onText, events }) => ({
    method: 'subscribe',
    attributes: {
      topicName: 'notes',
      filter: onText
        ? { body: { in: Array.from({ length: values }, (_, i) => `${seed}-${i}-`.padEnd(length, 'x')) } }
        : { id: { in: Array.from({ length: values }, (_, i) => seed + i) } },
      ...(events ? { events: ['create'] } : {}),
    },
  }));

/** The connection's own `sub` in generated claims. */
export const SELF = '\u0000self';

/** Claims for `refresh-token`: some well-formed, most not (bad `sub`, groups that are objects, lone surrogates, too many). */
const claims = fc.record(
  {
    sub: fc.constantFrom<unknown>(SELF, SELF, '', 'a|\uD800', '#\uDFFF%', 'x'.repeat(300), { toString: 1 }, 42, null, 'someone-else'),
    groups: fc.constantFrom<unknown>(['g'], [{ toString: 1 }], ['ok', 'b|\uD800'], Array.from({ length: 1001 }, (_, i) => i), 'g', [[]], []),
    squads: fc.constantFrom<unknown>([{ toString: 1 }], ['#%|']),
    role: fc.constantFrom<unknown>('user', { admin: true }, 7),
    exp: fc.constantFrom<unknown>(Math.floor(Date.now() / 1000) + 12 * 3600, 'soon'),
  },
  { requiredKeys: ['sub'] },
);

/** Slow requests: a message stored on a topic with history answers once the stream delivered it; a subscribe waits for the stream. */
const slowRequest = fc.constantFrom<Record<string, unknown>>(
  { method: 'new-message', attributes: { topicName: 'fz-chat', message: { text: 'flood' } } },
  { method: 'subscribe', attributes: { topicName: 'notes' } },
  { method: 'subscribe', attributes: { topicName: 'fz-chat', since: '0000000000000001-00000000' } },
);

const request = fc.record({
  method: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: text }, { weight: 1, arbitrary: value }),
  attributes: fc.option(attributes, { freq: 8, nil: undefined }),
  extra: fc.dictionary(text, value, { maxKeys: 2 }),
});

/** Frames for `connections` connections. */
export function fuzzFrame(connections: number): fc.Arbitrary<FuzzFrame> {
  const connection = fc.nat({ max: connections - 1 });
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({ request, stringId: fc.boolean(), connection }).map(({ request: r, stringId, connection: c }) => {
        const body: Record<string, unknown> = { ...r.extra, method: r.method };
        if (r.attributes !== undefined) body['attributes'] = r.attributes;
        return { kind: 'request' as const, body, stringId, connection: c };
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ body: filterSubscribe, stringId: fc.boolean(), connection }).map(({ body, stringId, connection: c }) => ({ kind: 'request' as const, body, stringId, connection: c })),
    },
    { weight: 1, arbitrary: fc.record({ claims, connection }).map(({ claims: cl, connection: c }) => ({ kind: 'refresh' as const, claims: cl, connection: c })) },
    {
      weight: 1,
      arbitrary: fc.record({ body: slowRequest, count: fc.integer({ min: 5, max: 60 }), connection }).map(({ body, count, connection: c }) => ({ kind: 'flood' as const, body, count, connection: c })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({
          text: fc.oneof(
            text,
            fc.jsonValue().map((v) => JSON.stringify(v)),
            fc.integer({ min: 1, max: 100_000 }).map((n) => '['.repeat(n)),
            fc.integer({ min: 1, max: 5000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
            fc.constantFrom('{"id":1,"method":"ping"', 'null', '{}', '[]', '"ping"', '{"method":"ping","attributes":[]}', '{"id":{},"method":"ping"}'),
          ),
          connection,
        })
        .map(({ text: t, connection: c }) => ({ kind: 'text' as const, text: t, connection: c })),
    },
    {
      weight: 1,
      arbitrary: fc.record({ bytes: fc.uint8Array({ maxLength: 4096 }), connection }).map(({ bytes, connection: c }) => ({ kind: 'binary' as const, bytes, connection: c })),
    },
  );
}

function nest(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

/** One fuzzing connection and what it was answered. */
class FuzzConnection {
  readonly socket: WebSocket;
  /** Response counts by id (runner ids only). */
  readonly answers = new Map<string, number>();
  /** Ids answered `pong` (a barrier ping that ran, not one refused for a full queue). */
  readonly pongs = new Set<string>();
  readonly problems: string[] = [];
  /** What was sent under each unanswered id (the start of it), to name a failing frame. */
  readonly requests = new Map<string, string>();
  closeCode: number | null = null;
  #waiting = new Map<string, () => void>();

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, any>;
      if (frame['type'] !== 'response' && frame['type'] !== 'pong') return;
      const id = frame['id'];
      if (typeof id !== 'string' || !id.startsWith(ID_PREFIX)) {
        if (typeof id === 'number' && id >= NUMBER_IDS) return this.#answered(`${ID_PREFIX}${id - NUMBER_IDS}`, frame);
        return; // an id that came inside a random frame
      }
      this.#answered(id, frame);
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      for (const wake of this.#waiting.values()) wake();
    });
    socket.on('error', () => {});
  }

  static async open(url: string, options: WebSocket.ClientOptions = {}): Promise<FuzzConnection> {
    const socket = new WebSocket(url, { maxPayload: 256 * 1024 * 1024, ...options });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new FuzzConnection(socket);
  }

  #answered(id: string, frame: Record<string, any>): void {
    this.answers.set(id, (this.answers.get(id) ?? 0) + 1);
    if (frame['type'] === 'pong') this.pongs.add(id);
    if (frame['ok'] === false) {
      const code = frame['error']?.code;
      if (!EXPECTED_CODES.has(code)) {
        this.problems.push(`${id}: error code ${JSON.stringify(code)}: ${frame['error']?.message}; the frame: ${this.requests.get(id)}`);
      }
    }
    this.#waiting.get(id)?.();
  }

  /** Resolves once `id` is answered, or the connection closed; rejects after `timeoutMs`. */
  answered(id: string, timeoutMs: number): Promise<void> {
    if (this.answers.has(id) || this.closeCode !== null) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${id} within ${timeoutMs} ms`)), timeoutMs);
      this.#waiting.set(id, () => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve();
      });
    });
  }
}

const ID_PREFIX = 'fz-';
/** Numeric ids of the runner start here (a random frame's number will hardly be one). */
const NUMBER_IDS = 9_000_000_000_000;

/**
 * Connections that send fuzz frames and check the answers. `tokens` gives
 * one token per connection; the first must be an admin's (it makes the
 * `fz-chat` topic the floods write to, and `create-topic` and friends reach
 * their checks). `sign` signs the claims of `refresh` frames with the
 * server's secret (without it they are sent as garbage text).
 */
export class FuzzRunner {
  readonly #url: string;
  readonly #tokens: readonly string[];
  readonly #sign: ((claims: Record<string, unknown>) => string) | undefined;
  #connections: FuzzConnection[] = [];
  #nextId = 0;
  /** Frames sent so far. */
  sent = 0;

  constructor(url: string, tokens: readonly string[], sign?: (claims: Record<string, unknown>) => string) {
    this.#url = url;
    this.#tokens = tokens;
    this.#sign = sign;
  }

  async open(): Promise<void> {
    this.#connections = await Promise.all(this.#tokens.map((token) => FuzzConnection.open(`${this.#url}?token=${token}`)));
    const admin = this.#connections[0]!;
    const id = `${ID_PREFIX}setup`;
    admin.socket.send(JSON.stringify({ id, method: 'create-topic', attributes: { name: 'fz-chat', history: 10, presence: true } }));
    await admin.answered(id, 10_000);
    admin.answers.delete(id);
  }

  /** Sends one request with a fresh id of the runner's, and notes that it must be answered once. */
  #send(connection: FuzzConnection, body: Record<string, unknown>, stringId: boolean, expected: Array<{ connection: FuzzConnection; id: string }>): void {
    const n = this.#nextId++;
    const id = `${ID_PREFIX}${n}`;
    const text = JSON.stringify({ ...body, id: stringId ? id : NUMBER_IDS + n });
    connection.requests.set(id, text.length > 600 ? `${text.slice(0, 600)}… (${text.length} characters)` : text);
    connection.socket.send(text);
    expected.push({ connection, id });
  }

  /** A token for `claims`, the connection's own `sub` put in for {@link SELF}. */
  #token(claims: Record<string, unknown>, connection: number): string {
    if (!this.#sign) return JSON.stringify(claims);
    const own = JSON.parse(Buffer.from(this.#tokens[connection]!.split('.')[1]!, 'base64url').toString()) as { sub?: unknown };
    try {
      return this.#sign(claims['sub'] === SELF ? { ...claims, sub: own.sub } : claims);
    } catch {
      return JSON.stringify(claims); // claims the signing library refuses (an `exp` that is not a number): garbage for the server
    }
  }

  /**
   * Sends `frames`, then a ping on every connection as a barrier (requests of
   * a connection are answered in order), and returns what went wrong: a
   * request answered not exactly once, an unexpected code, a closed
   * connection.
   */
  async run(frames: readonly FuzzFrame[], timeoutMs = 30_000): Promise<string[]> {
    const expected: Array<{ connection: FuzzConnection; id: string }> = [];
    for (const frame of frames) {
      const connection = this.#connections[frame.connection % this.#connections.length]!;
      this.sent++;
      switch (frame.kind) {
        case 'binary':
          connection.socket.send(frame.bytes, { binary: true });
          break;
        case 'text':
          connection.socket.send(frame.text);
          break;
        case 'request':
          this.#send(connection, frame.body, frame.stringId, expected);
          break;
        case 'refresh':
          this.#send(connection, { method: 'refresh-token', attributes: { token: this.#token(frame.claims, frame.connection % this.#connections.length) } }, true, expected);
          break;
        case 'flood':
          for (let i = 0; i < frame.count; i++) this.#send(connection, frame.body, true, expected);
          this.sent += frame.count - 1;
          break;
      }
    }
    // A ping on every connection as a barrier. A connection whose queue is full refuses it at once
    // (LIMIT_EXCEEDED, MAX_PENDING_REQUESTS): then it is sent again once that answer is in, until one runs.
    const barriers = this.#connections.map(async (connection) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const id = `${ID_PREFIX}${this.#nextId++}`;
        connection.socket.send(JSON.stringify({ id, method: 'ping' }));
        expected.push({ connection, id });
        await connection.answered(id, Math.max(1, deadline - Date.now()));
        if (connection.pongs.delete(id) || connection.closeCode !== null) return;
        if (Date.now() > deadline) throw new Error(`no barrier ping ran within ${timeoutMs} ms: the queue stayed full`);
        await new Promise((resolve) => setTimeout(resolve, 20)); // let the queue drain before asking again
      }
    });
    const problems: string[] = [];
    await Promise.all(barriers).catch((error: Error) => problems.push(error.message));
    for (const { connection, id } of expected) {
      const count = connection.answers.get(id) ?? 0;
      if (count !== 1 && connection.closeCode === null) problems.push(`${id} was answered ${count} times`);
      connection.answers.delete(id);
      connection.requests.delete(id);
    }
    for (const [i, connection] of this.#connections.entries()) {
      problems.push(...connection.problems.splice(0));
      if (connection.closeCode !== null) {
        problems.push(`connection ${i} was closed with ${connection.closeCode}`);
        this.#connections[i] = await FuzzConnection.open(`${this.#url}?token=${this.#tokens[i]}`);
      }
    }
    return problems;
  }

  close(): void {
    for (const connection of this.#connections) connection.socket.close();
  }
}
