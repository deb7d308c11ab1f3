/**
 * Arbitrary frames for the Phoenix door (`/socket/websocket`, vsn 2.0.0):
 * well-formed messages on every kind of topic and event (joins with random
 * payloads, pushes with stale and current join_refs, leaves), arrays of the
 * wrong length, wrong field types, garbage text, and binary frames whose
 * lengths lie. {@link PhoenixFuzzRunner} sends them from several connections
 * and checks that every reply is coded (never INTERNAL), that no connection
 * is closed, and that each connection still answers, in order, after.
 */
import fc from 'fast-check';
import WebSocket from 'ws';

export type PhoenixFuzzFrame =
  | { readonly connection: number; readonly kind: 'message'; readonly message: readonly unknown[] }
  | { readonly connection: number; readonly kind: 'text'; readonly text: string }
  | { readonly connection: number; readonly kind: 'binary'; readonly bytes: Uint8Array };

const REF_PREFIX = 'fz';
const topics = fc.oneof(
  fc.constantFrom('table:notes', 'table:nope', 'topic:fz-chat', 'topic:nope', 'rowcast', 'phoenix', 'realtime:x', 'table:', 'topic:a,b'),
  fc.string({ maxLength: 20 }),
);
const events = fc.oneof(
  fc.constantFrom('phx_join', 'phx_leave', 'heartbeat', 'new-message', 'history', 'presence', 'track', 'untrack', 'list-topic', 'get-topic', 'create-topic', 'destroy-topic', 'refresh-token', 'bogus'),
  fc.string({ maxLength: 20 }),
);
/** Payloads of every shape the Phoenix door's events take, and anything (shared with fuzz/supabase-frames.ts). */
export const payloads = fc.oneof(
  fc.constant({}),
  fc.record({ filter: fc.anything({ maxDepth: 3 }) }, { requiredKeys: [] }),
  fc.record({ since: fc.oneof(fc.string(), fc.constant('0000000000000000-00000000')), events: fc.anything({ maxDepth: 2 }) }, { requiredKeys: [] }),
  fc.record({ message: fc.jsonValue({ maxDepth: 4 }), limit: fc.integer(), before: fc.anything({ maxDepth: 1 }) }, { requiredKeys: [] }),
  fc.record({ name: fc.string({ maxLength: 40 }), topicName: fc.string({ maxLength: 40 }), token: fc.string() }, { requiredKeys: [] }),
  fc.record({ meta: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), fc.anything({ maxDepth: 2 })) }, { requiredKeys: [] }),
  fc.anything({ maxDepth: 4 }),
);
/** join_ref and ref values: null, small numbers as strings, and anything (shared with fuzz/supabase-frames.ts). */
export const refs = fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 50 }).map((n) => `${n}`), fc.anything({ maxDepth: 1 }));

/** One arbitrary frame for one of `connections` connections. */
export function phoenixFuzzFrame(connections: number): fc.Arbitrary<PhoenixFuzzFrame> {
  const connection = fc.nat({ max: connections - 1 });
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ connection, kind: fc.constant('message' as const), message: fc.tuple(refs, refs, topics, events, payloads) }) },
    { weight: 1, arbitrary: fc.record({ connection, kind: fc.constant('message' as const), message: fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 7 }) }) },
    { weight: 1, arbitrary: fc.record({ connection, kind: fc.constant('text' as const), text: fc.oneof(fc.string(), fc.json(), fc.constant('['.repeat(100))) }) },
    { weight: 1, arbitrary: fc.record({ connection, kind: fc.constant('binary' as const), bytes: fc.uint8Array({ maxLength: 64 }) }) },
  );
}

