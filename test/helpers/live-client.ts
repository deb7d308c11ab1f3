import WebSocket from 'ws';

/** How to open a connection besides its URL: subprotocols, headers (`Authorization`), `Origin`. */
export interface ConnectOptions {
  readonly protocols?: string[];
  readonly headers?: Record<string, string>;
  readonly origin?: string;
  /** PEM certificate(s) to trust, for wss://. */
  readonly ca?: string;
}

/** A frame as the server sent it, parsed. */
export type Frame = Record<string, any>;

/** Fails loudly when a wait runs out. */
const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A /live client for tests: keeps every frame in order and lets a test wait
 * for the frame it expects (never for a fixed time).
 */
export class LiveClient {
  readonly frames: Frame[] = [];
  readonly socket: WebSocket;
  /** Index of the first frame not taken yet. */
  #cursor = 0;
  readonly #taken = new Set<number>();
  #waiters: Array<() => void> = [];
  #nextId = 1;
  closeCode: number | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
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
    const session = await client.next((f) => f['type'] === 'session');
    if (session['status'] !== 'open') throw new Error('no session frame');
    return client;
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
  async request(method: string, attributes: Record<string, unknown> = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Frame> {
    const id = this.#nextId++;
    this.socket.send(JSON.stringify({ id, method, attributes }));
    return this.next((f) => (f['type'] === 'response' || f['type'] === 'pong') && f['id'] === id, timeoutMs);
  }

  /** Sends a request and returns its response `data`; throws unless the server says ok. */
  async call(method: string, attributes: Record<string, unknown> = {}): Promise<any> {
    const response = await this.request(method, attributes);
    if (!response['ok']) throw new Error(`${method} failed: ${JSON.stringify(response['error'])}`);
    return response['data'];
  }

  /** Subscribes and throws unless the server says ok. */
  async subscribe(topicName: string, extra: Record<string, unknown> = {}): Promise<Frame> {
    const response = await this.request('subscribe', { topicName, ...extra });
    if (!response['ok']) throw new Error(`subscribe ${topicName} failed: ${JSON.stringify(response['error'])}`);
    return response;
  }

  /**
   * The first frame not taken yet that matches, waiting up to `timeoutMs`.
   * Frames it passes over stay available to later calls (a response awaited
   * by `request` does not swallow the event that arrived before it).
   */
  async next(match: (frame: Frame) => boolean = () => true, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Frame> {
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
  async events(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Frame[]> {
    const events: Frame[] = [];
    while (events.length < count) events.push(await this.next((f) => f['type'] === 'event', timeoutMs));
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
