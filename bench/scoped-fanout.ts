/**
 * Scoped fan-out benchmark (issue 3): N connections, each subscribed to an
 * `owner`-policy table where it owns its own rows; a writer commits changes
 * spread across owners at a steady rate. Reports the server's CPU time per
 * change at each N (the permission index should make it flat in N) and the
 * commit-to-receive latency distribution.
 *
 *   npm run bench                 # 1,000 / 5,000 / 19,800 connections, 2,000 changes/s, 20 s each
 *                                 # (19,800: a process here may hold 20,000 files at most)
 *   npm run bench -- --quick      # 500 / 2,000 connections, 500 changes/s, 5 s each
 *
 * Load generators are separate processes (bench/client-worker.ts); their CPU
 * is reported beside the server's. Runs against the embedded Postgres unless
 * DATABASE_URL is set. Results go to bench/results/scoped-fanout.json.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import path from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createDatabase } from '../src/db/database.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { migrateToLatest } from '../src/db/migrate.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    connections: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    'latency-at': { type: 'string' },
  },
});
const CONNECTIONS = (args.connections ?? (args.quick ? '500,2000' : '1000,5000,19800')).split(',').map(Number);
const RATE = Number(args.rate ?? (args.quick ? 500 : 2000));
const SECONDS = Number(args.seconds ?? (args.quick ? 5 : 20));
const LATENCY_AT = Number(args['latency-at'] ?? (args.quick ? 2000 : 5000));
const WORKERS = 4;
const SECRET = 'rowcast-bench-secret-0123456789';
const TICKS_PER_SECOND = 100; // Linux USER_HZ for /proc/<pid>/stat

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** Polls /health until the server answers 200 (the server logs at `warn` here, so there is no start-up line to wait for). */
async function waitForHealth(server: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`server exited with ${server.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('server did not become healthy within 60 s');
}

async function main(): Promise<void> {
  console.log(`scoped fan-out: connections ${CONNECTIONS.join(' / ')}, ${RATE} changes/s for ${SECONDS} s each, ${cpus().length} cores`);
  let stopPostgres = async () => {};
  let baseUrl = process.env['DATABASE_URL'];
  if (!baseUrl) {
    mkdirSync('.rowcast', { recursive: true });
    const dir = mkdtempSync(path.resolve('.rowcast', 'bench-pg-'));
    const embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port: await freePort(), onLog: (line) => process.env['BENCH_PG_LOG'] && process.stderr.write(line) });
    baseUrl = embedded.url;
    stopPostgres = async () => {
      await embedded.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
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
  await db.query(`CREATE TABLE bench_orders (id bigserial PRIMARY KEY, owner_id int NOT NULL, amount int, written_at double precision NOT NULL);
                  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('bench_orders', 'owner', 'owner_id');`);

  const port = await freePort();
  // As many open files as the hard limit allows (20,000 in the sandbox this was written on).
  const server = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec node dist/src/cli/main.js serve'], {
    env: {
      ...process.env,
      DATABASE_URL: url.toString(),
      PORT: String(port),
      HOST: '0.0.0.0',
      JWT_SECRET: SECRET,
      SLOT_NAME: dbName,
      PUBLICATION_NAME: dbName,
      LOG_LEVEL: 'warn',
      MAX_CONNECTIONS: '200000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitForHealth(server, port);
  const urls = [1, 2, 3, 4].map((i) => `ws://127.0.0.${i}:${port}/live`);

  const results: Array<Record<string, number>> = [];
  try {
    for (const connections of CONNECTIONS) {
      const result = await scenario(server.pid!, db, urls, connections);
      results.push(result);
      console.log(
        `  ${connections} connections: ${result['changes']} changes, server CPU ${result['serverCpuUsPerChange']!.toFixed(1)} µs/change ` +
          `(${result['serverCpuPercent']!.toFixed(0)}% of a core), load generators ${result['clientCpuPercent']!.toFixed(0)}%, ` +
          `latency p50 ${result['p50Ms']!.toFixed(2)} ms p90 ${result['p90Ms']!.toFixed(2)} ms p99 ${result['p99Ms']!.toFixed(2)} ms max ${result['maxMs']!.toFixed(1)} ms, ` +
          `server RSS ${result['serverRssMiB']!.toFixed(0)} MiB`,
      );
    }
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    await db.end();
    await admin.query(`DROP DATABASE ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end();
    await stopPostgres();
  }

  const perChange = results.map((r) => r['serverCpuUsPerChange']!);
  const flatness = Math.max(...perChange) / Math.min(...perChange);
  const atLatency = results.find((r) => r['connections'] === LATENCY_AT);
  console.log(`\nCPU per change, highest / lowest across ${CONNECTIONS.join(' / ')} connections: ${flatness.toFixed(2)} (target ≤ 1.25)`);
  if (atLatency) console.log(`p99 at ${LATENCY_AT} connections and ${RATE} changes/s: ${atLatency['p99Ms']!.toFixed(2)} ms (target < 25 ms)`);
  console.log('\n| connections | changes/s | server CPU µs/change | server CPU % | generator CPU % | p50 ms | p90 ms | p99 ms | max ms | server RSS MiB |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${r['connections']} | ${Math.round(r['changesPerSecond']!)} | ${r['serverCpuUsPerChange']!.toFixed(1)} | ${r['serverCpuPercent']!.toFixed(0)} | ${r['clientCpuPercent']!.toFixed(0)} | ` +
        `${r['p50Ms']!.toFixed(2)} | ${r['p90Ms']!.toFixed(2)} | ${r['p99Ms']!.toFixed(2)} | ${r['maxMs']!.toFixed(1)} | ${r['serverRssMiB']!.toFixed(0)} |`,
    );
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/scoped-fanout.json',
    JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, rate: RATE, seconds: SECONDS, flatness, results }, null, 2),
  );
}

