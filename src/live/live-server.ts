import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import uWS, { type HttpResponse, type TemplatedApp, type WebSocket, type WebSocketBehavior, type us_listen_socket } from 'uWebSockets.js';
import { credentials } from '../auth/credentials.js';
import { ANONYMOUS, type Principal } from '../auth/principal.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import { RowcastError } from '../errors.js';
import type { Event } from '../events/event.js';
import { httpRoute } from '../http/http-route.js';
import type { EventLog } from '../log/event-log.js';
import { adminPartition, customTopicPartitions, grantedPartitions } from '../policies/audience-partitions.js';
import type { CustomTopic, TableTopic, TopicRegistry } from '../topics/topic-registry.js';
import { BackpressureGauge, type Pacer } from './backpressure-gauge.js';
import type { ClientLimits } from './client-limits.js';
import type { Connection } from './connection.js';
import { routeEvents } from './event-router.js';
import { ExpirySweep } from './expiry-sweep.js';
import { ANSWERED, handle, type HandlerContext } from './method-handlers.js';
import { encodeFrame, parseClientFrame, parseRequest, requestIdOf, responseFrame, type ClientRequest, type ServerFrame } from './protocol.js';
import { RateLimiter } from './rate-limiter.js';
import { SubscriptionIndex, uwsTopic } from './subscription-index.js';

/** What the /live endpoint needs. */
export interface LiveServerOptions {
  readonly verifyToken: TokenVerifier;
  readonly registry: TopicRegistry;
  /** See {@link HandlerContext.catchUp}. */
  readonly catchUp: () => Promise<void>;
  readonly streamCaughtUp: HandlerContext['streamCaughtUp'];
  readonly streamPassed: HandlerContext['streamPassed'];
  readonly replay: HandlerContext['replay'];
  readonly window: HandlerContext['window'];
  readonly positions: HandlerContext['positions'];
  readonly db: HandlerContext['db'];
  readonly messages: HandlerContext['messages'];
  readonly publishEphemeral: HandlerContext['publishEphemeral'];
  readonly maxChatMessageBytes: number;
  readonly log: EventLog;
  readonly logger: Logger;
  readonly allowAnonymous: boolean;
  /** Origins allowed to upgrade (`null`: any). Requests without an `Origin` header (non-browsers) pass. */
  readonly allowedOrigins: ReadonlySet<string> | null;
  readonly rateLimitBurst: number;
  readonly maxConnections: number;
  readonly maxSubscriptions: number;
  readonly maxMessageBytes: number;
  readonly maxBackpressureBytes: number;
  readonly idleTimeoutSeconds: number;
  readonly rateLimitPerSecond: number;
  /** Depth, pending requests, per-user subscriptions, filters. */
  readonly limits: ClientLimits;
  /** Also serve wss:// (and https://) on `port` with this certificate and key (PEM files). */
  readonly tls?: { readonly port: number; readonly certFile: string; readonly keyFile: string };
  /** Extra HTTP routes (status, health) mounted on the same app(s). */
  readonly routes?: (app: TemplatedApp) => void;
}

/** The socket methods the admin API runs. */
export type AdminMethod = 'list-topic' | 'get-topic' | 'create-topic' | 'destroy-topic' | 'new-message' | 'history';

/** A connection as the admin API lists it. */
export interface ConnectionInfo {
  readonly id: string;
  readonly client: string;
  readonly user: { readonly sub: string | null; readonly role: string | null };
  readonly subscriptions: string[];
  readonly bufferedBytes: number;
}

