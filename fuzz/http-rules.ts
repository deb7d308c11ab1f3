/**
 * What the HTTP fuzzer (fuzz/http.ts) accepts as an answer. The rules are
 * tables, so that adjusting one (a new route, a new error code, a status a
 * route may now answer) is a one-line change:
 *
 * - {@link ERROR_CODES}: the codes an error body may carry (never `INTERNAL`);
 * - {@link SUCCESS_BODY}: what a 2xx of each route family carries;
 * - {@link ALLOWED_5XX}: the only server errors a family may answer;
 * - {@link ADMIN_GATED}: families that may refuse a request without an admin
 *   token but must serve one with it;
 * - {@link WITHOUT_ANSWER}: what each class of request may get instead of an
 *   answer;
 * - {@link ROUTES}: which route family a request reaches.
 *
 * {@link checkExchange} applies them to one request and what came of it.
 */
import { ERROR_CODES as PROTOCOL_ERROR_CODES } from '../src/protocol/index.js';
import type { HttpAnswer, Outcome } from './http-wire.js';

/** The codes an HTTP request may earn: every error code but INTERNAL (a bug) and EVENT_DROPPED (a frame to admins). */
export const ERROR_CODES: ReadonlySet<string> = new Set(PROTOCOL_ERROR_CODES.filter((code) => code !== 'INTERNAL' && code !== 'EVENT_DROPPED'));

/** The server's routes, grouped by what they answer. `unknown`: no route (by {@link routeOf}). */
export type RouteFamily = 'page' | 'inspector' | 'client' | 'health' | 'status' | 'metrics' | 'live' | 'admin' | 'broadcast' | 'unknown';

/** What a 2xx body must be. */
export type BodyShape = 'json' | 'prometheus' | 'static';

/** What a 2xx of each family carries; `null`: that family never succeeds (a 2xx is a bug). */
export const SUCCESS_BODY: Record<RouteFamily, BodyShape | null> = {
  page: 'static',
  inspector: 'static',
  client: 'static',
  health: 'json',
  status: 'json',
  metrics: 'prometheus',
  admin: 'json',
  broadcast: 'json',
  live: null, // a plain GET, never an upgrade
  unknown: null,
};

/** The 5xx statuses a family may answer: `/health` says 503 while a part is down. Any other 5xx is a bug. */
export const ALLOWED_5XX: Partial<Record<RouteFamily, readonly number[]>> = { health: [503] };

/**
 * Families that may be open or may refuse a request without an admin token
 * (401/403 with a coded error), and must answer 2xx to `Authorization:
 * Bearer <admin JWT>` (STATUS_PUBLIC decides which way a server goes).
 */
export const ADMIN_GATED: ReadonlySet<RouteFamily> = new Set(['status', 'metrics']);

/**
 * How the fuzzer sorts requests:
 * - `wellFormed`: valid HTTP/1.1 within what uWebSockets.js parses;
 * - `overLimit`: valid HTTP/1.1 past uWebSockets.js's limits: a method token
 *   outside its list, or a head over 4 KB (it takes one only when it arrives in
 *   one read);
 * - `malformed`: broken at the HTTP level, or HTTP it does not parse at all
 *   (fuzz/http-malformations.ts).
 */
export type RequestClass = 'wellFormed' | 'overLimit' | 'malformed';

/**
 * What each class may get instead of an answer that passes the checks:
 * a close without an answer, silence, or one of `statuses` (with any body).
 */
export const WITHOUT_ANSWER: Record<RequestClass, { readonly close: boolean; readonly silence: boolean; readonly statuses: readonly number[] }> = {
  wellFormed: { close: false, silence: false, statuses: [] },
  overLimit: { close: true, silence: false, statuses: [400, 413, 414, 431, 501] },
  malformed: { close: true, silence: true, statuses: [400] },
};

/** One request and what came of it. */
export interface Exchange {
  readonly method: string;
  readonly target: string;
  readonly requestClass: RequestClass;
  /** How a `malformed` request is broken (fuzz/http-malformations.ts). */
  readonly malformation: string | null;
  /** The request carried `Authorization: Bearer <admin JWT>` exactly. */
  readonly admin: boolean;
  readonly outcome: Outcome;
}

