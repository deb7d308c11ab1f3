import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import { tokenKeys, type TokenKeys } from '../auth/token-keys.js';
import { createTokenVerifier, type TokenVerifier } from '../auth/token-verifier.js';
import type { Config } from '../config/config.js';
import type { BackpressureGauge } from '../core/backpressure-gauge.js';
import type { Publisher } from '../core/event-router.js';
import { closeAll, createCore, flowControl, type CoreOptions, type RowcastCore } from '../core/rowcast-core.js';
import type { Session } from '../core/session.js';
import { parseOrigins } from '../doors/door-socket.js';
import { liveDoor, type LiveDoorOptions } from '../doors/live/live-door.js';
import { liveEncoder } from '../doors/live/live-encoder.js';
import { phoenixDoor } from '../doors/phoenix/phoenix-door.js';
import { supabaseDoor } from '../doors/supabase/supabase-door.js';
import { clusterStreamKey } from '../cluster/cluster-node.js';
import { PresenceSync } from '../cluster/presence-sync.js';
import { createMetrics } from '../http/metrics.js';
import type { NodeStatus } from '../http/node-status.js';
import { operatorAccess } from '../http/operator-access.js';
import { CLOSE_CODES } from '../protocol/index.js';
import { SlotMonitor } from '../replication/slot-monitor.js';
import { MessageReplay } from '../log/message-replay.js';
import { MessageWriter } from '../topics/message-writer.js';
import { VERSION } from '../version.js';
import { bootDatabase, type BootedDatabase } from './boot-database.js';
import { clientLimits } from './client-limits.js';
import { nodeHealth, nodeStatus } from './node-status.js';
import { buildPipeline, type Pipeline } from './pipeline.js';
import { mountRoutes } from './routes.js';
import { streamWaits } from './stream-waits.js';
import { SnapshotReader } from '../events/snapshot-reader.js';
import { Snapshots } from '../core/snapshot.js';
import { Hooks, type RowcastHooks } from '../core/hooks.js';
import { uwsApps } from './uws-apps.js';
import { uwsEngine } from './uws-engine.js';

/** A running rowcast node. */
export interface RowcastServer {
  /** The `/live` port actually bound. */
  readonly port: number;
  /** The wss:// port bound, when TLS is configured. */
  readonly tlsPort: number | null;
  /** The database URL in use (the embedded one when `DATABASE_URL` was unset). */
  readonly databaseUrl: string;
  /** Whether the database is the embedded Postgres. */
  readonly embedded: boolean;
  /** The HMAC secret tokens are checked with (`null`: public-key tokens only). */
  readonly jwtSecret: string | null;
  /** What `/status` reports. */
  status(): NodeStatus;
  /** The core API every door uses (library mode's calls go through it). */
  readonly core: RowcastCore;
  /** Closes sockets (1001), reports the handed-off position, closes the database. */
  close(): Promise<void>;
}

/** What {@link startServer} takes besides the configuration. */
export interface ServerOptions {
  /**
   * Doors besides `/live` (src/doors/): each is made once from the core and
   * returns how it mounts its WebSocket route on a uWS app. It is mounted on
   * every app of the node, after `/live` and before the 404 route.
   *
   * @example
   * startServer(config, logger, { doors: [(core) => { const behavior = toyBehavior(core); return (app) => app.ws('/toy', behavior); }] });
   */
  readonly doors?: ReadonlyArray<(core: RowcastCore) => (app: TemplatedApp) => void>;
  /** The host app's hooks (library mode) and how long each may take (default 5,000 ms). */
  readonly hooks?: RowcastHooks;
  readonly hookTimeoutMs?: number;
}

/** How long a hook may take before its request fails with INTERNAL. */
const DEFAULT_HOOK_TIMEOUT_MS = 5000;

/** Rows per snapshot page frame (a few hundred KB at most for typical rows). */
const SNAPSHOT_PAGE_ROWS = 500;

/** Most messages one `since` replay of a custom topic sends (further behind: `resumed: false`). */
const MAX_REPLAYED_MESSAGES = 10_000;

/**
 * Starts a rowcast node, in stages (docs/architecture.md, "Start-up"): the
 * database (embedded when `DATABASE_URL` is unset, checked, migrated, slot,
 * publication, topics); the token keys; the pipeline (the slot's stream, or
 * the cluster stream); the core; the doors and routes on the uWS apps; then
 * the stream. A failing stage stops start-up with a message and leaves
 * nothing running.
 *
 * @example
 * const server = await startServer(loadConfig(process.env));
 * console.log(server.port);
 */