/** A listening /live endpoint. */
export interface LiveServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** The wss:// port bound, when TLS is configured. */
  readonly tlsPort: number | null;
  /** Open connections. */
  connectionCount(): number;
  /** Events published to uWS topics since start. */
  eventsPublished(): number;
  /** The same, by topic. */
  eventsByTopic(): ReadonlyMap<string, number>;
  /** Frames handed to sockets (an event to 100 subscribers is 100). */
  deliveries(): number;
  /** Events that could not be serialized and went to no one (admins were told). */
  eventsDropped(): number;
  /** Subscribers and distinct filter groups of a topic. */
  topicStats(topic: string): { subscribers: number; filterGroups: number };
  /** Flow control for the replication stream. */
  readonly pacer: Pacer;
  /** Connections closed as slow consumers so far. */
  slowConsumersClosed(): number;
  /** Frames refused by the rate limiter, and connections closed with 1008, so far. */
  rateLimited(): { refused: number; closed: number };
  /** Runs a socket method outside any socket (the admin API), with the same validation and errors. */
  call(principal: Principal, method: AdminMethod, attributes: unknown): Promise<unknown>;
  connections(): ConnectionInfo[];
  /** Closes connection `id` with 1008; `false` when there is none. */
  closeConnection(id: string, reason: string): boolean;
  /** Closes every connection with 1012 (clients reconnect and resume with `since`). */
  disconnectAll(reason: string): void;
  /** Stops listening and closes every socket with 1001. */
  close(): void;
}

const decoder = new TextDecoder();

/**
 * Starts the uWS app with the `/live` WebSocket endpoint: JWT check during the
 * upgrade (401 with a JSON body saying why), a `session` frame on open, one
 * parse of every frame into the protocol union, and `response` frames that
 * echo `id`. Events reach sockets through uWS topics (see `routeEvents`).
 *
 * uWS rules kept here: everything needed from `req` is copied before any
 * asynchronous step; a closed socket is never touched (`Connection.closed`);
 * replies after an `await` are corked.
 */
