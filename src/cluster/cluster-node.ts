import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { formatLsn, lsnHex, minLsn, parseLsn, type Lsn } from '../replication/lsn.js';
import { PositionWaiters } from '../replication/position-waiters.js';
import { ReplicationStream, type ReplicationState, type ValueParser } from '../replication/replication-stream.js';
import { LeaderLock } from './leader-lock.js';
import { RedisStreamReader, type EphemeralRecord, type StreamConsumer } from './redis-stream-reader.js';
import { appendEphemeral, RedisStreamSink } from './redis-stream-sink.js';

export interface ClusterNodeOptions {
  readonly redisUrl: string;
  /** Postgres: the slot's database. */
  readonly databaseUrl: string;
  readonly db: Database;
  readonly slotName: string;
  readonly publicationName: string;
  readonly valueParser: (typeOid: number) => ValueParser;
  /** Entries the Redis stream keeps, about (`CLUSTER_STREAM_LENGTH`). */
  readonly streamLength: number;
  /** How often followers try to take over (`CLUSTER_FAILOVER_MS`). */
  readonly failoverMs: number;
  /** This node's builder and the rest of its pipeline. */
  readonly consumer: StreamConsumer;
  /** The slot must not be acknowledged past this either (stored messages whose position is unwritten). */
  readonly holdBack: () => Lsn | null;
  /** While it reports congestion, this node stops reading the cluster stream. */
  readonly pacer?: { congested(): boolean };
  /** `CLUSTER_SECRET`: every stream entry is signed with it, and entries without its signature are gaps. */
  readonly secret?: string;
  readonly logger: Logger;
}

/** This node's part in the cluster, for /status and /metrics. */
export interface ClusterState {
  readonly role: 'leader' | 'follower';
  readonly node: string;
  /** The leader as it last announced itself. */
  readonly leader: string | null;
  /** The id of the last cluster-stream entry this node read. */
  readonly streamId: string;
  /** Everything before this position has been routed by this node. */
  readonly position: string;
  /** Bytes of WAL the leader has handed off that this node has not routed yet. */
  readonly lagBytes: number;
  readonly redisConnected: boolean;
  /** Times this node found entries it had not read gone (Redis lost the stream, or trimmed it first). */
  readonly gaps: number;
}

/** The Redis stream of a cluster reading `slotName`. */
export const clusterStreamKey = (slotName: string): string => `rowcast:${slotName}`;

/** Every Redis key a cluster on `slotName` uses: the stream, its epoch, its entry counter, the leader's announcement. */
export function clusterKeys(slotName: string): string[] {
  const key = clusterStreamKey(slotName);
  return [key, `${key}:epoch`, `${key}:n`, `${key}:leader`];
}

const POSITION_INTERVAL_MS = 100;
/** An LSN as Postgres writes it (`16/B374D848`). */
const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;
const ANNOUNCE_INTERVAL_MS = 1000;

/**
 * A rowcast node in cluster mode (docs/cluster.md, `REDIS_URL` set). Every node
 * reads the cluster stream (`rowcast:<slot>` in Redis) into its own pipeline,
 * exactly as a single node reads the slot; the node holding the leader lock
 * also reads the slot and appends it to the stream. Followers that need the
 * stream to reach a position (`subscribe` waits for every commit before it)
 * ask the leader over pub/sub, which then reports its position even while idle.
 */
export class ClusterNode {
  readonly #options: ClusterNodeOptions;
  readonly #key: string;
  readonly #node = `${hostname()}:${process.pid}`;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #reader: RedisStreamReader;
  readonly #lock: LeaderLock;
  #stream: ReplicationStream | null = null;
  #sink: RedisStreamSink | null = null;
  #position: Lsn = 0n;
  #leaderPosition: Lsn = 0n;
  /** Set by `stop`: a lock won from then on leads nothing. */
  #stopped = false;
  #leader: string | null = null;
  readonly #waiters = new PositionWaiters();
  #timers: NodeJS.Timeout[] = [];
  #lastSentPosition: Lsn = 0n;
  #gaps = 0;
  #positionTimer: NodeJS.Timeout | null = null;

