import type { Logger } from 'pino';
import uWS, { type HttpRequest, type HttpResponse, type us_socket_context_t, type WebSocket, type WebSocketBehavior } from 'uWebSockets.js';
import type { RowcastCore } from '../../core/rowcast-core.js';
import { RowcastError } from '../../errors.js';
import type { DoorCounters } from '../door-counters.js';
import { admitUpgrade, closeConnection, connectionNames, guard, refuse, socketPort, type FrameLimits, type UpgradeLimits } from '../door-socket.js';
import { internalError, receiveFrame, type FrameIntake } from '../phoenix/phoenix-socket.js';
import type { PhoenixMessage, Vsn } from '../phoenix/phoenix-wire.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import { RequestQueue } from '../request-queue.js';
import { endChannels, runSupabaseMessage, type SupabaseContext } from './supabase-channels.js';
import type { SupabaseConnection } from './supabase-connection.js';
import { SupabaseEncoders } from './supabase-encoder.js';
import { decodeSupabaseFrame } from './supabase-wire.js';

/** What the Supabase door needs besides the core (the same limits as `/live`). */
export interface SupabaseDoorOptions extends UpgradeLimits {
  readonly core: RowcastCore;
  readonly logger: Logger;
  readonly maxMessageBytes: number;
  readonly maxBackpressureBytes: number;
  readonly rateLimitPerSecond: number;
  readonly rateLimitBurst: number;
}

/** The Supabase Realtime door, to mount on every uWS app (`app.ws('/realtime/v1/websocket', door.behavior)`). */
export interface SupabaseDoor extends DoorCounters {
  readonly behavior: WebSocketBehavior<SupabaseConnection>;
}

interface DoorState {
  readonly options: SupabaseDoorOptions;
  readonly frames: FrameLimits;
  readonly intake: FrameIntake;
  readonly context: SupabaseContext;
}

/** Like Phoenix, a socket that sent nothing for 60 s is closed (realtime-js heartbeats every 25 s). */
const IDLE_SECONDS = 60;

/**
 * The Supabase Realtime door at `/realtime/v1/websocket` (docs/supabase.md):
 * what `@supabase/realtime-js` speaks, on Phoenix's framing (`vsn` 1.0.0 or
 * 2.0.0). The `apikey` param (or `x-api-key` header) is the socket's token;
 * each channel may act for its join's `access_token`. Heartbeats are
 * answered at once, other messages in order.
 */
export function supabaseDoor(options: SupabaseDoorOptions): SupabaseDoor {
  const { core, logger } = options;
  const encoders = new SupabaseEncoders((name) => core.tableShape(name));
  const frames: FrameLimits = { maxMessageBytes: options.maxMessageBytes, limiter: new RateLimiter(options.rateLimitPerSecond, options.rateLimitBurst), rate: { refused: 0, closed: 0 } };
  const decode = (vsn: Vsn, data: ArrayBuffer, isBinary: boolean) => decodeSupabaseFrame(vsn, data, isBinary, core.limits.maxFrameDepth);
  const state: DoorState = { options, frames, intake: { frames, rateLimitPerSecond: options.rateLimitPerSecond, decode, logger }, context: { core, encoders, logger } };
  const behavior: WebSocketBehavior<SupabaseConnection> = {
    compression: uWS.DISABLED,
    maxPayloadLength: options.maxMessageBytes * 2,
    maxBackpressure: options.maxBackpressureBytes * 4,
    closeOnBackpressureLimit: 1,
    idleTimeout: IDLE_SECONDS,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => guard(logger, 'upgrade', null, () => upgrade(state, res, req, context), (reason) => refuse(res, '500 Internal Server Error', new RowcastError('INTERNAL', reason))),
    open: (ws) => guard(logger, 'open', ws, () => open(state, ws), internalError(ws)),
    message: (ws, message, isBinary) => guard(logger, 'message', ws, () => receiveFrame(ws, state.intake, message, isBinary), internalError(ws)),
    close: (ws, code, message) =>
      guard(
        logger,
        'close',
        null,
        () => {
          closeConnection(core, logger, 'supabase', ws, code, message);
          endChannels(ws, state.context);
        },
        () => {},
      ),
  };
  return { behavior, rateLimited: () => ({ ...state.frames.rate }) };
}

function upgrade({ options, frames }: DoorState, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  // Everything needed from req is read here: it is gone after this handler returns.
  const vsn = req.getQuery('vsn') ?? '1.0.0';
  const token = req.getQuery('apikey') || req.getHeader('x-api-key');
  const names = connectionNames(req.getQuery('client'), 'supabase');
  const origin = req.getHeader('origin');
  const key = req.getHeader('sec-websocket-key');
  const protocol = req.getHeader('sec-websocket-protocol');
  const extensions = req.getHeader('sec-websocket-extensions');
  if (vsn !== '1.0.0' && vsn !== '2.0.0') return refuse(res, '403 Forbidden', new RowcastError('FORBIDDEN', `vsn ${JSON.stringify(vsn.slice(0, 16))} is not supported: 1.0.0 or 2.0.0`));
  admitUpgrade(res, req, options.core, options, { door: 'supabase', origin, token: token ?? '' }, options.logger, (principal) => {
    const conn: SupabaseConnection = {
      ...names,
      principal,
      vsn: vsn as Vsn,
      session: null,
      queue: null,
      channels: new Map(),
      held: new Map(),
      bucket: frames.limiter.bucket(),
      closed: false,
    };
    res.upgrade(conn, key, protocol.split(',')[0]?.trim() ?? '', extensions, context);
  });
}

function open({ options, context }: DoorState, ws: WebSocket<SupabaseConnection>): void {
  const { core, logger } = options;
  const conn = ws.getUserData();
  // The socket's own session holds no subscription: each channel has its own (see supabase-channels.ts).
  conn.session = core.openSession({ id: conn.id, client: conn.client }, conn.principal, socketPort('supabase', ws, () => {}));
  conn.queue = new RequestQueue<PhoenixMessage>({ maxRequests: core.limits.maxPendingRequests, maxBytes: core.limits.maxPendingBytes }, (message) =>
    runSupabaseMessage(ws, context, message),
    (message) => message.event === 'broadcast',
  );
  logger.info({ connection: conn.id, client: conn.client, sub: conn.principal.sub, door: 'supabase', vsn: conn.vsn }, 'connection opened');
}