class Connection {
  readonly socket: WebSocket;
  readonly replies = new Map<string, unknown>();
  readonly problems: string[] = [];
  /** Replies seen, by `ok` or the error's code. */
  readonly outcomes = new Map<string, number>();
  closeCode: number | null = null;
  #wake: (() => void) | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      let frame: unknown;
      try {
        frame = JSON.parse(String(data));
      } catch {
        this.problems.push(`a frame that is not JSON: ${String(data).slice(0, 200)}`);
        return;
      }
      if (!Array.isArray(frame) || frame.length !== 5) {
        this.problems.push(`a frame that is not [join_ref, ref, topic, event, payload]: ${String(data).slice(0, 200)}`);
        return;
      }
      const [, ref, , event, payload] = frame as [unknown, unknown, unknown, string, { status?: string; response?: { reason?: unknown } }];
      const reason = payload?.response?.reason;
      if (event === 'phx_reply' && typeof reason === 'string' && reason.startsWith('INTERNAL')) this.problems.push(`INTERNAL: ${String(data).slice(0, 300)}`);
      if (event === 'phx_reply') {
        const outcome = payload?.status === 'ok' ? 'ok' : typeof reason === 'string' ? reason.split(':')[0]! : 'error';
        this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
      }
      if (typeof ref === 'string' && ref.startsWith(REF_PREFIX)) this.replies.set(ref, payload);
      this.#wake?.();
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      this.#wake?.();
    });
  }

  static open(url: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.once('open', () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  /** Waits for the reply to `ref`; throws after `timeoutMs`. */
  async reply(ref: string, timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (!this.replies.has(ref)) {
      if (this.closeCode !== null) throw new Error(`closed with ${this.closeCode}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply to ${ref} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.replies.get(ref);
  }
}

/** Phoenix connections (vsn 2.0.0) that send fuzz frames and check what comes back. */
export class PhoenixFuzzRunner {
  readonly #urls: readonly string[];
  #connections: Connection[] = [];
  #next = 0;
  sent = 0;

  constructor(urls: readonly string[]) {
    this.#urls = urls;
  }

  async open(): Promise<void> {
    this.#connections = await Promise.all(this.#urls.map((url) => Connection.open(url)));
  }

  /** Replies seen on every connection so far, by `ok` or error code. */
  outcomes(): Map<string, number> {
    const all = new Map<string, number>();
    for (const connection of this.#connections) for (const [outcome, count] of connection.outcomes) all.set(outcome, (all.get(outcome) ?? 0) + count);
    return all;
  }

  /**
   * Sends `frames`, then a barrier on every connection: a `phx_leave` of a
   * topic never joined, which is answered ok in order behind everything sent
   * before it (a heartbeat would not do: it is answered at once). Returns
   * what went wrong.
   */
  async run(frames: readonly PhoenixFuzzFrame[], timeoutMs = 30_000): Promise<string[]> {
    for (const frame of frames) {
      const connection = this.#connections[frame.connection % this.#connections.length]!;
      this.sent++;
      if (frame.kind === 'binary') connection.socket.send(frame.bytes, { binary: true });
      else connection.socket.send(frame.kind === 'text' ? frame.text : JSON.stringify(frame.message));
    }
    const problems: string[] = [];
    await Promise.all(
      this.#connections.map(async (connection, i) => {
        const ref = `${REF_PREFIX}${this.#next++}`;
        connection.socket.send(JSON.stringify([null, ref, 'fz:barrier', 'phx_leave', {}]));
        try {
          const reply = (await connection.reply(ref, timeoutMs)) as { status?: string };
          if (reply.status !== 'ok') problems.push(`connection ${i}: the barrier was answered ${JSON.stringify(reply)}`);
        } catch (error) {
          problems.push(`connection ${i}: ${(error as Error).message}`);
        }
        connection.replies.clear();
      }),
    );
    for (const [i, connection] of this.#connections.entries()) {
      problems.push(...connection.problems.splice(0).map((p) => `connection ${i}: ${p}`));
      if (connection.closeCode !== null) this.#connections[i] = await Connection.open(this.#urls[i]!);
    }
    return problems;
  }

  close(): void {
    for (const connection of this.#connections) connection.socket.close();
  }
}
