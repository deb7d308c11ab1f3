import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { devSecret } from './auth/dev-secret.js';
import { ClusterNode, type ClusterState } from './cluster/cluster-node.js';
import { ClusterPipeline } from './cluster/cluster-pipeline.js';
import { createTokenVerifier } from './auth/token-verifier.js';
import type { Config } from './config/config.js';
import { checkReplicationReady } from './db/check-replication-ready.js';
import { createDatabase, type Database } from './db/database.js';
import { startEmbeddedPostgres, type RunningPostgres } from './db/embedded-postgres.js';
import { migrateToLatest } from './db/migrate.js';
import { StartupError } from './errors.js';
import { ensureFullIdentity } from './policies/ensure-full-identity.js';
import { EventBuilder } from './events/event-builder.js';
import { seqLsn } from './events/seq.js';
import { valueParser } from './events/value-parser.js';
import { mountAdminRoutes } from './http/admin-routes.js';
import { createMetrics } from './http/metrics.js';
import { mountInspectorRoutes } from './http/inspector-routes.js';
import { mountStatusRoutes } from './http/status-routes.js';
import { operatorAccess } from './http/operator-access.js';
import type { ClientLimits } from './live/client-limits.js';
import { startLiveServer, type LiveServer } from './live/live-server.js';
import { uwsEngine } from './live/uws-engine.js';
import type { EventLog } from './log/event-log.js';
import { InProcessEventLog } from './log/in-process-event-log.js';
import { ReplayWindow } from './log/replay-window.js';
import { minLsn } from './replication/lsn.js';
import { ReplicationStream, type ReplicationState } from './replication/replication-stream.js';
import { ensureSlotAndPublication } from './replication/slot-and-publication.js';
import { SlotMonitor, type SlotReading } from './replication/slot-monitor.js';
import { WalFlushPosition } from './replication/wal-flush-position.js';
import { MessagePositions } from './topics/message-positions.js';
import { MessageReplay } from './topics/message-replay.js';
import { MessageWriter } from './topics/message-writer.js';
import { TopicRegistry } from './topics/topic-registry.js';
import { VERSION } from './version.js';

/** A running rowcast server. */
export interface RowcastServer {
  /** The /live port actually bound. */
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
  status(): ServerStatus;
  /** Closes sockets (1001), reports the handed-off position, closes the database. */
  close(): Promise<void>;
}

/** Where this node's events come from: the slot itself (one node), or the cluster stream. */
type StreamSource = Pick<ReplicationStream, 'start' | 'stop' | 'state' | 'waitFor'>;

/** The `/status` document. */
export interface ServerStatus {
  readonly version: string;
  /** This process among the nodes that may share the database: `host:pid`. */
  readonly nodeId: string;
  readonly engine: typeof uwsEngine;
  readonly uptimeSeconds: number;
  readonly connections: number;
  readonly eventsPublished: number;
  /** Events that could not be serialized and went to no one (admins got EVENT_DROPPED). */
  readonly eventsDropped: number;
  /** Frames handed to sockets. */
  readonly deliveries: number;
  readonly slowConsumersClosed: number;
  /** Frames refused by the rate limiter, and connections closed with 1008 for going on. */
  readonly rateLimited: { readonly refused: number; readonly closed: number };
  readonly replication: ReplicationState & { readonly slot: SlotReading | null };
  /** This node's part in the cluster (`REDIS_URL` set), else null. */
  readonly cluster: ClusterState | null;
  /** Events held for `subscribe` with `since` (at most `HISTORY_EVENTS`). */
  readonly replayWindowEvents: number;
  readonly topics: Array<{ name: string; read: string; subscribers: number; filterGroups: number }>;
  readonly customTopics: Array<{ name: string; history: number; subscribers: number }>;
}

/**
 * Starts rowcast: the database (embedded when `DATABASE_URL` is unset),
 * pre-flight checks, migrations, slot and publication, topic registry, the
 * /live endpoint, and finally the replication stream.
 *
 * @example
 * const server = await startServer(loadConfig(process.env));
 * console.log(server.port);
 */
