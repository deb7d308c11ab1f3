/**
 * Fuzzing the server's HTTP routes: arbitrary requests (fuzz/http-requests.ts)
 * sent over raw TCP (fuzz/http-wire.ts) and every answer checked against
 * fuzz/http-rules.ts: a well-formed request gets exactly one answer; an error
 * is `{"error":{"code","message"}}` with a known code, never `INTERNAL`; no
 * 5xx but `/health`'s 503; a success has its route's content type; the
 * process stays up.
 *
 * Used by test/fuzz-http.test.ts (a few thousand requests) and
 * `npm run fuzz -- --http` (a long campaign).
 */
import { readFileSync } from 'node:fs';
import jwt from 'jsonwebtoken';
import { describeRequest, encodeRequest, headBytes, UWS_METHODS, type FuzzTokens, type HttpFuzzRequest } from './http-requests.js';
import { checkExchange, routeOf, type RequestClass, type RouteFamily } from './http-rules.js';
import { WireConnection, type Outcome } from './http-wire.js';

export { fuzzHttpRequest, type FuzzTokens, type HttpFuzzRequest } from './http-requests.js';

/** Tokens for every placeholder of the requests: `secret` is the server's JWT secret. All carry `exp`. */
export function fuzzTokens(secret: string): FuzzTokens {
  const admin = { sub: 'fuzz-admin', role: 'admin' };
  const now = Math.floor(Date.now() / 1000);
  return {
    user: jwt.sign({ sub: 'fuzz-user', groups: ['g'] }, secret, { expiresIn: '12h' }),
    admin: jwt.sign(admin, secret, { expiresIn: '12h' }),
    expired: jwt.sign({ ...admin, iat: now - 7200, exp: now - 3600 }, secret),
    forged: jwt.sign(admin, `${secret}-not`, { expiresIn: '12h' }),
    unsigned: jwt.sign(admin, '', { algorithm: 'none', expiresIn: '12h' }),
  };
}

/** Whether the process `pid` runs (a zombie has died: its sockets are closed already). */
export function processAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Where and how to fuzz. */
export interface HttpFuzzOptions {
  readonly port: number;
  readonly host?: string;
  readonly tokens: FuzzTokens;
  /** Requests in flight at once, each on its own keep-alive socket (default 4). */
  readonly sockets?: number;
  /** How long a request may wait for its answer (default 20 s). */
  readonly answerTimeoutMs?: number;
  /** Whether the server process runs (default: always; an in-process server cannot tell). */
  readonly alive?: () => boolean;
}

/** uWebSockets.js drops a request head over 4 KB that arrives in more than one read (its fallback buffer). */
const UWS_MAX_HEAD_BYTES = 4000;
/** A malformed request is sent with a half-close: the server's close comes at once, an answer first if any. */
const MALFORMED_WAIT_MS = 5000;
/** A pooled socket idle this long is replaced, before the server's idle timeout can close it under a request. */
const MAX_IDLE_MS = 4000;

/** What the runner has seen so far. */
export interface HttpFuzzTally {
  /** Outcomes by request class. */
  readonly classes: Record<RequestClass, Record<Outcome['kind'], number>>;
  /** Answers by status. */
  readonly statuses: Map<number, number>;
  /** Answers by route family. */
  readonly families: Map<RouteFamily, number>;
  /** Notes (fuzz/http-rules.ts `NOTES`): how often, and the first request that earned one. */
  readonly notes: Map<string, { count: number; example: string }>;
}

/** Something wrong, and the request it came of (as sent, cut; `null` when it is about the server, not one request). */
export interface HttpFuzzProblem {
  readonly request: string | null;
  readonly what: string;
}

/** A problem on one line: the request, then what went wrong. */
export function formatProblem(problem: HttpFuzzProblem): string {
  return problem.request === null ? problem.what : `${problem.request} → ${problem.what}`;
}

/**
 * Sends fuzz requests from a pool of keep-alive sockets (a fresh one for
 * each malformed request) and checks every outcome.
 */
export class HttpFuzzRunner {
  readonly #options: Required<Omit<HttpFuzzOptions, 'host'>> & { host: string };
  readonly #pool: Array<{ connection: WireConnection; usedAt: number; last: HttpFuzzRequest | null } | null>;
  readonly #inFlight = new Set<HttpFuzzRequest>();
  /** The request sent before each pooled one on its socket, for reports. */
  readonly #previous = new Map<HttpFuzzRequest, HttpFuzzRequest>();
  #died = false;
  /** Requests sent so far. */
  sent = 0;
  readonly tally: HttpFuzzTally = {
    classes: { wellFormed: outcomes(), overLimit: outcomes(), malformed: outcomes() },
    statuses: new Map(),
    families: new Map(),
    notes: new Map(),
  };

  constructor(options: HttpFuzzOptions) {
    this.#options = { host: '127.0.0.1', sockets: 4, answerTimeoutMs: 20_000, alive: () => true, ...options };
    this.#pool = Array.from({ length: this.#options.sockets }, () => null);
  }

  /** Whether the server process was seen to die. */
  get died(): boolean {
    return this.#died;
  }

