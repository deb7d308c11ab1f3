import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, RecognizedString } from 'uWebSockets.js';
import { RowcastError, type ErrorCode } from '../errors.js';
import { exceedsDepth } from '../protocol/json-depth.js';

/** The HTTP status of each error code. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, string>> = Object.freeze({
  INVALID_MESSAGE: '400 Bad Request',
  INVALID_ATTRIBUTES: '400 Bad Request',
  SNAPSHOT_UNSUPPORTED: '400 Bad Request',
  UNKNOWN_METHOD: '404 Not Found',
  NOT_FOUND: '404 Not Found',
  TOPIC_NOT_FOUND: '404 Not Found',
  TOKEN_INVALID: '401 Unauthorized',
  FORBIDDEN: '403 Forbidden',
  TOPIC_EXISTS: '409 Conflict',
  READ_ONLY_TOPIC: '409 Conflict',
  TOPIC_FULL: '409 Conflict',
  LIMIT_EXCEEDED: '413 Payload Too Large',
  RATE_LIMIT_EXCEEDED: '429 Too Many Requests',
  EVENT_DROPPED: '500 Internal Server Error',
  INTERNAL: '500 Internal Server Error',
});

/**
 * One HTTP exchange, answered at most once. `onAborted` is attached before
 * the route runs, every answer is corked, and an answer to a client that has
 * gone (or a second answer) is dropped instead of touching a discarded
 * response, which would throw inside uWS. A `HEAD` request gets the status
 * and headers of the answer, without the body.
 */
export class Reply {
  readonly #res: HttpResponse;
  readonly #logger: Logger;
  /** A `HEAD` request: answered without a body. */
  readonly #head: boolean;
  #done = false;

  constructor(res: HttpResponse, logger: Logger, head = false) {
    this.#res = res;
    this.#logger = logger;
    this.#head = head;
    res.onAborted(() => {
      this.#done = true;
    });
  }

  /** Whether an answer was sent or the client went away. */
  get done(): boolean {
    return this.#done;
  }

  /** Answers with `body` as JSON. */
  json(status: string, body: unknown): void {
    this.send(status, 'application/json', JSON.stringify(body));
  }

  /** Answers with a coded refusal: `{"error": {"code", "message"}}` and the code's HTTP status. */
  error(error: RowcastError): void {
    this.json(HTTP_STATUS[error.code], { error: { code: error.code, message: error.message } });
  }

  /**
   * Answers with what went wrong: a {@link RowcastError} as itself, anything
   * else as `INTERNAL` with a correlation id that the log line carries too.
   */
  fail(error: unknown, route: string): void {
    if (error instanceof RowcastError) {
      this.error(error);
      return;
    }
    const correlationId = randomUUID();
    this.#logger.error({ err: error, correlationId, route }, 'HTTP request failed');
    this.error(new RowcastError('INTERNAL', `internal error (correlation id ${correlationId})`));
  }

  send(status: string, contentType: string, body: RecognizedString, headers: Readonly<Record<string, string>> = NO_HEADERS): void {
    if (this.#done) return;
    this.#done = true;
    this.#res.cork(() => {
      this.#res.writeStatus(status).writeHeader('content-type', contentType);
      for (const name in headers) this.#res.writeHeader(name, headers[name]!);
      // uWS's endWithoutBody does not close a `Connection: close` request's socket; an empty end() does.
      this.#res.end(this.#head ? '' : body);
    });
  }

  /**
   * The request body as JSON (`undefined` when empty): `INVALID_MESSAGE` when
   * it is not JSON, `LIMIT_EXCEEDED` past `maxBytes` or nested deeper than
   * `maxDepth`. Call it before the route returns: uWS hands the body over
   * only to a reader attached in the handler.
   */
  readJson(maxBytes: number, maxDepth: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      this.#res.onData((chunk, isLast) => {
        size += chunk.byteLength;
        // uWS reuses the chunk's memory after this callback: copy it.
        if (size <= maxBytes) chunks.push(Buffer.from(chunk.slice(0)));
        if (!isLast) return;
        if (size > maxBytes) return reject(new RowcastError('LIMIT_EXCEEDED', `the body is over ${maxBytes} bytes`));
        if (size === 0) return resolve(undefined);
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reject(new RowcastError('INVALID_MESSAGE', 'the body is not JSON'));
        }
        if (exceedsDepth(json, maxDepth)) return reject(new RowcastError('LIMIT_EXCEEDED', `the body is nested deeper than ${maxDepth} levels (MAX_FRAME_DEPTH)`));
        resolve(json);
      });
    });
  }
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** What a route does with a request: reads `req` at once (it is gone after the first `await`), answers through `reply`. */
export type RouteHandler = (req: HttpRequest, reply: Reply) => void | Promise<void>;

/**
 * A uWS HTTP handler that cannot throw into uWS (an exception there ends the
 * process): whatever the route throws, synchronously or from its promise, is
 * answered as a coded refusal or `INTERNAL` with a correlation id.
 *
 * @example
 * app.get('/health', httpRoute(logger, 'health', (_req, reply) => reply.json('200 OK', { ok: true })));
 */
export function httpRoute(logger: Logger, name: string, handler: RouteHandler): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    let reply: Reply;
    try {
      reply = new Reply(res, logger, req.getMethod() === 'head');
    } catch (error) {
      logger.error({ err: error, route: name }, 'HTTP response unusable');
      return;
    }
    try {
      const done = handler(req, reply);
      if (done instanceof Promise) done.catch((error: unknown) => guarded(() => reply.fail(error, name), logger));
    } catch (error) {
      guarded(() => reply.fail(error, name), logger);
    }
  };
}

/** Runs a last-resort answer; if even that throws (a socket torn down mid-write), the log is all that is left. */
function guarded(answer: () => void, logger: Logger): void {
  try {
    answer();
  } catch (error) {
    logger.error({ err: error }, 'could not answer an HTTP request');
  }
}

/**
 * A path parameter as uWS gives it (raw), percent-decoded: a malformed
 * escape (`%ZZ`, a lone `%`, an invalid UTF-8 sequence) is `INVALID_MESSAGE`,
 * never an exception that could reach uWS.
 */
export function decodePathParameter(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new RowcastError('INVALID_MESSAGE', 'a path parameter is not a valid percent-encoded UTF-8 string');
  }
}