export async function startServer(config: Config, logger: Logger = pino({ level: config.LOG_LEVEL })): Promise<RowcastServer> {
  const startedAt = Date.now();
  let embedded: RunningPostgres | null = null;
  let db: Database | null = null;
  try {
    let url = config.DATABASE_URL;
    if (url === undefined) {
      embedded = await startEmbeddedPostgres({
        dataDir: path.join(config.DATA_DIR, 'pgdata'),
        port: config.EMBEDDED_PG_PORT,
        onLog: (line) => logger.debug({ postgres: line.trim() }, 'embedded postgres'),
      });
      url = embedded.url;
    }
    const publicKey = config.JWT_PUBLIC_KEY_FILE === undefined ? undefined : readPublicKey(config.JWT_PUBLIC_KEY_FILE);
    const jwtSecret = config.JWT_SECRET ?? (embedded && publicKey === undefined ? devSecret(config.DATA_DIR) : undefined);
    if (jwtSecret === undefined && publicKey === undefined) {
      throw new StartupError('JWT_SECRET (at least 16 characters) or JWT_PUBLIC_KEY_FILE is required when DATABASE_URL is set');
    }

    db = createDatabase(url);
    const database = db;
    await checkReplicationReady(db);
    await migrateToLatest(db);
    const slot = await ensureSlotAndPublication(db, {
      slotName: config.SLOT_NAME,
      publicationName: config.PUBLICATION_NAME,
      tables: config.PUBLICATION_TABLES,
    });
    if (slot.tablesWithoutIdentity.length > 0) {
      logger.warn(
        { tables: slot.tablesWithoutIdentity },
        'published tables without a primary key or replica identity: Postgres refuses UPDATE/DELETE on them; ' +
          'add a primary key or ALTER TABLE … REPLICA IDENTITY FULL',
      );
    }
    const registry = new TopicRegistry({ db, publicationName: config.PUBLICATION_NAME });
    await registry.load();
    await ensureIdentities(db, registry, logger);

    const log = new InProcessEventLog();
    let live: LiveServer | null = null;
    const positions = new MessagePositions({ db, logger });
    const window = new ReplayWindow({ log, capacity: config.HISTORY_EVENTS, startLsn: slot.confirmedFlushLsn });
    registry.onPolicyChange((topic) => window.ruleChanged(topic));
    const builder = new EventBuilder({
      registry,
      log,
      logger,
      startLsn: slot.confirmedFlushLsn,
      onStoredMessage: (event, commitLsn) => positions.record(event, commitLsn),
    });
    const pacer = { congested: () => live?.pacer.congested() ?? false };
    // One node reads the slot itself; in a cluster every node reads the cluster stream the leader fills.
    const pipeline = config.REDIS_URL === undefined ? null : new ClusterPipeline(builder, registry, window, () => live, logger);
    const cluster =
      config.REDIS_URL === undefined || pipeline === null
        ? null
        : new ClusterNode({
            redisUrl: config.REDIS_URL,
            databaseUrl: url,
            db,
            slotName: config.SLOT_NAME,
            publicationName: config.PUBLICATION_NAME,
            valueParser,
            streamLength: config.CLUSTER_STREAM_LENGTH,
            ...(config.CLUSTER_SECRET !== undefined ? { secret: config.CLUSTER_SECRET } : {}),
            failoverMs: config.CLUSTER_FAILOVER_MS,
            consumer: pipeline,
            // The window refills from the cluster stream; stored messages' positions still hold the slot.
            holdBack: () => positions.holdBack(),
            pacer,
            logger,
          });
    const stream: StreamSource =
      cluster ??
      new ReplicationStream({
        url,
        slotName: config.SLOT_NAME,
        publicationName: config.PUBLICATION_NAME,
        startLsn: slot.confirmedFlushLsn,
        valueParser,
        sink: builder,
        logger,
        pacer,
        // After a crash the slot gives back the whole replay window and every message whose position is unwritten.
        holdBack: () => minLsn(positions.holdBack(), window.holdBack()),
      });
    const slotMonitor = new SlotMonitor({ db, slotName: config.SLOT_NAME, handedOffLsn: () => stream.state().handedOffLsn, logger });
    const flushPosition = new WalFlushPosition(database);
    const streamCaughtUp = async () => {
      // With the stream down there is nothing to wait for: what is committed now arrives when it is back.
      if (!stream.state().connected) return;
      await stream.waitFor(await flushPosition.current(), 5000);
    };

    const status = (): ServerStatus => ({
      version: VERSION,
      nodeId: `${hostname()}:${process.pid}`,
      engine: uwsEngine,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      connections: live?.connectionCount() ?? 0,
      eventsPublished: live?.eventsPublished() ?? 0,
      eventsDropped: live?.eventsDropped() ?? 0,
      deliveries: live?.deliveries() ?? 0,
      slowConsumersClosed: live?.slowConsumersClosed() ?? 0,
      rateLimited: live?.rateLimited() ?? { refused: 0, closed: 0 },
      replication: { ...stream.state(), slot: slotMonitor.reading },
      cluster: cluster?.clusterState() ?? null,
      replayWindowEvents: window.size,
      topics: registry.list().map((t) => ({
        name: t.name,
        read: t.policy.read,
        ...(live?.topicStats(t.name) ?? { subscribers: 0, filterGroups: 0 }),
      })),
      customTopics: registry.customTopics().map((t) => ({
        name: t.name,
        history: t.history,
        subscribers: live?.topicStats(t.name).subscribers ?? 0,
      })),
    });
    const verifyToken = createTokenVerifier({
      secret: jwtSecret,
      publicKey,
      algorithms: config.JWT_ALGORITHMS,
      clockToleranceSeconds: config.JWT_CLOCK_TOLERANCE_SECONDS,
      audience: config.JWT_AUDIENCE,
      issuer: config.JWT_ISSUER,
      requireExp: config.JWT_REQUIRE_EXP,
      roleClaim: config.ROLE_CLAIM,
      adminRole: config.ADMIN_ROLE,
      groupClaims: () => registry.groupClaims(),
    });
    const access = operatorAccess({ verifyToken, public: config.STATUS_PUBLIC, ...(config.METRICS_TOKEN ? { metricsToken: config.METRICS_TOKEN } : {}) });
    const mountMetrics = createMetrics({
      status,
      slot: () => slotMonitor.reading,
      eventsByTopic: () => live?.eventsByTopic() ?? new Map(),
      access,
      logger,
    });
    live = await startLiveServer(
      {
        verifyToken,
        registry,
        db: database,
        messages: new MessageWriter({ db: database, logger }),
        publishEphemeral:
          cluster && pipeline
            ? (topic, sender, message) => pipeline.publish(cluster, topic, sender, message)
            : (topic, sender, message) => builder.publishEphemeral(topic, sender, message),
        maxChatMessageBytes: Math.min(config.MAX_CHAT_MESSAGE_BYTES, config.MAX_MESSAGE_BYTES - 1024),
        catchUp: async () => {
          await Promise.all([registry.refreshTables(), streamCaughtUp()]);
        },
        streamCaughtUp,
        streamPassed: (seq) => streamPassed(stream, log, flushPosition, seq),
        replay: new MessageReplay({ db: database, log, positions, maxMessages: MAX_REPLAYED_MESSAGES }),
        positions,
        window,
        log,
        logger,
        allowAnonymous: config.ALLOW_ANONYMOUS,
        allowedOrigins: parseOrigins(config.ALLOWED_ORIGINS),
        rateLimitBurst: config.RATE_LIMIT_BURST,
        maxConnections: config.MAX_CONNECTIONS,
        maxSubscriptions: config.MAX_SUBSCRIPTIONS,
        maxMessageBytes: config.MAX_MESSAGE_BYTES,
        maxBackpressureBytes: config.MAX_BACKPRESSURE_BYTES,
        idleTimeoutSeconds: config.IDLE_TIMEOUT_SECONDS,
        rateLimitPerSecond: config.RATE_LIMIT_PER_SECOND,
        limits: clientLimits(config),
        tls: tlsOptions(config),
        routes: (app) => {
          mountStatusRoutes(app, {
            status,
            health: () => {
              const failing = [
                ...(slotMonitor.databaseUp ? [] : ['database']),
                ...(stream.state().connected ? [] : ['replication']),
                ...(cluster && !cluster.clusterState().redisConnected ? ['redis'] : []),
              ];
              return { ok: failing.length === 0, failing };
            },
            access,
            logger,
          });
          mountMetrics(app);
          if (config.INSPECTOR) mountInspectorRoutes(app, logger);
          mountAdminRoutes(app, {
            verifyToken,
            db: database,
            call: (principal, method, attributes) => live!.call(principal, method, attributes),
            connections: () => live?.connections() ?? [],
            closeConnection: (id, reason) => live?.closeConnection(id, reason) ?? false,
            maxBodyBytes: config.MAX_MESSAGE_BYTES,
            maxBodyDepth: config.MAX_FRAME_DEPTH,
            logger,
          });
        },
      },
      config.HOST,
      config.PORT,
    );
    try {
      await stream.start();
    } catch (error) {
      live.close();
      throw error;
    }
    await slotMonitor.start();
    logger.info({ port: live.port, tlsPort: live.tlsPort, engine: uwsEngine, version: VERSION }, 'rowcast started');

    const running = live;
    return {
      port: running.port,
      tlsPort: running.tlsPort,
      databaseUrl: url,
      embedded: embedded !== null,
      jwtSecret: jwtSecret ?? null,
      status,
      close: async () => {
        running.close();
        slotMonitor.stop();
        await stream.stop();
        positions.close();
        await database.destroy();
        await embedded?.stop();
      },
    };
  } catch (error) {
    await db?.destroy().catch(() => {});
    await embedded?.stop().catch(() => {});
    throw error;
  }
}

