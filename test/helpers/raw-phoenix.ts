import WebSocket from 'ws';

/** A hand-driven Phoenix V2 socket (Phoenix or Supabase door), for the rules the real clients never break themselves. */
export class RawPhoenix {
  readonly #ws: WebSocket;
  readonly #frames: unknown[][] = [];
  #wake: (() => void) | null = null;
  #code = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.once('close', (code: number) => {
      this.#code = code;
    });
    ws.on('message', (data) => {
      this.#frames.push(JSON.parse(String(data)) as unknown[]);
      this.#wake?.();
    });
  }

  static connect(url: string): Promise<RawPhoenix> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new RawPhoenix(ws)));
      ws.once('error', reject);
    });
  }

  send(message: unknown[]): void {
    this.#ws.send(JSON.stringify(message));
  }

  sendText(text: string): void {
    this.#ws.send(text);
  }

  sendBinary(bytes: Buffer): void {
    this.#ws.send(bytes, { binary: true });
  }

  /** The first frame not yet taken that matches; fails loudly after 10 s. */
  async next(match: (frame: unknown[]) => boolean): Promise<unknown[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const index = this.#frames.findIndex(match);
      if (index >= 0) return this.#frames.splice(index, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame; have ${JSON.stringify(this.#frames)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Resolves with the close code when the server closes the socket; fails loudly after `timeoutMs`. */
  closed(timeoutMs: number): Promise<number> {
    if (this.#ws.readyState === WebSocket.CLOSED) return Promise.resolve(this.#code);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs);
      this.#ws.once('close', (code: number) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  isClosed(): boolean {
    return this.#ws.readyState !== WebSocket.OPEN;
  }

  close(): void {
    this.#ws.close();
  }
}

/** The HTTP status a WebSocket upgrade to `url` gets (101 when it opens). */
export function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('error', () => {});
  });
}
