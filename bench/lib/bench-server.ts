import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { clusterKeys } from '../../src/cluster/cluster-node.js';
import { createDatabase } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { migrateToLatest } from '../../src/db/migrate.js';

/** The secret benchmark tokens are signed with. */
export const BENCH_SECRET = 'rowcast-bench-secret-0123456789';

/** The bearer token benchmark servers accept on `/status` and `/metrics` (`METRICS_TOKEN`). */
export const BENCH_METRICS_TOKEN = 'rowcast-bench-metrics-0123456789';

/** A benchmark server's `/status`. */
export async function benchStatus<T>(port: number): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Bearer ${BENCH_METRICS_TOKEN}` } });
  if (!response.ok) throw new Error(`/status answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** A rowcast server (built `dist/`) in its own process on a fresh database, for a benchmark. */
export interface BenchServer {
  readonly port: number;
  readonly pid: number;
  /** A client on the benchmark's database, and its URL. */
  readonly db: pg.Client;
  readonly databaseUrl: string;
  /** `ws://127.0.0.<n>:<port>/live` for n = 1…4: several destination addresses spread the ephemeral ports. */
  readonly urls: string[];
  /** With `followers`: each follower node's `/live` URL (the server above is the cluster's leader). */
  readonly followerUrls: string[];
  readonly followerPids: number[];
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** utime + stime of a process, in ms (Linux USER_HZ = 100). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident set size of a process, in MiB. */
export function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/**
 * The Postgres benchmarks run on: DATABASE_URL if set (the suite sets it to
 * one embedded Postgres for all its scenarios), else a new embedded one that
 * `stop()` removes.
 */
export async function benchPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
  const url = process.env['DATABASE_URL'];
  if (url) return { url, stop: async () => {} };
  mkdirSync('.rowcast', { recursive: true });
  const dir = mkdtempSync(path.resolve('.rowcast', 'bench-pg-'));
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port: await freePort() });
  return {
    url: embedded.url,
    stop: async () => {
      await embedded.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts Postgres (embedded unless DATABASE_URL is set), a fresh database with
 * `setupSql`, and the server on it with as many open files as the hard limit
 * allows (unless `rowcast: false`: a baseline that needs the database only;
 * then `pid`, `port` and `urls` are unset). With `followers: n`, a cluster
 * on Redis (`REDIS_URL`, default the local one): that server leads, n more
 * follow. `env` adds to (or overrides) the servers' environment, such as
 * limits a scenario wants fixed. `host` runs that script (`node --import tsx
 * <host>`, with the same environment) instead of `rowcast serve`: an app
 * that mounts rowcast in library mode with its hooks (bench/hook-host.ts).
 * `stop()` undoes all of it.
 */
export async function startBenchServer(
  setupSql: string,
  options: { rowcast?: boolean; followers?: number; env?: Readonly<Record<string, string>>; host?: string } = {},
): Promise<BenchServer> {
  const { url: baseUrl, stop: stopPostgres } = await benchPostgres();
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  const dbName = `rowcast_bench_${process.pid}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(baseUrl);
  url.pathname = `/${dbName}`;
  const kysely = createDatabase(url.toString(), { max: 1 });
  await migrateToLatest(kysely);
  await kysely.destroy();
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  if (setupSql) await db.query(setupSql);

  const stopDatabase = async () => {
    await db.end();
    await admin.query(`DROP DATABASE ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end();
    await stopPostgres();
  };
  if (options.rowcast === false) return { port: 0, pid: 0, db, databaseUrl: url.toString(), urls: [], followerUrls: [], followerPids: [], stop: stopDatabase };

  const env = {
    DATABASE_URL: url.toString(),
    HOST: '0.0.0.0',
    JWT_SECRET: BENCH_SECRET,
    METRICS_TOKEN: BENCH_METRICS_TOKEN,
    SLOT_NAME: dbName,
    PUBLICATION_NAME: dbName,
    LOG_LEVEL: 'warn',
    MAX_CONNECTIONS: '200000',
    // Benchmarks measure throughput, not the per-connection rate limit (issue 6).
    RATE_LIMIT_PER_SECOND: process.env['RATE_LIMIT_PER_SECOND'] ?? '10000000',
    RATE_LIMIT_BURST: process.env['RATE_LIMIT_BURST'] ?? '10000000',
    ...(options.followers ? { REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379' } : {}),
    ...options.env,
  };
  // In a cluster the first node started takes the leader lock; the followers read what it appends.
  const leader = await spawnNode(env, options.host);
  const followers: Array<{ port: number; child: ChildProcess }> = [];
  for (let i = 0; i < (options.followers ?? 0); i++) followers.push(await spawnNode(env, options.host));
  return {
    port: leader.port,
    pid: leader.child.pid!,
    db,
    databaseUrl: url.toString(),
    urls: [1, 2, 3, 4].map((i) => `ws://127.0.0.${i}:${leader.port}/live`),
    followerUrls: followers.map((f) => `ws://127.0.0.1:${f.port}/live`),
    followerPids: followers.map((f) => f.child.pid!),
    stop: async () => {
      for (const node of [...followers, leader]) {
        // A node that died already (a crash found by a campaign) has no exit left to wait for.
        if (node.child.exitCode !== null || node.child.signalCode !== null) continue;
        node.child.kill('SIGTERM');
        await new Promise((resolve) => node.child.once('exit', resolve));
      }
      if (env.REDIS_URL) {
        // The cluster stream and its keys (rowcast:<slot>…).
        const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 1 });
        await redis.del(...clusterKeys(dbName)).catch(() => {});
        redis.disconnect();
      }
      await stopDatabase();
    },
  };
}

/** One `rowcast serve` (or `host`, a library-mode app) on a free port with `env`, once its /health answers 200. */
async function spawnNode(env: Record<string, string>, host?: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  // As many open files as the hard limit allows (20,000 in the sandbox this was written on).
  // BENCH_PROFILE_DIR: the server writes a V8 CPU profile there when it stops (bench/profile-summary.ts reads it).
  const profile = process.env['BENCH_PROFILE_DIR'] ? `--cpu-prof --cpu-prof-dir=${path.resolve(process.env['BENCH_PROFILE_DIR'])} ` : '';
  const main = host ? `--import tsx ${JSON.stringify(host)}` : 'dist/src/cli/main.js serve';
  const child: ChildProcess = spawn('bash', ['-c', `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec node ${profile}${main}`], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error('server did not become healthy within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { port, child };
}
