import type { Logger } from 'pino';
import uWS, { type HttpRequest, type HttpResponse, type us_socket_context_t, type WebSocket, type WebSocketBehavior } from 'uWebSockets.js';
import type { RowcastCore } from '../../core/rowcast-core.js';
import type { SessionPort } from '../../core/session-types.js';
import { RowcastError } from '../../errors.js';
import type { ClientRequest, SessionLimits } from '../../protocol/index.js';
import { parseClientFrame, requestIdOf } from '../../protocol/parse-client-frame.js';
import type { DoorCounters } from '../door-counters.js';
import { admitFrame, admitUpgrade, closeConnection, connectionNames, guard, refuse, socketPort, type FrameLimits, type UpgradeLimits } from '../door-socket.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import { RequestQueue } from '../request-queue.js';
import { credentials } from './credentials.js';
import type { LiveConnection } from './live-connection.js';
import { answerFailure, refusalFrame, send } from './live-frames.js';
import { runLiveRequest } from './live-requests.js';

/** What the `/live` door needs besides the core. */
export interface LiveDoorOptions extends UpgradeLimits {
  readonly core: RowcastCore;
  readonly logger: Logger;
  readonly maxMessageBytes: number;
  readonly maxBackpressureBytes: number;
  readonly idleTimeoutSeconds: number;
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
    close: (ws, code, message) => guard(logger, 'close', null, () => closeConnection(core, logger, 'live', ws, code, message), () => {}),
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
function upgrade({ options, core, frames }: LiveDoorState, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  // Everything needed from req is read here: it is gone after this handler returns.
  const { token, protocol } = credentials(req.getQuery('token') ?? '', req.getHeader('authorization'), req.getHeader('sec-websocket-protocol'));
  const names = connectionNames(req.getQuery('client'), 'conn');
  const origin = req.getHeader('origin');
  const key = req.getHeader('sec-websocket-key');
  const extensions = req.getHeader('sec-websocket-extensions');
  admitUpgrade(res, req, core, options, { door: 'live', origin, token }, options.logger, (principal) => {
    const conn: LiveConnection = {
      ...names,
      principal,
      session: null,
      queue: null,
      subscriptions: new Map(),
      bucket: frames.limiter.bucket(),
      closed: false,
    };
    res.upgrade(conn, key, protocol, extensions, context);
  });
}

/** A new connection: its core session, its request queue, and the `session` frame. */
function open({ core, logger, limits }: LiveDoorState, ws: WebSocket<LiveConnection>): void {
  const conn = ws.getUserData();
  const session = core.openSession({ id: conn.id, client: conn.client }, conn.principal, port(ws));
  conn.session = session;
  conn.queue = new RequestQueue<ClientRequest>(
    { maxRequests: core.limits.maxPendingRequests, maxBytes: core.limits.maxPendingBytes },
    (request) => runLiveRequest(ws, session, request, logger),
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

/** One client frame: size, rate limit, text, parse; then into the connection's queue (or a refusal). */
function receive({ options, core, logger, frames }: LiveDoorState, ws: WebSocket<LiveConnection>, message: ArrayBuffer, isBinary: boolean): void {
  const conn = ws.getUserData();
  const retryAfter = admitFrame(ws, conn, frames, message.byteLength);
  if (retryAfter === null) return;
  if (retryAfter > 0) {
    const error = { code: 'RATE_LIMIT_EXCEEDED' as const, message: `over ${options.rateLimitPerSecond} requests per second: retry after ${retryAfter} ms`, retryAfter };
    send(ws, refusalFrame(requestIdOf(decoder.decode(message)), error));
    return;
  }
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
  return socketPort('live', ws, (handle, reason) => {
    if (conn.subscriptions.get(handle.topic) === handle) conn.subscriptions.delete(handle.topic);
    if (!conn.closed) ws.cork(() => send(ws, { type: 'subscription', topic: handle.topic, status: 'revoked', reason }));
  });
}
