import type { Logger } from 'pino';
import uWS, { type HttpRequest, type HttpResponse, type us_socket_context_t, type WebSocket, type WebSocketBehavior } from 'uWebSockets.js';
import type { RowcastCore } from '../../core/rowcast-core.js';
import type { SessionPort } from '../../core/session-types.js';
import { RowcastError } from '../../errors.js';
import type { DoorCounters } from '../door-counters.js';
import { admitUpgrade, closeConnection, connectionNames, guard, refuse, socketPort, type FrameLimits, type UpgradeLimits } from '../door-socket.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import { RequestQueue } from '../request-queue.js';
import { runPhoenixMessage } from './phoenix-channels.js';
import type { PhoenixConnection } from './phoenix-connection.js';
import { closed, internalError, push, receiveFrame, type FrameIntake } from './phoenix-socket.js';
import { decodeFrame, type PhoenixMessage, type Vsn } from './phoenix-wire.js';

/** What the Phoenix door needs besides the core (the same limits as `/live`). */
export interface PhoenixDoorOptions extends UpgradeLimits {
  readonly core: RowcastCore;
  readonly logger: Logger;
  readonly maxMessageBytes: number;
  readonly maxBackpressureBytes: number;
  readonly rateLimitPerSecond: number;
  readonly rateLimitBurst: number;
}

/** The Phoenix Channels door, to mount on every uWS app (`app.ws('/socket/websocket', door.behavior)`). */
export interface PhoenixDoor extends DoorCounters {
  readonly behavior: WebSocketBehavior<PhoenixConnection>;
}

interface DoorState {
  readonly options: PhoenixDoorOptions;
  readonly frames: FrameLimits;
  readonly intake: FrameIntake;
}

/** Phoenix closes a socket that sent nothing for 60 s (clients heartbeat every 25–30 s). */
const IDLE_SECONDS = 60;
/** phoenix.js's `authToken` travels as this subprotocol prefix, then the token in base64 without padding. */
const TOKEN_PROTOCOL = 'base64url.bearer.phx.';

/**
 * The Phoenix Channels door at `/socket/websocket` (docs/phoenix.md):
 * serializer `vsn` 1.0.0 (JSON objects, the default) or 2.0.0 (JSON arrays;
 * binary pushes in), the token as `token` param, phoenix.js's `authToken`
 * subprotocol or `Authorization: Bearer`. Channels `table:<topic>` and
 * `topic:<name>` are subscriptions of the core; `rowcast` takes topic
 * requests. Heartbeats are answered at once, other messages in order.
 */
export function phoenixDoor(options: PhoenixDoorOptions): PhoenixDoor {
  const { core, logger } = options;
  const frames: FrameLimits = { maxMessageBytes: options.maxMessageBytes, limiter: new RateLimiter(options.rateLimitPerSecond, options.rateLimitBurst), rate: { refused: 0, closed: 0 } };
  const decode = (vsn: Vsn, data: ArrayBuffer, isBinary: boolean) => decodeFrame(vsn, data, isBinary, core.limits.maxFrameDepth);
  const state: DoorState = { options, frames, intake: { frames, rateLimitPerSecond: options.rateLimitPerSecond, decode, logger } };
  const behavior: WebSocketBehavior<PhoenixConnection> = {
    compression: uWS.DISABLED,
    maxPayloadLength: options.maxMessageBytes * 2,
    maxBackpressure: options.maxBackpressureBytes * 4,
    closeOnBackpressureLimit: 1,
    // Phoenix's rule: no inbound data for 60 s closes the socket (pings would count as data).
    idleTimeout: IDLE_SECONDS,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => guard(logger, 'upgrade', null, () => upgrade(state, res, req, context), (reason) => refuse(res, '500 Internal Server Error', new RowcastError('INTERNAL', reason))),
    open: (ws) => guard(logger, 'open', ws, () => open(state, ws), internalError(ws)),
    message: (ws, message, isBinary) => guard(logger, 'message', ws, () => receiveFrame(ws, state.intake, message, isBinary), internalError(ws)),
    close: (ws, code, message) => guard(logger, 'close', null, () => closeConnection(core, logger, 'phoenix', ws, code, message), () => {}),
  };
  return { behavior, rateLimited: () => ({ ...state.frames.rate }) };
}

