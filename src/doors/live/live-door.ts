import type { Logger } from 'pino';
import uWS, { type HttpRequest, type HttpResponse, type us_socket_context_t, type WebSocket, type WebSocketBehavior } from 'uWebSockets.js';
import { ANONYMOUS, type Principal } from '../../auth/principal.js';
import type { RowcastCore } from '../../core/rowcast-core.js';
import type { SessionPort } from '../../core/session-types.js';
import { RowcastError } from '../../errors.js';
import { CLOSE_CODES, type ClientRequest, type SessionLimits } from '../../protocol/index.js';
import { parseClientFrame, requestIdOf } from '../../protocol/parse-client-frame.js';
import type { DoorCounters } from '../door-counters.js';
import { admitFrame, admitUpgrade, closeConnection, connectionNames, guard, refuse, socketPort, type FrameLimits, type UpgradeLimits } from '../door-socket.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import { RequestQueue } from '../request-queue.js';
import { credentials } from './credentials.js';
import type { LiveConnection } from './live-connection.js';
import { answerFailure, refusalFrame, send } from './live-frames.js';
import { nameOfKey, runLiveRequest } from './live-requests.js';

/** What the `/live` door needs besides the core. */
export interface LiveDoorOptions extends UpgradeLimits {
  readonly core: RowcastCore;
  readonly logger: Logger;
  readonly maxMessageBytes: number;
  readonly maxBackpressureBytes: number;
  readonly idleTimeoutSeconds: number;
  /** `AUTH_FIRST_FRAME`: an upgrade without a token may authenticate with an `auth` frame first. */
  readonly authFirstFrame: boolean;
  /** `AUTH_TIMEOUT_SECONDS`: how long that frame may take. */
  readonly authTimeoutSeconds: number;
  readonly rateLimitPerSecond: number;
  readonly rateLimitBurst: number;
}

/** The `/live` door, to mount on every uWS app (`app.ws('/live', door.behavior)`). */
export interface LiveDoor extends DoorCounters {
  readonly behavior: WebSocketBehavior<LiveConnection>;
}

const decoder = new TextDecoder();

/** uWS's hard backpressure limit, as a multiple of MAX_BACKPRESSURE_BYTES (the core's gauge closes slow sockets first). */
const HARD_BACKPRESSURE_FACTOR = 4;

/** What the `/live` handlers share. */
interface LiveDoorState {
  readonly options: LiveDoorOptions;
  readonly core: RowcastCore;
  readonly logger: Logger;
  readonly frames: FrameLimits;
  /** What the `session` frame tells every client. */
  readonly limits: SessionLimits;
  /** Sockets open but not authenticated yet (`AUTH_FIRST_FRAME`): they count towards `MAX_CONNECTIONS`. */
  awaitingAuth: number;
}

/**
 * The `/live` door (docs/protocol.md): the JWT check during the upgrade
 * (401/403 with a JSON body saying why), a `session` frame on open, one
 * parse of every frame into the protocol union, requests run in order
 * through the connection's queue, answers that echo `id`. Everything else is
 * the core's: permissions, limits, replay, events (which reach the socket
 * through uWS topics, in the frames of {@link liveEncoder}).
 *
 * uWS rules kept here: everything needed from `req` is copied before any
 * asynchronous step; a closed socket is never touched
 * (`LiveConnection.closed`); replies outside uWS's own callbacks are corked;
 * no callback can throw into uWS (which would end the process).
 */
export function liveDoor(options: LiveDoorOptions): LiveDoor {
  const { core, logger } = options;
  const state: LiveDoorState = {
    options,
    core,
    logger,
    frames: { maxMessageBytes: options.maxMessageBytes, limiter: new RateLimiter(options.rateLimitPerSecond, options.rateLimitBurst), rate: { refused: 0, closed: 0 } },
    limits: sessionLimits(options),
    awaitingAuth: 0,
  };
  const behavior: WebSocketBehavior<LiveConnection> = {
    compression: uWS.DISABLED,
    // uWS cuts a connection whose frame passes maxPayloadLength without a close frame (the client
    // sees 1006). Up to twice the limit the frame is read and refused here with a proper 1009.
    maxPayloadLength: options.maxMessageBytes * 2,
    // The core's gauge closes a socket past MAX_BACKPRESSURE_BYTES with 1013. uWS's own limit is only the
    // safety net for a burst between two sweeps: past it uWS drops frames and cuts the socket (1006).
    maxBackpressure: options.maxBackpressureBytes * HARD_BACKPRESSURE_FACTOR,
    closeOnBackpressureLimit: 1,
    idleTimeout: options.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) =>
      guard(logger, 'upgrade', null, () => upgrade(state, res, req, context), (message) => refuse(res, '500 Internal Server Error', new RowcastError('INTERNAL', message))),
    open: (ws) => guard(logger, 'open', ws, () => open(state, ws), internalError(ws)),
    message: (ws, message, isBinary) => guard(logger, 'message', ws, () => receive(state, ws, message, isBinary), internalError(ws)),
    close: (ws, code, message) =>
      guard(
        logger,
        'close',
        null,
        () => {
          const conn = ws.getUserData();
          if (conn.awaitingAuth) {
            clearTimeout(conn.authTimer ?? undefined);
            conn.awaitingAuth = false;
            state.awaitingAuth--;
          }
          closeConnection(core, logger, 'live', ws, code, message);
        },
        () => {},
      ),
  };
  return { behavior, rateLimited: () => ({ ...state.frames.rate }) };
}

