import WebSocket from 'ws';
import type { ErrorBody, ErrorResponseFrame, EventFrame, Method, OkResponseFrame, RequestId, ResponseData, ServerFrame, SessionData } from '../../src/protocol/index.js';

export type { ErrorBody, EventFrame, ServerFrame };

/** How to open a connection besides its URL: subprotocols, headers (`Authorization`), `Origin`. */
export interface ConnectOptions {
  readonly protocols?: string[];
  readonly headers?: Record<string, string>;
  readonly origin?: string;
  /** PEM certificate(s) to trust, for wss://. */
  readonly ca?: string;
}

/** The answer to a request: its response (ok or refused), or `pong` for `ping`. */
export type Answer = OkResponseFrame | ErrorResponseFrame | Extract<ServerFrame, { type: 'pong' }>;

/** The successful response to `method`. */
export type OkAnswer<M extends Method> = Extract<OkResponseFrame, { method: M }>;

/** Whether `frame` is an event (a row change or a custom topic's message). */
export const isEvent = (frame: ServerFrame): frame is EventFrame => frame.type === 'event';

/** A predicate for the events of `topic`. */
export const eventOn = (topic: string) => (frame: ServerFrame): frame is EventFrame => frame.type === 'event' && frame.topic === topic;

/** The frames that name `topic` (its events, dropped-event errors and revocations), in order. */
export function framesOn(frames: readonly ServerFrame[], topic: string): ServerFrame[] {
  return frames.filter((frame) => 'topic' in frame && frame.topic === topic);
}

/** The request id `frame` answers (a response's or a pong's), if any. */
export const idOf = (frame: ServerFrame): RequestId | undefined => ('id' in frame ? frame.id : undefined);

/** Whether `frame` is a successful response. */
export const isOk = (frame: ServerFrame): frame is OkResponseFrame => frame.type === 'response' && frame.ok;

/** The data of `frame` if it is the successful response to `method`, else `null`. */
export function dataOf<M extends Method>(frame: ServerFrame, method: M): ResponseData[M] | null {
  if (frame.type !== 'response' || !frame.ok || frame.method !== method) return null;
  // Checked to be the answer to `method`; TypeScript does not narrow the union by a generic.
  return frame.data as ResponseData[M];
}

/** The error of a refused request; throws (failing the test) when `frame` is anything else. */
export function errorOf(frame: ServerFrame): ErrorBody {
  if (frame.type === 'response' && !frame.ok) return frame.error;
  throw new Error(`expected a refused request, got ${JSON.stringify(frame)}`);
}

/**
 * An event's `attributes` (the protocol leaves them `unknown`: a row, or a
 * message's `{message, sender, createdAt}`); throws when they are not an object.
 */
export function attributesOf(event: EventFrame): Readonly<Record<string, unknown>> {
  const { attributes } = event.data;
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) throw new Error(`attributes are not an object: ${JSON.stringify(event)}`);
  return attributes as Record<string, unknown>;
}

/** Fails loudly when a wait runs out. */
const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A /live client for tests: keeps every frame in order and lets a test wait
 * for the frame it expects (never for a fixed time).
 */
export class LiveClient {
  readonly frames: ServerFrame[] = [];
  readonly socket: WebSocket;
  /** Index of the first frame not taken yet. */
  #cursor = 0;
  readonly #taken = new Set<number>();
  #waiters: Array<() => void> = [];
  #nextId = 1;
  #session: SessionData | null = null;
  closeCode: number | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as ServerFrame);
      this.#wake();
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      this.#wake();
    });
    socket.on('error', () => {}); // the close that follows says what happened
  }

  /** Opens a connection and waits for its `session` frame. */
  static async connect(url: string, options: ConnectOptions = {}): Promise<LiveClient> {
    const socket = new WebSocket(url, options.protocols, { headers: options.headers, origin: options.origin, ...(options.ca ? { ca: options.ca } : {}) });
    const client = new LiveClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
    });
    const session = await client.next((f) => f.type === 'session');
    if (session.type !== 'session' || session.status !== 'open') throw new Error('no session frame');
    client.#session = session.data;
    return client;
  }

  /** The `data` of the connection's `session` frame. */
  get session(): SessionData {
    if (this.#session === null) throw new Error('not connected yet');
    return this.#session;
  }

  /** Resolves with the close code once the server closes the connection; rejects after `timeoutMs`. */
  async closed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === null) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the connection was not closed within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closeCode;
  }

  /** Sends a raw text frame. */
  sendRaw(text: string): void {
    this.socket.send(text);
  }

  /** Sends a request and waits (up to `timeoutMs`) for the response with its id. */
  async request(method: string, attributes: Record<string, unknown> = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Answer> {
    const id = this.#nextId++;
    this.socket.send(JSON.stringify({ id, method, attributes }));
    return this.next((f): f is Answer => (f.type === 'response' || f.type === 'pong') && f.id === id, timeoutMs);
  }

  /** Sends a request and returns its response `data`; throws unless the server says ok. */
  async call<M extends Method>(method: M, attributes: Record<string, unknown> = {}): Promise<ResponseData[M]> {
    const response = await this.request(method, attributes);
    const data = dataOf(response, method);
    if (data === null) throw new Error(`${method} failed: ${JSON.stringify(response)}`);
    return data;
  }

  /** Subscribes and throws unless the server says ok. */
  async subscribe(topicName: string, extra: Record<string, unknown> = {}): Promise<OkAnswer<'subscribe'>> {
    const response = await this.request('subscribe', { topicName, ...extra });
    if (response.type !== 'response' || !response.ok || response.method !== 'subscribe') throw new Error(`subscribe ${topicName} failed: ${JSON.stringify(response)}`);
    return response;
  }

  /**
   * The first frame not taken yet that matches, waiting up to `timeoutMs`.
   * Frames it passes over stay available to later calls (a response awaited
   * by `request` does not swallow the event that arrived before it).
   */
  async next<F extends ServerFrame>(match: (frame: ServerFrame) => frame is F, timeoutMs?: number): Promise<F>;
  async next(match?: (frame: ServerFrame) => boolean, timeoutMs?: number): Promise<ServerFrame>;
  async next(match: (frame: ServerFrame) => boolean = () => true, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = this.#cursor; i < this.frames.length; i++) {
        if (this.#taken.has(i) || !match(this.frames[i]!)) continue;
        this.#taken.add(i);
        while (this.#taken.has(this.#cursor)) this.#taken.delete(this.#cursor++);
        return this.frames[i]!;
      }
      if (this.closeCode !== null) throw new Error(`connection closed (${this.closeCode}) while waiting for a frame`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; last frames: ${JSON.stringify(this.frames.slice(-3))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next `count` event frames, in order. */
  async events(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<EventFrame[]> {
    const events: EventFrame[] = [];
    while (events.length < count) events.push(await this.next(isEvent, timeoutMs));
    return events;
  }

  close(): void {
    this.socket.close();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Tries an upgrade and returns the HTTP status and body of a refusal (or 101). */
export async function upgradeStatus(url: string, protocols?: string[], options: Omit<ConnectOptions, 'protocols'> = {}): Promise<{ status: number; body: string }> {
  const socket = new WebSocket(url, protocols, { headers: options.headers, origin: options.origin });
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      socket.close();
      resolve({ status: 101, body: '' });
    });
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    socket.once('error', reject);
  });
}