function upgrade({ options, frames }: DoorState, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  // Everything needed from req is read here: it is gone after this handler returns.
  const vsn = req.getQuery('vsn') ?? '1.0.0';
  const { token, protocol } = phoenixCredentials(req.getQuery('token') ?? '', req.getHeader('authorization'), req.getHeader('sec-websocket-protocol'));
  const names = connectionNames(req.getQuery('client'), 'phx');
  const origin = req.getHeader('origin');
  const key = req.getHeader('sec-websocket-key');
  const extensions = req.getHeader('sec-websocket-extensions');
  if (vsn !== '1.0.0' && vsn !== '2.0.0') return refuse(res, '403 Forbidden', new RowcastError('FORBIDDEN', `vsn ${JSON.stringify(vsn.slice(0, 16))} is not supported: 1.0.0 or 2.0.0`));
  admitUpgrade(res, req, options.core, options, { door: 'phoenix', origin, token }, options.logger, (principal) => {
    const conn: PhoenixConnection = {
      ...names,
      principal,
      vsn: vsn as Vsn,
      session: null,
      queue: null,
      channels: new Map(),
      bucket: frames.limiter.bucket(),
      closed: false,
    };
    res.upgrade(conn, key, protocol, extensions, context);
  });
}

/**
 * The token of a Phoenix upgrade: `token` param, `Authorization: Bearer`, or
 * phoenix.js's `base64url.bearer.phx.<base64>` subprotocol (answered with
 * `phoenix`, which phoenix.js offers beside it).
 */
export function phoenixCredentials(query: string, authorization: string, protocols: string): { token: string; protocol: string } {
  const offered = protocols.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const protocol = offered.includes('phoenix') ? 'phoenix' : (offered.find((p) => !p.startsWith(TOKEN_PROTOCOL)) ?? '');
  if (query !== '') return { token: query, protocol };
  const header = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (header) return { token: header[1]!, protocol };
  const carried = offered.find((p) => p.startsWith(TOKEN_PROTOCOL));
  return { token: carried ? Buffer.from(carried.slice(TOKEN_PROTOCOL.length), 'base64').toString('utf8') : '', protocol };
}

function open({ options }: DoorState, ws: WebSocket<PhoenixConnection>): void {
  const { core, logger } = options;
  const conn = ws.getUserData();
  const session = core.openSession({ id: conn.id, client: conn.client }, conn.principal, port(ws));
  conn.session = session;
  conn.queue = new RequestQueue<PhoenixMessage>(
    { maxRequests: core.limits.maxPendingRequests, maxBytes: core.limits.maxPendingBytes },
    (message) => runPhoenixMessage(ws, session, message, logger),
    (message) => message.event === 'new-message',
  );
  logger.info({ connection: conn.id, client: conn.client, sub: conn.principal.sub, door: 'phoenix', vsn: conn.vsn }, 'connection opened');
}

/** How the core reaches one Phoenix socket. A revoked subscription ends its channel: a `revoked` push, then `phx_close`. */
function port(ws: WebSocket<PhoenixConnection>): SessionPort {
  const conn = ws.getUserData();
  return socketPort('phoenix', ws, (handle, reason) => {
    for (const [topic, channel] of conn.channels) {
      if (channel.handle !== handle) continue;
      conn.channels.delete(topic);
      push(ws, { joinRef: channel.joinRef, ref: null, topic, event: 'revoked', payload: { reason } });
      closed(ws, topic, channel);
    }
  });
}