export async function startServer(config: Config, logger: Logger = pino({ level: config.LOG_LEVEL }), options: ServerOptions = {}): Promise<RowcastServer> {
  const startedAt = Date.now();
  const database = await bootDatabase(config, logger);
  try {
    const keys = tokenKeys({ jwtSecret: config.JWT_SECRET, publicKeyFile: config.JWT_PUBLIC_KEY_FILE, embedded: database.embedded !== null, dataDir: config.DATA_DIR });
    const verifyToken = tokenVerifier(config, keys, database);
    // Sessions exist before the core: the stream's flow control reads them, and the stream comes first.
    const sessions = new Set<Session>();
    const gauge = flowControl(sessions, config.MAX_BACKPRESSURE_BYTES, logger);
    const pipeline = buildPipeline(config, database, { pacer: gauge, disconnectAll: (reason) => closeAll(sessions, CLOSE_CODES.STREAM_GAP, reason), logger });
    const apps = uwsApps(config);
    const snapshotReader = new SnapshotReader({ url: database.url, connections: config.SNAPSHOT_CONCURRENCY, pageRows: SNAPSHOT_PAGE_ROWS });
    const hooks = new Hooks(options.hooks ?? {}, options.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS, logger, config.ADMIN_ROLE);
    const core = createCore(coreOptions(config, { database, pipeline, verifyToken, publisher: gauge.metered(apps.publisher), sessions, gauge, snapshotReader, hooks, logger }));
    const live = liveDoor(liveDoorOptions(config, core, logger));
    const phoenix = phoenixDoor({ ...liveDoorOptions(config, core, logger) });
    const supabase = supabaseDoor({ ...liveDoorOptions(config, core, logger) });
    const doors = [
      (app: TemplatedApp) => app.ws('/socket/websocket', phoenix.behavior),
      (app: TemplatedApp) => app.ws('/realtime/v1/websocket', supabase.behavior),
      ...(options.doors ?? []).map((door) => door(core)),
    ];
    const slotMonitor = new SlotMonitor({ db: database.db, slotName: config.SLOT_NAME, handedOffLsn: () => pipeline.source.state().handedOffLsn, logger });
    const status = () => nodeStatus({ core, pipeline, slotMonitor, doors: [live, phoenix, supabase], startedAt });
    const access = operatorAccess({ verifyToken, public: config.STATUS_PUBLIC, ...(config.METRICS_TOKEN ? { metricsToken: config.METRICS_TOKEN } : {}) });
    const mountMetrics = createMetrics({ status, slot: () => slotMonitor.reading, eventsByTopic: () => core.counters.byTopic, access, logger });
    const health = () => nodeHealth({ pipeline, slotMonitor });
    for (const app of apps.apps) mountRoutes(app, { config, core, live, doors, db: database.db, verifyToken, access, status, health, mountMetrics, logger });

    const { port, tlsPort } = await apps.listen(config.HOST);
    try {
      await pipeline.source.start();
    } catch (error) {
      apps.close();
      core.shutdown();
      await snapshotReader.close();
      throw error;
    }
    await slotMonitor.start();
    pipeline.floors?.start();
    const presenceSync = config.REDIS_URL === undefined ? null : new PresenceSync({
      redisUrl: config.REDIS_URL,
      prefix: `${clusterStreamKey(config.SLOT_NAME)}:presence`,
      store: core.presence,
      ttlMs: config.PRESENCE_NODE_TTL_MS,
      ...(config.CLUSTER_SECRET !== undefined ? { secret: config.CLUSTER_SECRET } : {}),
      logger,
    });
    presenceSync?.start();
    logger.info({ port, tlsPort, engine: uwsEngine, version: VERSION }, 'rowcast started');
    const close = async () => {
      apps.close();
      core.shutdown();
      await presenceSync?.stop();
      slotMonitor.stop();
      pipeline.floors?.stop();
      await pipeline.source.stop();
      pipeline.positions.close();
      await snapshotReader.close();
      await database.close();
    };
    return { port, tlsPort, databaseUrl: database.url, embedded: database.embedded !== null, jwtSecret: keys.secret, status, core, close };
  } catch (error) {
    await database.close().catch(() => {});
    throw error;
  }
}