async function scenario(serverPid: number, db: pg.Client, urls: string[], connections: number): Promise<Record<string, number>> {
  const workers: ChildProcess[] = [];
  const histogram = createHistogram();
  let received = 0;
  const workerCpu = new Map<ChildProcess, number>();
  const perWorker = Math.ceil(connections / WORKERS);
  const ready: Array<Promise<void>> = [];
  for (let w = 0; w < WORKERS; w++) {
    const from = w * perWorker;
    const to = Math.min(connections, from + perWorker);
    const worker = fork(path.resolve('bench/client-worker.ts'), [JSON.stringify({ urls, secret: SECRET, topic: 'bench_orders', from, to })], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    workers.push(worker);
    ready.push(
      new Promise((resolve, reject) => {
        worker.on('message', (message: { type: string; samples?: number[]; received?: number; cpu?: NodeJS.CpuUsage; message?: string }) => {
          if (message.type === 'ready') resolve();
          if (message.type === 'error') reject(new Error(message.message));
          if (message.type === 'samples') {
            for (const sample of message.samples!) histogram.record(Math.max(1, sample));
            workerCpu.set(worker, (message.cpu!.user + message.cpu!.system) / 1000);
          }
        });
      }),
    );
  }
  await Promise.all(ready);
  const receivedBy = new Map<ChildProcess, number>();
  for (const worker of workers) worker.on('message', (m: { type: string; received?: number }) => m.type === 'samples' && receivedBy.set(worker, m.received!));

  // Warm up for a second, then measure a steady window.
  const perTick = Math.max(1, Math.round(RATE / 100));
  let written = 0;
  let writing = true;
  const writer = (async () => {
    const started = Date.now();
    let tick = 0;
    while (writing) {
      await db.query(
        `INSERT INTO bench_orders (owner_id, amount, written_at)
         SELECT floor(random() * $1)::int, g, extract(epoch FROM clock_timestamp()) * 1000 FROM generate_series(1, $2) g`,
        [connections, perTick],
      );
      written += perTick;
      tick++;
      const next = started + tick * 10;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  histogram.reset();
  const cpuStart = cpuMs(serverPid);
  const clientCpuStart = [...workerCpu.values()].reduce((a, b) => a + b, 0);
  const writtenStart = written;
  const startedAt = Date.now();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const cpuEnd = cpuMs(serverPid);
  const writtenEnd = written;
  const elapsed = (Date.now() - startedAt) / 1000;
  const clientCpuEnd = [...workerCpu.values()].reduce((a, b) => a + b, 0);
  writing = false;
  await writer;
  await new Promise((resolve) => setTimeout(resolve, 500));
  received = [...receivedBy.values()].reduce((a, b) => a + b, 0);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${serverPid}/status`, 'utf8'))![1]) / 1024;
  for (const worker of workers) worker.send({ type: 'stop' });
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
  const changes = writtenEnd - writtenStart;
  return {
    connections,
    changes,
    received,
    changesPerSecond: changes / elapsed,
    serverCpuUsPerChange: ((cpuEnd - cpuStart) * 1000) / changes,
    serverCpuPercent: ((cpuEnd - cpuStart) / (elapsed * 1000)) * 100,
    clientCpuPercent: ((clientCpuEnd - clientCpuStart) / (elapsed * 1000)) * 100,
    p50Ms: histogram.percentile(50) / 1000,
    p90Ms: histogram.percentile(90) / 1000,
    p99Ms: histogram.percentile(99) / 1000,
    maxMs: histogram.max / 1000,
    samples: histogram.count,
    serverRssMiB: rss,
  };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
