/**
 * HTTP/1.1 on a raw TCP socket, for the HTTP fuzzer (fuzz/http.ts): Node's
 * own client refuses to send malformed requests, and hides how a server
 * answers them (or does not). A {@link WireConnection} sends bytes exactly as
 * given and reads answers off the socket with {@link AnswerParser}: status
 * line, headers, a `content-length` or chunked body, interim 1xx answers.
 */
import net from 'node:net';

/** One answer as read off the wire. */
export interface HttpAnswer {
  readonly status: number;
  /** Header names in lower case; a repeated header's values joined with `, `. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
  /** Statuses of interim (1xx) answers that came first, such as `100 Continue`. */
  readonly interim: readonly number[];
}

/** What became of one request on the wire. */
export type Outcome =
  | { readonly kind: 'answer'; readonly answer: HttpAnswer }
  /** The connection ended (FIN, reset, refused) before a complete answer; `partial` bytes of one had come. */
  | { readonly kind: 'closed'; readonly partial: number; readonly error: string | null }
  /** Neither an answer nor a close within the wait. */
  | { readonly kind: 'silent'; readonly partial: number }
  /** Bytes that are not an HTTP/1.1 answer. */
  | { readonly kind: 'garbled'; readonly reason: string };

/** How to read the answer to one request. */
export interface ExchangeOptions {
  /**
   * Read until the server closes, and take every byte after the head as the
   * body (for HEAD, whose answer has a `content-length` but must have no
   * body: this shows whether it has one anyway).
   */
  readonly untilClose?: boolean;
  /** Half-close the connection after the request (a malformed request: the server's close ends the wait). */
  readonly halfClose?: boolean;
  readonly timeoutMs: number;
}

/** Bytes that cannot be an HTTP/1.1 answer. */
export class NotHttp extends Error {}

const HEAD_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
/** A head this long without its end is not an answer. */
const MAX_HEAD_BYTES = 64 * 1024;

/** Parses the answers of one connection, in order, from the bytes pushed into it. */
export class AnswerParser {
  #buffer: Buffer = Buffer.alloc(0);
  #interim: number[] = [];

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
  }

  /** Drops the bytes not yet part of an answer; returns how many there were. */
  discard(): number {
    const n = this.#buffer.length;
    this.#buffer = Buffer.alloc(0);
    return n;
  }

  /** Bytes received and not yet part of a complete answer. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /**
   * The next complete answer, or `null` while more bytes are needed. With
   * `untilClose`, or when the answer has neither a length nor chunks, the
   * answer is complete only at `ended` (the server closed).
   *
   * @throws {@link NotHttp} when the bytes are not an HTTP/1.1 answer
   */
  take(untilClose: boolean, ended: boolean): HttpAnswer | null {
    for (;;) {
      const headEnd = this.#buffer.indexOf(HEAD_END);
      if (headEnd < 0) {
        if (this.#buffer.length > MAX_HEAD_BYTES) throw new NotHttp(`no end of head in ${this.#buffer.length} bytes`);
        if (ended && this.#buffer.length > 0) throw new NotHttp('the connection ended inside a head');
        return null;
      }
      const [statusLine, ...lines] = this.#buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
      const match = /^HTTP\/1\.[01] ([1-5]\d\d)(?: .*)?$/.exec(statusLine!);
      if (!match) throw new NotHttp(`not a status line: ${JSON.stringify(statusLine!.slice(0, 80))}`);
      const status = Number(match[1]);
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon <= 0) throw new NotHttp(`not a header line: ${JSON.stringify(line.slice(0, 80))}`);
        const name = line.slice(0, colon).toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
      }
      const rest = this.#buffer.subarray(headEnd + HEAD_END.length);
      if (status < 200) {
        this.#interim.push(status);
        this.#buffer = rest;
        continue;
      }
      const body = untilClose ? (ended ? { body: rest, used: rest.length } : null) : bodyOf(headers, rest, ended);
      if (!body) return null;
      this.#buffer = rest.subarray(body.used);
      const interim = this.#interim;
      this.#interim = [];
      return { status, headers, body: body.body, interim };
    }
  }
}