export async function startLiveServer(options: LiveServerOptions, host: string, port: number): Promise<LiveServer> {
  const { logger } = options;
  const sockets = new Set<WebSocket<Connection>>();
  const index = new SubscriptionIndex();
  const deliveries = new Deliveries();
  let rateLimited = 0;
  let rateLimitClosed = 0;
  const context: HandlerContext = {
    registry: options.registry,
    index,
    maxSubscriptions: options.maxSubscriptions,
    catchUp: options.catchUp,
    streamCaughtUp: options.streamCaughtUp,
    streamPassed: options.streamPassed,
    replay: options.replay,
    window: options.window,
    positions: options.positions,
    maxReplayBytes: Math.floor(options.maxBackpressureBytes / 2),
    db: options.db,
    messages: options.messages,
    publishEphemeral: options.publishEphemeral,
    maxChatMessageBytes: options.maxChatMessageBytes,
    delivered: (id) => deliveries.wait(id),
    limits: options.limits,
    verifyToken: options.verifyToken,
    tokenRefreshed: (ws) => expiry.set(ws, ws.getUserData().principal.expiresAt),
  };
  const limiter = new RateLimiter(options.rateLimitPerSecond, options.rateLimitBurst);
  const expiry = new ExpirySweep<WebSocket<Connection>>((ws) => {
    if (!ws.getUserData().closed) ws.end(4001, 'token expired: send refresh-token before exp, or reconnect with a new token');
  });

  const behavior: WebSocketBehavior<Connection> = {
    compression: uWS.DISABLED,
    // uWS cuts a connection whose frame passes maxPayloadLength without a close frame (the client
    // sees 1006). Up to twice the limit the frame is read and refused here with a proper 1009.
    maxPayloadLength: options.maxMessageBytes * 2,
    // The gauge closes a socket past MAX_BACKPRESSURE_BYTES with 1013. uWS's own limit is only the
    // safety net for a burst between two sweeps: past it uWS drops frames and cuts the socket (1006).
    maxBackpressure: options.maxBackpressureBytes * HARD_BACKPRESSURE_FACTOR,
    closeOnBackpressureLimit: 1,
    idleTimeout: options.idleTimeoutSeconds,
    sendPingsAutomatically: true,

    upgrade: (res, req, socketContext) =>
      guard('upgrade', null, () => {
        // Everything needed from req is read here: it is gone after this handler returns.
        const { token, protocol } = credentials(req.getQuery('token') ?? '', req.getHeader('authorization'), req.getHeader('sec-websocket-protocol'));
        const client = sanitizeClient(req.getQuery('client'));
        const origin = req.getHeader('origin');
        const key = req.getHeader('sec-websocket-key');
        const extensions = req.getHeader('sec-websocket-extensions');
        if (sockets.size >= options.maxConnections) {
          refuse(res, '503 Service Unavailable', 'LIMIT_EXCEEDED', 'too many connections');
          return;
        }
        if (options.allowedOrigins !== null && origin !== '' && !options.allowedOrigins.has(origin.toLowerCase())) {
          refuse(res, '403 Forbidden', 'FORBIDDEN', `origin ${origin} is not in ALLOWED_ORIGINS`);
          return;
        }
        let principal: Principal;
        if (token === '') {
          if (!options.allowAnonymous) {
            refuse(res, '401 Unauthorized', 'TOKEN_INVALID', 'missing token: connect with ?token=<JWT>, Authorization: Bearer <JWT> or the bearer.<JWT> subprotocol');
            return;
          }
          principal = ANONYMOUS;
        } else {
          try {
            principal = options.verifyToken(token);
          } catch (error) {
            refuse(res, '401 Unauthorized', 'TOKEN_INVALID', (error as Error).message);
            return;
          }
          if (principal.sub === null && !principal.isAdmin && !options.allowAnonymous) {
            refuse(res, '403 Forbidden', 'FORBIDDEN', 'the token is valid but has no sub, and anonymous connections are not allowed (ALLOW_ANONYMOUS)');
            return;
          }
        }
        const conn = newConnection(`${client || 'conn'}-${randomBytes(6).toString('hex')}`, client, principal);
        res.upgrade(conn, key, protocol, extensions, socketContext);
      }, (message) => refuse(res, '500 Internal Server Error', 'INTERNAL', message)),

    open: (ws) =>
      guard('open', ws, () => {
        const conn = ws.getUserData();
        sockets.add(ws);
        expiry.set(ws, conn.principal.expiresAt);
        logger.info({ connection: conn.id, client: conn.client, sub: conn.principal.sub }, 'connection opened');
        send(ws, {
          type: 'session',
          status: 'open',
          data: {
            connectionId: conn.id,
            user: { sub: conn.principal.sub, role: conn.principal.role },
            serverTime: new Date().toISOString(),
            limits: {
              maxMessageBytes: options.maxMessageBytes,
              messagesPerSecond: options.rateLimitPerSecond,
              maxSubscriptions: options.maxSubscriptions,
              maxSubscriptionsPerUser: options.limits.maxSubscriptionsPerUser,
              maxFrameDepth: options.limits.maxFrameDepth,
              maxPendingRequests: options.limits.maxPendingRequests,
              maxFilterValues: options.limits.filter.maxValues,
              maxFilterValueLength: options.limits.filter.maxValueLength,
              maxFilterKeyBytes: options.limits.filter.maxKeyBytes,
              maxFilterGroupsPerConnection: options.limits.maxFilterGroupsPerConnection,
            },
          },
        });
      }),

    message: (ws, message, isBinary) =>
      guard('message', ws, () => {
        if (message.byteLength > options.maxMessageBytes) {
          ws.end(1009, `frame of ${message.byteLength} bytes is over MAX_MESSAGE_BYTES (${options.maxMessageBytes})`);
          return;
        }
        const conn = ws.getUserData();
        const rate = limiter.take(conn.bucket);
        if (rate.verdict === 'close') {
          rateLimitClosed++;
          ws.end(1008, 'rate limit exceeded repeatedly');
          return;
        }
        if (rate.verdict === 'refuse') {
          rateLimited++;
          refuseRate(ws, decoder.decode(message), rate.retryAfter);
          return;
        }
        if (isBinary) {
          send(ws, { type: 'error', error: { code: 'INVALID_MESSAGE', message: 'binary frames are not accepted; send JSON text' } });
          return;
        }
        const parsed = parseClientFrame(decoder.decode(message), options.limits.maxFrameDepth);
        if (!parsed.ok) {
          const { request, error } = parsed;
          const body = { code: error.code, message: error.message };
          send(ws, request ? { type: 'response', ...idOf(request.id), method: request.method, ok: false, error: body } : { type: 'error', error: body });
          return;
        }
        dispatch(ws, parsed.request, message.byteLength);
      }),

    close: (ws, code, message) =>
      guard('close', null, () => {
        const conn = ws.getUserData();
        conn.closed = true;
        sockets.delete(ws);
        expiry.delete(ws);
        index.closed(ws);
        logger.info({ connection: conn.id, client: conn.client, sub: conn.principal.sub, code, reason: decoder.decode(message) }, 'connection closed');
      }),
  };

  function newConnection(id: string, client: string, principal: Principal): Connection {
    return {
      id,
      client,
      principal,
      subscriptions: new Map(),
      closed: false,
      congestedSince: 0,
      congestedBytes: 0,
      drainedAt: 0,
      busy: false,
      queue: [],
      queuedBytes: 0,
      bucket: limiter.bucket(),
    };
  }

  /**
   * Runs a uWS handler so that an exception in it is logged with a
   * correlation id and answered (`INTERNAL` to the connection, or `answer`
   * during an upgrade) instead of reaching uWS, which would end the process.
   */
  function guard(handler: string, ws: WebSocket<Connection> | null, run: () => void, answer?: (message: string) => void): void {
    try {
      run();
    } catch (error) {
      const correlationId = randomUUID();
      const conn = ws?.getUserData();
      logger.error({ err: error, correlationId, handler, connection: conn?.id }, 'handler failed');
      const message = `internal error (correlation id ${correlationId})`;
      try {
        if (answer) answer(message);
        else if (ws && !conn!.closed) send(ws, { type: 'error', error: { code: 'INTERNAL', message } });
      } catch {
        // The response or socket is already gone: the log line is all that is left to do.
      }
    }
  }

  /**
   * Runs a request. Requests of one connection are answered in the order
   * they came: while an asynchronous one runs, later ones wait in the
   * connection's queue, first in first out (so a subscribe waiting to catch
   * up cannot be overtaken by an unsubscribe). The queue is bounded
   * (`MAX_PENDING_REQUESTS` requests, and their frames' bytes by
   * `MAX_BACKPRESSURE_BYTES`): past it a request is refused at once with
   * `LIMIT_EXCEEDED`, without running.
   */
  function dispatch(ws: WebSocket<Connection>, request: ClientRequest, bytes: number): void {
    const conn = ws.getUserData();
    if (!conn.busy) {
      run(ws, conn, request);
      return;
    }
    const { maxPendingRequests, maxPendingBytes } = options.limits;
    if (conn.queue.length >= maxPendingRequests || conn.queuedBytes + bytes > maxPendingBytes) {
      fail(ws, conn, request, new RowcastError('LIMIT_EXCEEDED', `${conn.queue.length} requests are waiting for an earlier one to finish; at most ${maxPendingRequests} (MAX_PENDING_REQUESTS) and ${maxPendingBytes} bytes`));
      return;
    }
    conn.queue.push({ request, bytes });
    conn.queuedBytes += bytes;
  }

  /** Runs `request`; an asynchronous one makes the connection busy until it is answered, then the queue goes on. */
  function run(ws: WebSocket<Connection>, conn: Connection, request: ClientRequest): void {
    const done = execute(ws, conn, request);
    if (!done) return;
    conn.busy = true;
    const next = () => {
      conn.busy = false;
      drain(ws, conn);
    };
    void done.then(next, next);
  }

  /** Runs the queued requests in order until one is asynchronous (or none is left, or the socket closed). */
  function drain(ws: WebSocket<Connection>, conn: Connection): void {
    while (!conn.busy && !conn.closed) {
      const next = conn.queue.shift();
      if (!next) return;
      conn.queuedBytes -= next.bytes;
      run(ws, conn, next.request);
    }
  }

  /** Runs a request's handler and answers it; returns the promise of its answer when it is asynchronous. */
  function execute(ws: WebSocket<Connection>, conn: Connection, request: ClientRequest): Promise<void> | undefined {
    if (request.method === 'ping') {
      ws.cork(() => send(ws, { type: 'pong', ...idOf(request.id) }));
      return undefined;
    }
    try {
      const result = handle(context, ws, conn, request);
      if (!(result instanceof Promise)) {
        reply(ws, conn, request, result);
        return undefined;
      }
      return result.then(
        (data) => {
          try {
            reply(ws, conn, request, data);
          } catch (error) {
            fail(ws, conn, request, error); // data that cannot be serialized: INTERNAL with a correlation id
          }
        },
        (error: unknown) => fail(ws, conn, request, error),
      );
    } catch (error) {
      fail(ws, conn, request, error);
      return undefined;
    }
  }

  /** Answers a frame refused by the rate limiter (with its id when it has one), without running it. */
  function refuseRate(ws: WebSocket<Connection>, text: string, retryAfter: number): void {
    const error = { code: 'RATE_LIMIT_EXCEEDED' as const, message: `over ${options.rateLimitPerSecond} requests per second: retry after ${retryAfter} ms`, retryAfter };
    const request = requestIdOf(text);
    send(ws, request ? { type: 'response', ...idOf(request.id), method: request.method, ok: false, error } : { type: 'error', error });
  }

  function reply(ws: WebSocket<Connection>, conn: Connection, request: ClientRequest, data: unknown): void {
    if (conn.closed || data === ANSWERED) return;
    ws.cork(() => send(ws, responseFrame(request, data)));
  }

  function fail(ws: WebSocket<Connection>, conn: Connection, request: ClientRequest, error: unknown): void {
    let coded: RowcastError;
    if (error instanceof RowcastError) coded = error;
    else {
      const correlationId = randomUUID();
      logger.error({ err: error, correlationId, connection: conn.id, method: request.method }, 'request failed');
      coded = new RowcastError('INTERNAL', `internal error (correlation id ${correlationId})`);
    }
    if (conn.closed) return;
    ws.cork(() =>
      send(ws, {
        type: 'response',
        ...idOf(request.id),
        method: request.method,
        ok: false,
        error: { code: coded.code, message: coded.message },
      }),
    );
  }

  // The same endpoint and routes on ws:// and, with TLS configured, wss://. uWS topics belong to
  // an app, so events are published on each.
  const apps = [uWS.App(), ...(options.tls ? [uWS.SSLApp({ cert_file_name: options.tls.certFile, key_file_name: options.tls.keyFile })] : [])];
  for (const app of apps) {
    app.ws<Connection>('/live', behavior);
    options.routes?.(app);
    app.any(
      '/*',
      httpRoute(logger, 'not found', (_req, reply) => {
        reply.error(new RowcastError('NOT_FOUND', 'no such route: see the README for the HTTP API'));
      }),
    );
  }
  const publisher = {
    publish(topic: string, message: string, isBinary: boolean): boolean {
      for (const app of apps) app.publish(topic, message, isBinary);
      return true;
    },
    numSubscribers(topic: string): number {
      let count = 0;
      for (const app of apps) count += app.numSubscribers(topic);
      return count;
    },
  };

  const published = routeEvents(options.log, publisher, index, {
    onMessage: (event) => deliveries.delivered(event.id!, event.seq),
    onDropped: (event, error) => dropped(event, error),
  });
  options.registry.onPolicyChange((topic) => revalidate(topic));

  /**
   * An event that could not be serialized: logged with its table and key,
   * and its admins (plain and filtered subscriptions) get an `EVENT_DROPPED`
   * error frame; the stream goes on.
   */
  function dropped(event: Event, error: unknown): void {
    const frame = event.droppedFrame();
    logger.error({ err: error, topic: event.topic, seq: event.seq, frame }, 'a change could not be serialized: not delivered, admins told');
    const admin = adminPartition(event.topic);
    publisher.publish(admin, frame, false);
    for (const group of index.groupsIn(event.topic, admin)?.keys() ?? []) publisher.publish(uwsTopic(admin, group.id), frame, false);
  }

  /**
   * A topic's read rule changed (at its place in the stream), or the topic is
   * gone. For a table every non-admin subscription is revoked and its client
   * told: under another policy its cache may hold rows it can no longer read,
   * or lack rows it now can, and only a refetch mends that. For a custom
   * topic, subscriptions of users who may no longer read it are revoked.
   */
  function revalidate(name: string): void {
    const table = options.registry.get(name);
    const custom = options.registry.custom(name);
    for (const ws of [...index.subscribersOf(name)]) {
      const conn = ws.getUserData();
      let reason: string | null;
      try {
        reason = revocationReason(name, table, custom, conn);
      } catch (error) {
        // It runs on the replication stream's path: one connection's odd claims must not stop it. Unsure means revoked.
        const correlationId = randomUUID();
        logger.error({ err: error, correlationId, connection: conn.id, topic: name }, 'revalidating a subscription failed');
        reason = `the subscription could not be checked against the new rules (correlation id ${correlationId})`;
      }
      if (reason === null) continue;
      index.unsubscribe(ws, name);
      ws.cork(() => send(ws, { type: 'subscription', topic: name, status: 'revoked', reason: reason! }));
    }
  }

  /** Why `conn`'s subscription to `name` ends after a rule change, or `null` when it goes on. */
  function revocationReason(name: string, table: TableTopic | undefined, custom: CustomTopic | undefined, conn: Connection): string | null {
    if (table) {
      if (conn.principal.isAdmin) return null;
      return grantedPartitions(name, table.policy, conn.principal) !== null
        ? 'the read policy of this topic changed: subscribe again and refetch'
        : 'the read policy of this topic no longer allows this user';
    }
    if (custom) return customTopicPartitions(custom, conn.principal) !== null ? null : 'the readers of this topic no longer include this user';
    return 'the topic was destroyed';
  }

  const gauge = new BackpressureGauge(sockets, {
    highWaterBytes: Math.floor(options.maxBackpressureBytes / 4),
    maxBytes: options.maxBackpressureBytes,
    graceMs: 5000,
    stallMs: 500,
    sweepIntervalMs: 20,
    sweepCpuShare: 0.01,
    logger,
  });
  const listen = (app: TemplatedApp, at: number) =>
    new Promise<us_listen_socket>((resolve, reject) => {
      app.listen(host, at, (socket) => (socket ? resolve(socket) : reject(new Error(`cannot listen on ${host}:${at}`))));
    });
  const listenSockets = [await listen(apps[0]!, port)];
  if (options.tls) {
    try {
      listenSockets.push(await listen(apps[1]!, options.tls.port));
    } catch (error) {
      uWS.us_listen_socket_close(listenSockets[0]!);
      throw error;
    }
  }
  const portOf = (socket: us_listen_socket) => uWS.us_socket_local_port(socket as unknown as uWS.us_socket);

  return {
    port: portOf(listenSockets[0]!),
    tlsPort: listenSockets[1] ? portOf(listenSockets[1]) : null,
    connectionCount: () => sockets.size,
    eventsPublished: () => published.count,
    eventsByTopic: () => published.byTopic,
    deliveries: () => published.deliveries,
    eventsDropped: () => published.dropped,
    pacer: gauge,
    topicStats: (topic) => index.stats(topic),
    slowConsumersClosed: () => gauge.slowConsumersClosed,
    rateLimited: () => ({ refused: rateLimited, closed: rateLimitClosed }),
    call: async (principal, method, attributes) => {
      const parsed = parseRequest(method, undefined, attributes ?? {});
      if (!parsed.ok) throw parsed.error;
      // These methods never touch the socket (only subscribe does): there is none.
      return handle(context, NO_SOCKET, newConnection('admin-api', 'admin-api', principal), parsed.request);
    },
    connections: () =>
      [...sockets].map((ws) => {
        const conn = ws.getUserData();
        return {
          id: conn.id,
          client: conn.client,
          user: { sub: conn.principal.sub, role: conn.principal.role },
          subscriptions: [...conn.subscriptions.keys()],
          bufferedBytes: ws.getBufferedAmount(),
        };
      }),
    closeConnection: (id, reason) => {
      for (const ws of sockets) {
        if (ws.getUserData().id !== id) continue;
        ws.end(1008, reason);
        return true;
      }
      return false;
    },
    disconnectAll: (reason) => {
      for (const ws of [...sockets]) ws.end(1012, reason);
    },
    close: () => {
      for (const socket of listenSockets) uWS.us_listen_socket_close(socket);
      expiry.stop();
      for (const ws of [...sockets]) ws.end(1001, 'server shutting down');
    },
  };
}

