/**
 * Fuzzing the /live socket (issue 6): arbitrary frames from several
 * connections at once — random text and bytes, random JSON, valid methods
 * with random attributes, huge strings, deep nesting, unicode edge cases —
 * and the rule they are checked against: every frame that is an object with
 * an id gets exactly one response with that id, with a DESIGN.md §3 code
 * other than INTERNAL when it fails, and no connection is closed.
 *
 * Used by test/fuzz.test.ts (a few thousand frames) and `npm run fuzz` (a
 * long campaign).
 */
import fc from 'fast-check';
import WebSocket from 'ws';

/** The codes of DESIGN.md §3 a garbage frame may earn (INTERNAL would be a bug). */
const EXPECTED_CODES = new Set([
  'INVALID_MESSAGE',
  'UNKNOWN_METHOD',
  'INVALID_ATTRIBUTES',
  'TOPIC_NOT_FOUND',
  'FORBIDDEN',
  'TOPIC_EXISTS',
  'READ_ONLY_TOPIC',
  'TOPIC_FULL',
  'LIMIT_EXCEEDED',
  'RATE_LIMIT_EXCEEDED',
  'TOKEN_INVALID',
]);

const METHODS = ['subscribe', 'unsubscribe', 'list-topic', 'get-topic', 'new-message', 'create-topic', 'destroy-topic', 'history', 'refresh-token', 'ping'];

/** A frame to send: `request` frames get an id of the runner's when sent. */
export type FuzzFrame =
  | { readonly kind: 'request'; readonly body: Record<string, unknown>; readonly stringId: boolean; readonly connection: number }
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
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.dictionary(text, value, { maxKeys: 4 }) },
  { weight: 1, arbitrary: value },
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
 * one token per connection (some admins make `create-topic` and friends
 * reach their checks).
 */
export class FuzzRunner {
  readonly #url: string;
  readonly #tokens: readonly string[];
  #connections: FuzzConnection[] = [];
  #nextId = 0;
  /** Frames sent so far. */
  sent = 0;

  constructor(url: string, tokens: readonly string[]) {
    this.#url = url;
    this.#tokens = tokens;
  }

  async open(): Promise<void> {
    this.#connections = await Promise.all(this.#tokens.map((token) => FuzzConnection.open(`${this.#url}?token=${token}`)));
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
      if (frame.kind === 'binary') {
        connection.socket.send(frame.bytes, { binary: true });
      } else if (frame.kind === 'text') {
        connection.socket.send(frame.text);
      } else {
        const n = this.#nextId++;
        const id = `${ID_PREFIX}${n}`;
        const text = JSON.stringify({ ...frame.body, id: frame.stringId ? id : NUMBER_IDS + n });
        connection.requests.set(id, text.length > 600 ? `${text.slice(0, 600)}… (${text.length} characters)` : text);
        connection.socket.send(text);
        expected.push({ connection, id });
      }
    }
    const barriers = this.#connections.map((connection) => {
      const id = `${ID_PREFIX}${this.#nextId++}`;
      connection.socket.send(JSON.stringify({ id, method: 'ping' }));
      expected.push({ connection, id });
      return connection.answered(id, timeoutMs);
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