/** What the checks found: `problems` fail the campaign; `notes` are counted (see {@link NOTES}). */
export interface Verdict {
  readonly problems: string[];
  readonly notes: string[];
}

/**
 * Deviations reported but not failed on: they are uWebSockets.js's, or
 * outside what the campaign gates on. Move one to the problems by deleting
 * it here.
 */
export const NOTES = {
  lenient: 'a malformed request got an answer other than 400 (checked like any other)',
} as const;

/** Malformations after which an answer is no leniency: the request before the junk is whole. */
const WHOLE_BEFORE_JUNK: ReadonlySet<string> = new Set(['trailing-garbage']);

/**
 * The server's routes (src/http/, src/server/routes.ts): method (`null`:
 * any), raw path as uWS matches it (a parameter is one non-empty segment),
 * family. Anything else is `unknown`.
 */
export const ROUTES: ReadonlyArray<readonly [method: string | null, path: RegExp, family: RouteFamily]> = [
  [null, /^\/live$/, 'live'],
  ['GET', /^\/$/, 'page'],
  ['GET', /^\/inspector\/[^/]+$/, 'inspector'],
  ['GET', /^\/client\/[^/]+$/, 'client'],
  ['GET', /^\/health$/, 'health'],
  ['GET', /^\/status$/, 'status'],
  ['GET', /^\/metrics$/, 'metrics'],
  ['GET', /^\/admin\/topics$/, 'admin'],
  ['POST', /^\/admin\/topics$/, 'admin'],
  ['DELETE', /^\/admin\/topics\/[^/]+$/, 'admin'],
  ['POST', /^\/admin\/topics\/[^/]+\/messages$/, 'admin'],
  ['GET', /^\/admin\/topics\/[^/]+\/history$/, 'admin'],
  ['GET', /^\/admin\/policies$/, 'admin'],
  ['PUT', /^\/admin\/policies\/[^/]+$/, 'admin'],
  ['DELETE', /^\/admin\/policies\/[^/]+$/, 'admin'],
  ['GET', /^\/admin\/connections$/, 'admin'],
  ['DELETE', /^\/admin\/connections\/[^/]+$/, 'admin'],
  ['POST', /^\/realtime\/v1\/api\/broadcast$/, 'broadcast'],
  ['POST', /^\/realtime\/v1\/api\/broadcast\/[^/]+\/events\/[^/]+$/, 'broadcast'],
];

/** The route family a request reaches, by {@link ROUTES}. HEAD counts as GET: a server may answer it as GET without the body. */
export function routeOf(method: string, target: string): RouteFamily {
  const path = target.split('?', 1)[0]!;
  const as = method === 'HEAD' ? 'GET' : method;
  return ROUTES.find(([m, pattern]) => (m === null || m === as) && pattern.test(path))?.[2] ?? 'unknown';
}

/** Applies the tables to one exchange. */
export function checkExchange(exchange: Exchange): Verdict {
  const problems: string[] = [];
  const notes: string[] = [];
  const { outcome, requestClass } = exchange;
  const allowed = WITHOUT_ANSWER[requestClass];
  switch (outcome.kind) {
    case 'closed':
      if (!allowed.close) problems.push(`the connection closed without an answer${outcome.error ? ` (${outcome.error})` : ''}${outcome.partial ? ` after ${outcome.partial} bytes of one` : ''}`);
      return { problems, notes };
    case 'silent':
      if (!allowed.silence) problems.push(`no answer${outcome.partial ? ` (only ${outcome.partial} bytes of one)` : ''} and no close`);
      return { problems, notes };
    case 'garbled':
      problems.push(`the answer is not HTTP/1.1: ${outcome.reason}`);
      return { problems, notes };
    case 'answer':
      break;
  }
  const { answer } = outcome;
  if (requestClass !== 'wellFormed' && allowed.statuses.includes(answer.status)) return { problems, notes };
  if (requestClass === 'malformed' && !WHOLE_BEFORE_JUNK.has(exchange.malformation ?? '')) notes.push(`${NOTES.lenient}: ${exchange.malformation}`);
  if (exchange.method === 'HEAD' && answer.body.length > 0) problems.push('a HEAD answer carries a body');
  const family = routeOf(exchange.method, exchange.target);
  problems.push(...checkAnswer(family, exchange, answer));
  return { problems, notes };
}

