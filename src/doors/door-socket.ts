import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, WebSocket } from 'uWebSockets.js';
import type { Principal } from '../auth/principal.js';
import type { RowcastCore } from '../core/rowcast-core.js';
import type { SessionPort, SubscriptionHandle } from '../core/session-types.js';
import type { Session } from '../core/session.js';
import { RowcastError } from '../errors.js';
import { CLOSE_CODES } from '../protocol/index.js';
import type { Bucket, RateLimiter } from '../core/rate-limiter.js';
import type { RequestQueue } from './request-queue.js';

/*
 * What every WebSocket door on uWS does the same way: the checks of an
 * upgrade, a guard around uWS callbacks, the size and rate checks of a
 * frame, the session's port onto the socket, and the close. A door adds its
 * framing on top.
 */

/**
 * The state every door keeps as a uWS socket's user data. `closed` is set in
 * the close handler: nothing may touch the socket after.
 */
export interface DoorConnection<R> {
  readonly id: string;
  /** The sanitized `client=` name, or `''`. */
  readonly client: string;
  /** Who the upgrade authenticated, or (`/live` with `AUTH_FIRST_FRAME`) the `auth` frame; the session's principal follows `refresh-token` later. */
  principal: Principal;
  /** The core's session, from `open` on. */
  session: Session | null;
  /** Its requests, in order (made at `open`). */
  queue: RequestQueue<R> | null;
  readonly bucket: Bucket;
  closed: boolean;
}

/** What the upgrade checks besides the token. */
export interface UpgradeLimits {
  /** Connections of every door together (`MAX_CONNECTIONS`). */
  readonly maxConnections: number;
  /** Origins allowed to upgrade (`null`: any). Requests without an `Origin` header (non-browsers) pass. */
  readonly allowedOrigins: ReadonlySet<string> | null;
}

/** What a door read of its upgrade request for admission (everything else it needs it reads itself, before admitting). */
export interface UpgradeRequest {
  readonly door: string;
  readonly origin: string;
  readonly token: string;
}

/**
 * The checks of every door's upgrade: the connection limit, the origin,
 * then who the connection is: the host's `authenticate` hook when there is
 * one (library mode; the upgrade waits for it), else or after it the token.
 * Calls `proceed` with the principal (inside a cork, in the async case), or
 * answers the refusal (503, 403 or 401 with a coded JSON body; a failing
 * hook: 500 `INTERNAL` with a correlation id). `req` is read before anything
 * is awaited, and an aborted request is never touched again.
 */
export function admitUpgrade(res: HttpResponse, req: HttpRequest, core: RowcastCore, limits: UpgradeLimits, request: UpgradeRequest, logger: Logger, proceed: (principal: Principal) => void): void {
  if (core.sessions.size >= limits.maxConnections) return refuse(res, '503 Service Unavailable', new RowcastError('LIMIT_EXCEEDED', 'too many connections'));
  const { origin, token } = request;
  if (limits.allowedOrigins !== null && origin !== '' && !limits.allowedOrigins.has(origin.toLowerCase())) {
    return refuse(res, '403 Forbidden', new RowcastError('FORBIDDEN', `origin ${origin} is not in ALLOWED_ORIGINS`));
  }
  if (!core.hooks.authenticates) {
    const principal = byToken(res, core, token);
    if (principal) proceed(principal);
    return;
  }
  const headers: Record<string, string> = {};
  req.forEach((name, value) => {
    headers[name] = value;
  });
  const asked = { door: request.door, headers, query: req.getQuery() ?? '', token, remoteAddress: decoder.decode(res.getRemoteAddressAsText()) };
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  core.hooks.authenticate(asked).then(
    (outcome) => {
      if (aborted) return;
      res.cork(() => {
        if (outcome === null) {
          const principal = byToken(res, core, token);
          if (principal) proceed(principal);
        } else if ('refusal' in outcome) {
          const { status, code, message } = outcome.refusal;
          refuse(res, `${status} ${status === 403 ? 'Forbidden' : status === 401 ? 'Unauthorized' : 'Refused'}`, new RowcastError(code, message));
        } else proceed(outcome.principal);
      });
    },
    (error: unknown) => {
      const correlationId = randomUUID();
      logger.error({ err: error, correlationId, door: request.door }, 'hook authenticate failed: upgrade refused');
      if (!aborted) res.cork(() => refuse(res, '500 Internal Server Error', new RowcastError('INTERNAL', `internal error (correlation id ${correlationId})`)));
    },
  );
}

/** The token's principal, or the refusal answered (401, or 403 for `FORBIDDEN`) and `null`. */
function byToken(res: HttpResponse, core: RowcastCore, token: string): Principal | null {
  try {
    return core.authenticate(token);
  } catch (error) {
    if (!(error instanceof RowcastError)) throw error;
    refuse(res, error.code === 'FORBIDDEN' ? '403 Forbidden' : '401 Unauthorized', error);
    return null;
  }
}