  constructor(options: ClusterNodeOptions) {
    this.#options = options;
    this.#key = clusterStreamKey(options.slotName);
    this.#redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 2 });
    this.#subscriber = new Redis(options.redisUrl);
    this.#redis.on('error', () => {});
    this.#subscriber.on('error', () => {});
    const outer = options.consumer;
    const consumer: StreamConsumer = {
      change: (tx, change) => outer.change(tx, change),
      dropped: (tx, change, reason) => outer.dropped(tx, change, reason),
      commit: (tx, end) => outer.commit(tx, end),
      ephemeral: (record) => outer.ephemeral(record),
      position: (lsn) => {
        if (lsn <= this.#position) return;
        this.#position = lsn;
        outer.position(lsn);
        this.#waiters.advance(lsn);
      },
      gap: (reason) => {
        this.#gaps++;
        outer.gap(reason);
      },
    };
    this.#reader = new RedisStreamReader({
      redis: new Redis(options.redisUrl),
      key: this.#key,
      consumer,
      logger: options.logger,
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
      ...(options.pacer ? { pacer: options.pacer } : {}),
    });
    this.#lock = new LeaderLock({
      url: options.databaseUrl,
      name: options.slotName,
      intervalMs: options.failoverMs,
      logger: options.logger,
      onAcquired: () => void this.#lead(),
      onLost: () => void this.#follow(),
    });
  }

  async start(): Promise<void> {
    // Not awaited: with Redis down the node still starts (and /health says redis); ioredis subscribes once it can.
    this.#subscriber.subscribe(`${this.#key}:want`).catch(() => {});
    // A follower asks the leader to report a position. Anyone who can publish on Redis can ask too: only a well-formed LSN is taken.
    this.#subscriber.on('message', (_channel, lsn: string) => {
      if (this.#stream && LSN.test(lsn)) void this.#reportPosition(parseLsn(lsn));
    });
    if (this.#options.secret === undefined) {
      this.#options.logger.warn('CLUSTER_SECRET is not set: whoever can write to this Redis can forge rows, policies and messages for every node (docs/security.md)');
    }
    this.#reader.start();
    this.#lock.start();
    // Start serving once Redis answers (or after 5 s: /health says redis until it does).
    await Promise.race([this.#reader.ready, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    this.#timers.push(setInterval(() => void this.#announce(), ANNOUNCE_INTERVAL_MS));
    for (const timer of this.#timers) timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#waiters.cancelAll();
    await this.#follow();
    await this.#lock.stop();
    await this.#reader.stop();
    this.#subscriber.disconnect();
    this.#redis.disconnect();
  }

  /**
   * Resolves true once this node has routed everything before `lsn`, false
   * after `timeoutMs`. The leader is asked to report its position, so an idle
   * stream gets there too.
   */
  waitFor(lsn: Lsn, timeoutMs: number): Promise<boolean> {
    if (this.#position >= lsn) return Promise.resolve(true);
    const reached = this.#waiters.wait(lsn, timeoutMs);
    this.#redis.publish(`${this.#key}:want`, formatLsn(lsn)).catch(() => {});
    return reached;
  }

  /** Sends an ephemeral message through the stream; every node (this one too) delivers it as it reads it back. */
  appendEphemeral(record: Omit<EphemeralRecord, 't'>): Promise<void> {
    return appendEphemeral(this.#redis, this.#key, this.#options.streamLength, record, this.#options.secret);
  }

  /** The replication state of this node: the leader's slot stream, seen through what this node has routed. */
  state(): ReplicationState {
    const connected = this.#reader.healthy;
    const base: ReplicationState = this.#stream?.state() ?? {
      connected,
      handedOffLsn: formatLsn(this.#position),
      acknowledgedLsn: formatLsn(this.#position),
      transactions: 0,
      changes: this.#reader.entries,
      lastCommitTime: null,
      reconnects: 0,
      lastError: null,
      outage: null,
      lastOutage: null,
    };
    return { ...base, connected: connected && base.connected, handedOffLsn: formatLsn(this.#position) };
  }

  clusterState(): ClusterState {
    return {
      role: this.#lock.isLeader ? 'leader' : 'follower',
      node: this.#node,
      leader: this.#leader,
      streamId: this.#reader.lastId,
      position: formatLsn(this.#position),
      lagBytes: Number(this.#leaderPosition > this.#position ? this.#leaderPosition - this.#position : 0n),
      redisConnected: this.#reader.healthy,
      gaps: this.#gaps,
    };
  }

  /** Took the lock: read the slot from its confirmed position into the stream. */
  async #lead(): Promise<void> {
    const { db, logger } = this.#options;
    // The lock can be won while the node stops (the old leader just left): the database is about to close.
    if (this.#stopped) return;
    try {
      const { rows } = await sql<{ lsn: string }>`
        SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = ${this.#options.slotName}`.execute(db);
      const startLsn = parseLsn(rows[0]!.lsn);
      const sink = new RedisStreamSink({
        redis: this.#redis,
        key: this.#key,
        maxLength: this.#options.streamLength,
        logger,
        ...(this.#options.secret !== undefined ? { secret: this.#options.secret } : {}),
        onFailure: () => void this.#lock.release(),
      });
      const stream = new ReplicationStream({
        url: this.#options.databaseUrl,
        slotName: this.#options.slotName,
        publicationName: this.#options.publicationName,
        startLsn,
        valueParser: this.#options.valueParser,
        sink,
        logger,
        holdBack: () => minLsn(sink.unconfirmed(), this.#options.holdBack()),
      });
      this.#sink = sink;
      this.#stream = stream;
      this.#lastSentPosition = startLsn;
      await stream.start();
      if (this.#stopped) {
        await this.#follow();
        return;
      }
      // Idle positions (keepalives between transactions) reach followers too.
      this.#positionTimer = setInterval(() => {
        const handedOff = parseLsn(stream.state().handedOffLsn);
        if (handedOff > this.#lastSentPosition && this.#sink === sink) {
          this.#lastSentPosition = handedOff;
          sink.position(handedOff);
        }
      }, POSITION_INTERVAL_MS);
      this.#positionTimer.unref();
      logger.warn({ startLsn: formatLsn(startLsn) }, 'cluster leader: reading the slot into the cluster stream');
    } catch (error) {
      if (this.#stopped) return;
      logger.error({ err: error }, 'cluster leader: cannot read the slot; giving the lock up');
      await this.#follow();
      await this.#lock.release();
    }
  }

  /** Not (or no longer) the leader: stop reading the slot. */
  async #follow(): Promise<void> {
    const stream = this.#stream;
    this.#stream = null;
    this.#sink = null;
    if (this.#positionTimer) clearInterval(this.#positionTimer);
    this.#positionTimer = null;
    await stream?.stop();
  }

  /** A follower waits for `lsn`: ask Postgres for the current position and put it in the stream. */
  async #reportPosition(lsn: Lsn): Promise<void> {
    const stream = this.#stream;
    const sink = this.#sink;
    if (!stream || !sink) return;
    await stream.waitFor(lsn, 5000);
    const handedOff = parseLsn(stream.state().handedOffLsn);
    if (this.#sink === sink && handedOff > this.#lastSentPosition) {
      this.#lastSentPosition = handedOff;
      sink.position(handedOff);
    }
  }

  /** The leader says who it is and how far it is, once a second; every node reads it (for lag). */
  async #announce(): Promise<void> {
    try {
      if (this.#stream) {
        await this.#redis.set(`${this.#key}:leader`, JSON.stringify({ node: this.#node, lsn: lsnHex(parseLsn(this.#stream.state().handedOffLsn)) }), 'PX', 5000);
      }
      const announced = await this.#redis.get(`${this.#key}:leader`);
      if (announced) {
        const { node, lsn } = JSON.parse(announced) as { node: string; lsn: string };
        this.#leader = node;
        this.#leaderPosition = BigInt(`0x${lsn}`);
      } else {
        this.#leader = null;
      }
    } catch {
      // Redis is down: the reader reports it; nothing to announce.
    }
  }
}