/**
 * Whether the stream has reached the change `seq` names: its event is in the
 * log (events of a transaction enter it as they are decoded), or the stream
 * handed off a later position. After a restart the stream may be re-reading a
 * long backlog, so this waits as long as the stream makes progress (up to a
 * minute) rather than a fixed time; a stalled or disconnected stream gives up
 * after a second without progress. A seq at or past the database's flush
 * position was never produced by it (another database, or made up): no wait.
 */
async function streamPassed(stream: StreamSource, log: EventLog, flush: WalFlushPosition, seq: string): Promise<boolean> {
  if (log.lastSeq >= seq) return true;
  const target = seqLsn(seq) + 1n;
  const flushed = await flush.current().catch(() => null); // the database is down: the wait below decides
  if (flushed !== null && target > flushed) return false;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (log.lastSeq >= seq) return true;
    const changes = stream.state().changes;
    if (await stream.waitFor(target, 1000)) return true;
    if (log.lastSeq >= seq) return true;
    if (stream.state().changes === changes || Date.now() > deadline) return false;
  }
}

/** The bounds on what one client controls, from the configuration. */
function clientLimits(config: Config): ClientLimits {
  return Object.freeze({
    maxFrameDepth: config.MAX_FRAME_DEPTH,
    maxPendingRequests: config.MAX_PENDING_REQUESTS,
    maxPendingBytes: config.MAX_BACKPRESSURE_BYTES,
    maxSubscriptionsPerUser: config.MAX_SUBSCRIPTIONS_PER_USER,
    maxFilterGroupsPerTopic: config.MAX_FILTER_GROUPS_PER_TOPIC,
    maxFilterGroupsPerPartition: config.MAX_FILTER_GROUPS_PER_PARTITION,
    maxFilterGroupsPerConnection: config.MAX_FILTER_GROUPS_PER_CONNECTION,
    filter: Object.freeze({
      maxValues: config.MAX_FILTER_VALUES,
      maxValueLength: config.MAX_FILTER_VALUE_LENGTH,
      maxKeyBytes: config.MAX_FILTER_KEY_BYTES,
    }),
  });
}