/** The body at the start of `bytes` by the answer's framing, and how many bytes it took; `null` while incomplete. */
function bodyOf(headers: ReadonlyMap<string, string>, bytes: Buffer, ended: boolean): { body: Buffer; used: number } | null {
  if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) return dechunk(bytes);
  const length = headers.get('content-length');
  if (length !== undefined) {
    if (!/^\d+$/.test(length)) throw new NotHttp(`content-length ${JSON.stringify(length)}`);
    const n = Number(length);
    return bytes.length >= n ? { body: bytes.subarray(0, n), used: n } : null;
  }
  return ended ? { body: bytes, used: bytes.length } : null;
}

function dechunk(bytes: Buffer): { body: Buffer; used: number } | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf(CRLF, at);
    if (lineEnd < 0) return null;
    const size = parseInt(bytes.subarray(at, lineEnd).toString('latin1').split(';')[0]!.trim(), 16);
    if (Number.isNaN(size)) throw new NotHttp('a chunk without a size');
    at = lineEnd + 2;
    if (size === 0) {
      // Trailer lines, if any, then an empty line.
      if (bytes.length < at + 2) return null;
      if (bytes.subarray(at, at + 2).equals(CRLF)) return { body: Buffer.concat(parts), used: at + 2 };
      const end = bytes.indexOf(HEAD_END, at);
      return end < 0 ? null : { body: Buffer.concat(parts), used: end + HEAD_END.length };
    }
    if (bytes.length < at + size + 2) return null;
    parts.push(bytes.subarray(at, at + size));
    at += size + 2;
  }
}

/**
 * One client connection. Requests go one at a time (no pipelining): each
 * {@link exchange} resolves with what became of its request. Bytes that
 * arrive while no request waits are kept in {@link stray}: a server must not
 * send what nobody asked for.
 */
export class WireConnection {
  readonly #socket: net.Socket;
  readonly #parser = new AnswerParser();
  #ended = false;
  #error: string | null = null;
  #wake: (() => void) | null = null;
  /** Bytes that came while no request was waiting, or after an answer. */
  stray = 0;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.#wake) {
        this.#parser.push(chunk);
        this.#wake();
      } else {
        this.stray += chunk.length;
      }
    });
    const end = (error?: Error) => {
      this.#ended = true;
      this.#error ??= error ? ((error as NodeJS.ErrnoException).code ?? error.message) : null;
      this.#wake?.();
    };
    socket.on('end', () => end());
    socket.on('close', () => end());
    socket.on('error', end);
  }

  /** Connects; rejects when the server does not accept the connection. */
  static open(host: string, port: number, timeoutMs = 10_000): Promise<WireConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no connection to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new WireConnection(socket));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to ${host}:${port}: ${error.code ?? error.message}`));
      });
    });
  }

  /** Whether the connection may carry another request. */
  get open(): boolean {
    return !this.#ended && !this.#socket.destroyed;
  }

  /** Sends `request` and reads what comes back. */
  exchange(request: Buffer, options: ExchangeOptions): Promise<Outcome> {
    if (this.#wake) throw new Error('one request at a time');
    return new Promise((resolve) => {
      const finish = (outcome: Outcome) => {
        clearTimeout(timer);
        this.#wake = null;
        resolve(outcome);
      };
      const timer = setTimeout(() => finish({ kind: 'silent', partial: this.#parser.buffered }), options.timeoutMs);
      this.#wake = () => {
        try {
          const answer = this.#parser.take(options.untilClose ?? false, this.#ended);
          if (answer) {
            this.stray += this.#parser.discard();
            return finish({ kind: 'answer', answer });
          }
        } catch (error) {
          this.#socket.destroy();
          return finish({ kind: 'garbled', reason: (error as Error).message });
        }
        if (this.#ended) finish({ kind: 'closed', partial: this.#parser.buffered, error: this.#error });
      };
      if (this.#ended) return this.#wake();
      this.#socket.write(request);
      if (options.halfClose) this.#socket.end();
    });
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