function checkAnswer(family: RouteFamily, exchange: Exchange, answer: HttpAnswer): string[] {
  const { status } = answer;
  const bodyless = exchange.method === 'HEAD' && answer.body.length === 0;
  const found: string[] = [];
  if (status >= 500 && !(ALLOWED_5XX[family] ?? []).includes(status)) found.push(`${status} from ${family === 'unknown' ? 'an unknown route' : family}`);
  if (status >= 400) {
    if (!bodyless) found.push(...checkErrorBody(answer, family));
    if (ADMIN_GATED.has(family) && exchange.admin && exchange.method === 'GET') found.push(`${status} to an admin token (${family} must serve admins)`);
  } else if (status >= 300) {
    found.push(`an unexpected ${status}`);
  } else {
    const shape = SUCCESS_BODY[family];
    if (shape === null) found.push(`${status} from ${family === 'unknown' ? 'an unknown route' : family}, which never succeeds`);
    else if (!bodyless) found.push(...checkSuccessBody(shape, answer));
  }
  return found;
}

/**
 * `{"error":{"code":<one of ERROR_CODES>,"message":<string>}}` as JSON; the
 * Supabase broadcast routes answer as realtime-js reads it:
 * `{"error":"<CODE>: <message>","code":<one of ERROR_CODES>}`.
 */
function checkErrorBody(answer: HttpAnswer, family: RouteFamily): string[] {
  const shown = show(answer.body);
  if (!(answer.headers.get('content-type') ?? '').includes('application/json')) {
    return [`${answer.status} with content-type ${JSON.stringify(answer.headers.get('content-type') ?? null)}, not JSON: ${shown}`];
  }
  let body: any;
  try {
    body = JSON.parse(answer.body.toString('utf8'));
  } catch {
    return [`${answer.status} whose body is not JSON: ${shown}`];
  }
  if (family === 'broadcast') {
    if (typeof body?.error !== 'string' || typeof body?.code !== 'string' || !body.error.startsWith(`${body.code}: `)) return [`${answer.status} without {"error":"<CODE>: …","code"}: ${shown}`];
    return ERROR_CODES.has(body.code) ? [] : [`${answer.status} with error code ${JSON.stringify(body.code)}: ${shown}`];
  }
  const error = body?.error;
  if (typeof error !== 'object' || error === null || typeof error.code !== 'string' || typeof error.message !== 'string') {
    return [`${answer.status} without {"error":{"code","message"}}: ${shown}`];
  }
  if (!ERROR_CODES.has(error.code)) return [`${answer.status} with error code ${JSON.stringify(error.code)}: ${shown}`];
  return [];
}

function checkSuccessBody(shape: BodyShape, answer: HttpAnswer): string[] {
  const type = answer.headers.get('content-type') ?? '';
  const text = answer.body.toString('utf8');
  switch (shape) {
    case 'json':
      if (!type.includes('application/json')) return [`${answer.status} with content-type ${JSON.stringify(type)}, not JSON`];
      try {
        JSON.parse(text);
        return [];
      } catch {
        return [`${answer.status} whose body is not JSON: ${show(answer.body)}`];
      }
    case 'prometheus': {
      if (!type.startsWith('text/plain')) return [`${answer.status} with content-type ${JSON.stringify(type)}, not Prometheus text`];
      const bad = text.split('\n').find((line) => line !== '' && !PROMETHEUS_LINE.test(line));
      return bad === undefined ? [] : [`${answer.status} with a line that is not Prometheus text: ${JSON.stringify(bad.slice(0, 120))}`];
    }
    case 'static':
      return /^text\/(html|javascript|css)\b/.test(type) ? [] : [`${answer.status} with content-type ${JSON.stringify(type)}, not HTML, JS or CSS`];
  }
}

/** A comment (`# HELP`, `# TYPE`) or a sample: name, labels, value, timestamp. */
const PROMETHEUS_LINE = /^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [^ ]+( -?\d+)?)$/;

function show(body: Buffer): string {
  const text = body.toString('utf8');
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}