function send(ws: WebSocket<Connection>, frame: ServerFrame): void {
  ws.send(encodeFrame(frame), false);
}

function idOf(id: string | number | undefined): { id?: string | number } {
  return id === undefined ? {} : { id };
}

function refuse(res: HttpResponse, status: string, code: string, message: string): void {
  res
    .writeStatus(status)
    .writeHeader('content-type', 'application/json')
    .end(JSON.stringify({ error: { code, message } }));
}

/** `client=` is reduced to `[A-Za-z0-9_-]`, at most 32 characters. */
function sanitizeClient(raw: string | undefined): string {
  return (raw ?? '').replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32);
}

/**
 * Stored messages waiting for the stream to deliver them (so `new-message`
 * can answer with the `seq`). The stream may deliver a message before its
 * INSERT's result reaches the writer, so recent deliveries are remembered
 * (a bounded number) for a waiter that comes late.
 */
class Deliveries {
  readonly #waiting = new Map<string, (seq: string) => void>();
  readonly #recent = new Map<string, string>();

  /** Resolves with the seq, or `null` if the stream has not delivered the message within `timeoutMs`. */
  wait(id: string, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<string | null> {
    const seq = this.#recent.get(id);
    if (seq !== undefined) {
      this.#recent.delete(id);
      return Promise.resolve(seq);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      this.#waiting.set(id, (seq) => {
        clearTimeout(timer);
        resolve(seq);
      });
    });
  }

  delivered(id: string, seq: string): void {
    const waiter = this.#waiting.get(id);
    if (waiter) {
      this.#waiting.delete(id);
      waiter(seq);
      return;
    }
    this.#recent.set(id, seq);
    if (this.#recent.size > RECENT_DELIVERIES) this.#recent.delete(this.#recent.keys().next().value!);
  }
}

/** The socket argument of handlers run by the admin API, which never use it. */
const NO_SOCKET = null as unknown as WebSocket<Connection>;

/** uWS's hard backpressure limit, as a multiple of MAX_BACKPRESSURE_BYTES. */
const HARD_BACKPRESSURE_FACTOR = 4;

const RECENT_DELIVERIES = 10_000;
/** A stored message not delivered by then (stream down) is answered without its seq. */
const DELIVERY_TIMEOUT_MS = 10_000;