/** Checks tokens with the configured keys and claims rules. */
function tokenVerifier(config: Config, keys: TokenKeys, database: BootedDatabase): TokenVerifier {
  return createTokenVerifier({
    ...(keys.secret !== null ? { secret: keys.secret } : {}),
    ...(keys.publicKey !== null ? { publicKey: keys.publicKey } : {}),
    ...(config.JWT_ALGORITHMS !== undefined ? { algorithms: config.JWT_ALGORITHMS } : {}),
    clockToleranceSeconds: config.JWT_CLOCK_TOLERANCE_SECONDS,
    ...(config.JWT_AUDIENCE !== undefined ? { audience: config.JWT_AUDIENCE } : {}),
    ...(config.JWT_ISSUER !== undefined ? { issuer: config.JWT_ISSUER } : {}),
    requireExp: config.JWT_REQUIRE_EXP,
    roleClaim: config.ROLE_CLAIM,
    adminRole: config.ADMIN_ROLE,
    groupClaims: () => database.registry.groupClaims(),
  });
}

/** What the core is built from, besides the configuration. */
interface CoreParts {
  readonly database: BootedDatabase;
  readonly pipeline: Pipeline;
  readonly verifyToken: TokenVerifier;
  readonly publisher: Publisher;
  readonly sessions: Set<Session>;
  readonly gauge: BackpressureGauge;
  readonly snapshotReader: SnapshotReader;
  readonly hooks: Hooks;
  readonly logger: Logger;
}

function coreOptions(config: Config, { database, pipeline, verifyToken, publisher, sessions, gauge, snapshotReader, hooks, logger }: CoreParts): CoreOptions {
  const waits = streamWaits(pipeline.source, pipeline.log, database.db);
  return {
    hooks,
    snapshots: new Snapshots({
      open: (query) => snapshotReader.open(query),
      streamReached: (lsn) => waits.reached(lsn),
      log: pipeline.log,
      window: pipeline.window,
      maxHeldBytes: Math.floor(config.MAX_BACKPRESSURE_BYTES / 2),
      logger,
      maxRows: config.SNAPSHOT_MAX_ROWS,
      concurrency: config.SNAPSHOT_CONCURRENCY,
      pageRows: SNAPSHOT_PAGE_ROWS,
      pauseBytes: Math.floor(config.MAX_BACKPRESSURE_BYTES / 4),
      maxAggregateRows: config.AGGREGATE_MAX_ROWS,
    }),
    registry: database.registry,
    log: pipeline.log,
    window: pipeline.window,
    replay: new MessageReplay({ db: database.db, log: pipeline.log, positions: pipeline.positions, maxMessages: MAX_REPLAYED_MESSAGES }),
    positions: pipeline.positions,
    messages: new MessageWriter({ db: database.db, logger }),
    db: database.db,
    verifyToken,
    publishEphemeral: (topic, sender, message, origin) => pipeline.publishEphemeral(topic, sender, message, origin),
    catchUp: async () => {
      await Promise.all([database.registry.refreshTables(), waits.caughtUp()]);
    },
    streamCaughtUp: () => waits.caughtUp(),
    streamPassed: (seq) => waits.passed(seq),
    publisher,
    defaultEncoder: liveEncoder,
    allowAnonymous: config.ALLOW_ANONYMOUS,
    nodeId: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    presenceBatchMs: config.PRESENCE_BATCH_MS,
    limits: clientLimits(config),
    maxSubscriptions: config.MAX_SUBSCRIPTIONS,
    maxChatMessageBytes: Math.min(config.MAX_CHAT_MESSAGE_BYTES, config.MAX_MESSAGE_BYTES - 1024),
    direct: { who: config.DIRECT_MESSAGES, history: config.DIRECT_HISTORY },
    maxBackpressureBytes: config.MAX_BACKPRESSURE_BYTES,
    sessions,
    gauge,
    logger,
  };
}

function liveDoorOptions(config: Config, core: RowcastCore, logger: Logger): LiveDoorOptions {
  return {
    core,
    logger,
    allowedOrigins: parseOrigins(config.ALLOWED_ORIGINS),
    maxConnections: config.MAX_CONNECTIONS,
    maxMessageBytes: config.MAX_MESSAGE_BYTES,
    maxBackpressureBytes: config.MAX_BACKPRESSURE_BYTES,
    idleTimeoutSeconds: config.IDLE_TIMEOUT_SECONDS,
    rateLimitPerSecond: config.RATE_LIMIT_PER_SECOND,
    rateLimitBurst: config.RATE_LIMIT_BURST,
    authFirstFrame: config.AUTH_FIRST_FRAME,
    authTimeoutSeconds: config.AUTH_TIMEOUT_SECONDS,
  };
}