function sessionLimits(options: LiveDoorOptions): SessionLimits {
  const { core } = options;
  return Object.freeze({
    maxMessageBytes: options.maxMessageBytes,
    messagesPerSecond: options.rateLimitPerSecond,
    maxSubscriptions: core.maxSubscriptions,
    maxSubscriptionsPerUser: core.limits.maxSubscriptionsPerUser,
    maxFrameDepth: core.limits.maxFrameDepth,
    maxPendingRequests: core.limits.maxPendingRequests,
    maxFilterValues: core.limits.filter.maxValues,
    maxFilterValueLength: core.limits.filter.maxValueLength,
    maxFilterKeyBytes: core.limits.filter.maxKeyBytes,
    maxFilterGroupsPerConnection: core.limits.maxFilterGroupsPerConnection,
    maxPresenceMetaBytes: core.limits.presence.maxMetaBytes,
    presenceTracksPerSecond: core.limits.presence.tracksPerSecond,
  });
}

/** A handler's unexpected failure, as the connection's `INTERNAL` error frame. */
function internalError(ws: WebSocket<LiveConnection>): (message: string) => void {
  return (message) => {
    if (!ws.getUserData().closed) send(ws, { type: 'error', error: { code: 'INTERNAL', message } });
  };
}

/** The upgrade: connection limit, origin, token; then the connection's state travels into `open`. */
function upgrade(state: LiveDoorState, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  const { options, core, frames } = state;
  // Everything needed from req is read here: it is gone after this handler returns.
  const { token, protocol } = credentials(req.getQuery('token') ?? '', req.getHeader('authorization'), req.getHeader('sec-websocket-protocol'));
  const names = connectionNames(req.getQuery('client'), 'conn');
  const origin = req.getHeader('origin');
  const key = req.getHeader('sec-websocket-key');
  const extensions = req.getHeader('sec-websocket-extensions');
  const connect = (principal: Principal, awaitingAuth: boolean): void => {
    const conn: LiveConnection = {
      ...names,
      principal,
      session: null,
      queue: null,
      subscriptions: new Map(),
      bucket: frames.limiter.bucket(),
      closed: false,
      awaitingAuth,
      authTimer: null,
    };
    res.upgrade(conn, key, protocol, extensions, context);
  };
  if (token === '' && options.authFirstFrame && !core.hooks.authenticates) {
    // No token: the first frame must be `auth`. Only the connection limit (these sockets count) and the origin apply now.
    if (core.sessions.size + state.awaitingAuth >= options.maxConnections) return refuse(res, '503 Service Unavailable', new RowcastError('LIMIT_EXCEEDED', 'too many connections'));
    if (options.allowedOrigins !== null && origin !== '' && !options.allowedOrigins.has(origin.toLowerCase())) {
      return refuse(res, '403 Forbidden', new RowcastError('FORBIDDEN', `origin ${origin} is not in ALLOWED_ORIGINS`));
    }
    return connect(ANONYMOUS, true);
  }
  admitUpgrade(res, req, core, options, { door: 'live', origin, token }, options.logger, (principal) => connect(principal, false));
}

/**
 * A new connection: its core session, its request queue, and the `session`
 * frame; or, opened without a token (`AUTH_FIRST_FRAME`), the wait for its
 * `auth` frame (closed with 4001 after `AUTH_TIMEOUT_SECONDS`).
 */
function open(state: LiveDoorState, ws: WebSocket<LiveConnection>): void {
  const conn = ws.getUserData();
  if (conn.awaitingAuth) {
    state.awaitingAuth++;
    const seconds = state.options.authTimeoutSeconds;
    conn.authTimer = setTimeout(() => {
      if (conn.closed || !conn.awaitingAuth) return;
      ws.end(CLOSE_CODES.TOKEN_EXPIRED, `no auth frame within ${seconds} s (AUTH_TIMEOUT_SECONDS)`);
    }, seconds * 1000);
    return;
  }
  start(state, ws);
}