  /** The requests sent and not yet answered, as sent (cut): the suspects when the server dies. */
  inFlight(): string[] {
    return [...this.#inFlight].map((request) => describeRequest(request));
  }

  /** Sends `requests` (as many at once as there are sockets) and returns what went wrong. */
  async run(requests: readonly HttpFuzzRequest[]): Promise<HttpFuzzProblem[]> {
    const problems: HttpFuzzProblem[] = [];
    let next = 0;
    const worker = async (slot: number) => {
      while (next < requests.length && !this.#died) problems.push(...(await this.#send(slot, requests[next++]!)));
    };
    await Promise.all(this.#pool.map((_, slot) => worker(slot)));
    return problems;
  }

  /** Closes the sockets. */
  close(): void {
    for (const entry of this.#pool) entry?.connection.destroy();
    this.#pool.fill(null);
  }

  async #send(slot: number, request: HttpFuzzRequest): Promise<HttpFuzzProblem[]> {
    const bytes = encodeRequest(request, this.#options.tokens);
    const requestClass: RequestClass = request.malformation
      ? 'malformed'
      : !UWS_METHODS.has(request.method) || headBytes(bytes) > UWS_MAX_HEAD_BYTES
        ? 'overLimit'
        : 'wellFormed';
    const problems: HttpFuzzProblem[] = [];
    this.sent++;
    this.#inFlight.add(request);
    let outcome: Outcome;
    try {
      outcome = requestClass === 'malformed' ? await this.#sendAlone(bytes) : await this.#sendPooled(slot, request, bytes, problems);
    } catch (error) {
      // No connection: the server is gone, or refuses.
      this.#inFlight.delete(request);
      return [...problems, ...this.#lost(request, (error as Error).message)];
    }
    const suspects = this.inFlight();
    this.#inFlight.delete(request);
    if (outcome.kind === 'closed' && !this.#options.alive()) {
      if (this.#died) return problems;
      this.#died = true;
      const what =
        suspects.length === 1
          ? `the server process died answering: ${suspects[0]}`
          : `the server process died with ${suspects.length} requests in flight, one of them the cause: ${suspects.join(' | ')}`;
      return [...problems, { request: null, what }];
    }
    this.tally.classes[requestClass][outcome.kind]++;
    if (outcome.kind === 'answer') {
      this.tally.statuses.set(outcome.answer.status, (this.tally.statuses.get(outcome.answer.status) ?? 0) + 1);
      const family = routeOf(request.method, request.target);
      this.tally.families.set(family, (this.tally.families.get(family) ?? 0) + 1);
    }
    const verdict = checkExchange({
      method: request.method,
      target: request.target,
      requestClass,
      malformation: request.malformation,
      admin: request.authorization === 'Bearer {admin}',
      outcome,
    });
    for (const note of verdict.notes) {
      const seen = this.tally.notes.get(note);
      if (seen) seen.count++;
      else this.tally.notes.set(note, { count: 1, example: describeRequest(request, 200) });
    }
    // A keep-alive socket that fails may have been left broken by the request before.
    const before = outcome.kind === 'closed' || outcome.kind === 'silent' ? this.#previous.get(request) : undefined;
    const context = before ? ` (the request before it on this socket: ${describeRequest(before, 300)})` : '';
    this.#previous.delete(request);
    const shown = describeRequest(request);
    problems.push(...verdict.problems.map((what) => ({ request: shown, what: `${requestClass}: ${what}${context}` })));
    return problems;
  }

  /**
   * A request on the slot's keep-alive socket: a new one when it is gone, idle
   * too long, or was the last of its connection (`Connection: close` either
   * way, or HEAD, which is read to the close).
   */
  async #sendPooled(slot: number, request: HttpFuzzRequest, bytes: Buffer, problems: HttpFuzzProblem[]): Promise<Outcome> {
    let entry = this.#pool[slot];
    if (entry && entry.connection.stray > 0) {
      problems.push({ request: entry.last && describeRequest(entry.last), what: `${entry.connection.stray} bytes came after its answer, unasked` });
      entry.connection.stray = 0;
    }
    if (!entry || !entry.connection.open || Date.now() - entry.usedAt > MAX_IDLE_MS) {
      entry?.connection.destroy();
      entry = { connection: await WireConnection.open(this.#options.host, this.#options.port), usedAt: 0, last: null };
      this.#pool[slot] = entry;
    }
    if (entry.last) this.#previous.set(request, entry.last);
    const head = request.method === 'HEAD';
    const outcome = await entry.connection.exchange(bytes, { untilClose: head, timeoutMs: this.#options.answerTimeoutMs });
    entry.usedAt = Date.now();
    entry.last = request;
    if (outcome.kind === 'answer' && entry.connection.stray > 0) {
      problems.push({ request: describeRequest(request), what: `${entry.connection.stray} bytes came after its answer` });
      entry.connection.stray = 0;
    }
    const closing = (value: string | undefined) => /\bclose\b/i.test(value ?? '');
    const lastOnSocket = head || request.headers.some(([name, value]) => name.toLowerCase() === 'connection' && closing(value));
    if (outcome.kind !== 'answer' || lastOnSocket || closing(outcome.answer.headers.get('connection'))) {
      entry.connection.destroy();
      this.#pool[slot] = null;
    }
    return outcome;
  }

  /** A malformed request on a socket of its own, half-closed after it. */
  async #sendAlone(bytes: Buffer): Promise<Outcome> {
    const connection = await WireConnection.open(this.#options.host, this.#options.port);
    try {
      return await connection.exchange(bytes, { halfClose: true, timeoutMs: MALFORMED_WAIT_MS });
    } finally {
      connection.destroy();
    }
  }

  /** A request that found no server to connect to: a refusal, or (once) the server's death. */
  #lost(request: HttpFuzzRequest, why: string): HttpFuzzProblem[] {
    if (this.#options.alive()) return [{ request: describeRequest(request), what: `${why} (the server process runs)` }];
    if (this.#died) return [];
    this.#died = true;
    return [{ request: describeRequest(request), what: `the server process died before this request could connect (${why})` }];
  }
}

function outcomes(): Record<Outcome['kind'], number> {
  return { answer: 0, closed: 0, silent: 0, garbled: 0 };
}