/** `wss://` on `TLS_PORT` when both `TLS_CERT_FILE` and `TLS_KEY_FILE` are set (and readable). */
function tlsOptions(config: Config): { port: number; certFile: string; keyFile: string } | undefined {
  const { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile } = config;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new StartupError('TLS needs both TLS_CERT_FILE and TLS_KEY_FILE');
  for (const [key, file] of [['TLS_CERT_FILE', certFile], ['TLS_KEY_FILE', keyFile]] as const) {
    try {
      readFileSync(file);
    } catch (error) {
      throw new StartupError(`${key}=${JSON.stringify(file)}: cannot read it (${(error as Error).message})`);
    }
  }
  return { port: config.TLS_PORT, certFile, keyFile };
}

/** Reads the PEM public key of `JWT_PUBLIC_KEY_FILE`, or stops start-up saying why not. */
function readPublicKey(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new StartupError(`JWT_PUBLIC_KEY_FILE=${JSON.stringify(file)}: cannot read it (${(error as Error).message})`);
  }
  try {
    createPublicKey(pem);
  } catch {
    throw new StartupError(`JWT_PUBLIC_KEY_FILE=${JSON.stringify(file)}: not a PEM public key (RSA or EC)`);
  }
  return pem;
}

/** `ALLOWED_ORIGINS`: `*` (any, or none sent) or a comma-separated list of origins such as `https://app.example.com`. */
function parseOrigins(list: string): ReadonlySet<string> | null {
  if (list.trim() === '*') return null;
  return new Set(list.split(',').map((origin) => origin.trim().replace(/\/$/, '').toLowerCase()).filter((origin) => origin !== ''));
}

/** Most messages one `since` replay of a custom topic sends (further behind: `resumed: false`). */
const MAX_REPLAYED_MESSAGES = 10_000;

/**
 * Tables with a policy should carry the whole old row. For `owner` and
 * `group` it is required (moves and deletes are routed by the old row):
 * start-up fails naming the table and the fix when it cannot be set.
 */
async function ensureIdentities(db: Database, registry: TopicRegistry, logger: Logger): Promise<void> {
  const partial = registry.list().filter((t) => t.policy.read !== 'admin' && !t.fullIdentity);
  if (partial.length === 0) return;
  const failed = await ensureFullIdentity(db, partial);
  const required: string[] = [];
  for (const { table, reason } of failed) {
    const topic = partial.find((t) => `${t.schema}.${t.table}` === table)!;
    if (topic.policy.read === 'owner' || topic.policy.read === 'group') required.push(`${table} (${reason})`);
    else logger.warn({ table, reason }, 'cannot set REPLICA IDENTITY FULL: updates will lack data.old');
  }
  if (required.length > 0) {
    throw new StartupError(
      `tables with owner/group policies must give the old row on update and delete, and these cannot: ${required.join('; ')}. ` +
        `As their owner run ALTER TABLE <table> REPLICA IDENTITY FULL;`,
    );
  }
  await registry.refreshTables();
}