/** Refuses an upgrade or request with `status` and `{"error": {code, message}}`. */
export function refuse(res: HttpResponse, status: string, error: RowcastError): void {
  res
    .writeStatus(status)
    .writeHeader('content-type', 'application/json')
    .end(JSON.stringify({ error: { code: error.code, message: error.message } }));
}

/** A new connection's id: the `client=` name (reduced to `[A-Za-z0-9_-]`, at most 32 characters) or `fallback`, and random hex. */
export function connectionNames(rawClient: string | undefined, fallback: string): { id: string; client: string } {
  const client = (rawClient ?? '').replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32);
  return { id: `${client || fallback}-${randomBytes(6).toString('hex')}`, client };
}

/** `ALLOWED_ORIGINS`: `*` (any, or none sent) or a comma-separated list of origins such as `https://app.example.com`. */
export function parseOrigins(list: string): ReadonlySet<string> | null {
  if (list.trim() === '*') return null;
  return new Set(list.split(',').map((origin) => origin.trim().replace(/\/$/, '').toLowerCase()).filter((origin) => origin !== ''));
}

/**
 * Runs a uWS callback so that an exception in it is logged with a
 * correlation id and answered through `answer` (the door's error frame, or
 * a 500 during an upgrade) instead of reaching uWS, which would end the
 * process.
 */
export function guard(logger: Logger, handler: string, ws: WebSocket<{ readonly id: string }> | null, run: () => void, answer: (message: string) => void): void {
  try {
    run();
  } catch (error) {
    const correlationId = randomUUID();
    logger.error({ err: error, correlationId, handler, connection: ws?.getUserData().id }, 'handler failed');
    try {
      answer(`internal error (correlation id ${correlationId})`);
    } catch {
      // The response or socket is already gone: the log line is all that is left to do.
    }
  }
}

/** The rate limits a door applies to frames, and what it counted. */
export interface FrameLimits {
  readonly maxMessageBytes: number;
  readonly limiter: RateLimiter;
  readonly rate: { refused: number; closed: number };
}

/**
 * The checks every frame of `ws` (whose state is `conn`) passes first: a frame over `MAX_MESSAGE_BYTES`
 * closes the socket (1009), repeated flooding closes it (1008). Returns
 * `null` when the socket was closed, else how long to wait when the frame
 * is to be refused (`RATE_LIMIT_EXCEEDED`), or 0 when it may run.
 */
export function admitFrame<R>(ws: WebSocket<DoorConnection<R>>, conn: DoorConnection<R>, limits: FrameLimits, bytes: number): number | null {
  if (bytes > limits.maxMessageBytes) {
    ws.end(CLOSE_CODES.MESSAGE_TOO_BIG, `frame of ${bytes} bytes is over MAX_MESSAGE_BYTES (${limits.maxMessageBytes})`);
    return null;
  }
  const decision = limits.limiter.take(conn.bucket);
  if (decision.verdict === 'close') {
    limits.rate.closed++;
    ws.end(CLOSE_CODES.POLICY_VIOLATION, 'rate limit exceeded repeatedly');
    return null;
  }
  if (decision.verdict === 'refuse') {
    limits.rate.refused++;
    return decision.retryAfter;
  }
  return 0;
}

/**
 * How the core reaches a door's socket: its uWS topics, its send buffer, a
 * close; `revoked` is the door's own (how its protocol tells a client that a
 * subscription ended). Nothing touches a closed socket.
 */
export function socketPort<R>(door: string, ws: WebSocket<DoorConnection<R>>, revoked: (handle: SubscriptionHandle, reason: string) => void): SessionPort {
  const conn = ws.getUserData();
  return {
    door,
    subscribeTopic: (topic) => {
      if (!conn.closed) ws.subscribe(topic);
    },
    unsubscribeTopic: (topic) => {
      if (!conn.closed) ws.unsubscribe(topic);
    },
    bufferedBytes: () => (conn.closed ? 0 : ws.getBufferedAmount()),
    revoked,
    close: (code, reason) => {
      if (!conn.closed) ws.end(code, reason);
    },
    publishWithout: (uwsTopic, publish) => {
      if (conn.closed || !ws.isSubscribed(uwsTopic)) return publish();
      ws.unsubscribe(uwsTopic);
      try {
        publish();
      } finally {
        ws.subscribe(uwsTopic);
      }
    },
  };
}

const decoder = new TextDecoder();

/** The socket closed: nothing more runs for it, and its session ends. */
export function closeConnection<R>(core: RowcastCore, logger: Logger, door: string, ws: WebSocket<DoorConnection<R>>, code: number, message: ArrayBuffer): void {
  const conn = ws.getUserData();
  conn.closed = true;
  conn.queue?.stop();
  if (conn.session) core.closeSession(conn.session, code);
  logger.info({ connection: conn.id, client: conn.client, sub: conn.principal.sub, door, code, reason: decoder.decode(message) }, 'connection closed');
}