/** The connection is authenticated: its session, its queue, the `session` frame. */
function start({ core, logger, limits }: LiveDoorState, ws: WebSocket<LiveConnection>): void {
  const conn = ws.getUserData();
  const session = core.openSession({ id: conn.id, client: conn.client }, conn.principal, port(ws));
  conn.session = session;
  conn.queue = new RequestQueue<ClientRequest>(
    { maxRequests: core.limits.maxPendingRequests, maxBytes: core.limits.maxPendingBytes },
    (request) => runLiveRequest(ws, session, request, logger),
    (request) => request.method === 'new-message' || request.method === 'direct-message',
  );
  logger.info({ connection: conn.id, client: conn.client, sub: conn.principal.sub }, 'connection opened');
  send(ws, {
    type: 'session',
    status: 'open',
    data: {
      connectionId: conn.id,
      user: { sub: conn.principal.sub, role: conn.principal.role },
      serverTime: new Date().toISOString(),
      limits,
    },
  });
}

/**
 * The first frame of a connection opened without a token: `{"method":"auth",
 * "attributes":{"token":…}}` with a valid token starts it (the `session`
 * frame answers); anything else, or a token the server refuses, closes it
 * with 4001.
 */
function authFrame(state: LiveDoorState, ws: WebSocket<LiveConnection>, text: string): void {
  const conn = ws.getUserData();
  clearTimeout(conn.authTimer ?? undefined);
  conn.awaitingAuth = false;
  state.awaitingAuth--;
  let token: unknown;
  try {
    const frame = JSON.parse(text) as { method?: unknown; attributes?: { token?: unknown } } | null;
    token = frame?.method === 'auth' ? frame.attributes?.token : undefined;
  } catch {
    token = undefined;
  }
  if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH) {
    return ws.end(CLOSE_CODES.TOKEN_EXPIRED, 'authenticate first: {"method":"auth","attributes":{"token":"<JWT>"}}');
  }
  try {
    conn.principal = state.core.authenticate(token);
  } catch (error) {
    if (!(error instanceof RowcastError)) throw error;
    return ws.end(CLOSE_CODES.TOKEN_EXPIRED, `${error.code}: ${error.message}`.slice(0, 120));
  }
  if (state.core.sessions.size >= state.options.maxConnections) return ws.end(CLOSE_CODES.POLICY_VIOLATION, 'too many connections');
  start(state, ws);
}

/** Longest token an `auth` frame may carry. */
const MAX_TOKEN_LENGTH = 16_384;

/** One client frame: size, rate limit, text, parse; then into the connection's queue (or a refusal). */
function receive(state: LiveDoorState, ws: WebSocket<LiveConnection>, message: ArrayBuffer, isBinary: boolean): void {
  const { options, core, logger, frames } = state;
  const conn = ws.getUserData();
  const retryAfter = admitFrame(ws, conn, frames, message.byteLength);
  if (retryAfter === null) return;
  if (retryAfter > 0) {
    const error = { code: 'RATE_LIMIT_EXCEEDED' as const, message: `over ${options.rateLimitPerSecond} requests per second: retry after ${retryAfter} ms`, retryAfter };
    send(ws, refusalFrame(requestIdOf(decoder.decode(message)), error));
    return;
  }
  if (conn.awaitingAuth) return authFrame(state, ws, isBinary ? '' : decoder.decode(message));
  if (isBinary) {
    send(ws, { type: 'error', error: { code: 'INVALID_MESSAGE', message: 'binary frames are not accepted; send JSON text' } });
    return;
  }
  const parsed = parseClientFrame(decoder.decode(message), core.limits.maxFrameDepth);
  if (!parsed.ok) {
    send(ws, refusalFrame(parsed.request, parsed.error));
    return;
  }
  try {
    conn.queue!.push(parsed.request, message.byteLength);
  } catch (error) {
    answerFailure(ws, parsed.request, error, logger);
  }
}

/** How the core reaches one `/live` socket; a revoked subscription is told with a `subscription` frame. */
function port(ws: WebSocket<LiveConnection>): SessionPort {
  const conn = ws.getUserData();
  const base = socketPort('live', ws, (handle, reason) => {
    let as: string | undefined;
    for (const [key, held] of conn.subscriptions) {
      if (held !== handle) continue;
      conn.subscriptions.delete(key);
      as = nameOfKey(key);
      break;
    }
    if (!conn.closed) ws.cork(() => send(ws, { type: 'subscription', ...(as !== undefined ? { as } : {}), topic: handle.topic, status: 'revoked', reason }));
  });
  return {
    ...base,
    direct: (frame) => {
      if (!conn.closed) ws.cork(() => send(ws, frame));
    },
  };
}
