/**
 * Baseline benchmark (issue 8): the ingest and latency scenarios run on the
 * common hand-made alternative to rowcast (bench/baseline-server.ts: a
 * trigger calling `pg_notify` with the row as JSON, one `LISTEN`
 * connection, a `ws` server looping over its sockets), with the same tables,
 * rows, subscribers and load generators as rowcast's scenarios. The suite
 * (bench/run.ts) sets these beside rowcast's ingest and latency results of
 * the same run.
 *
 *   npm run bench:baseline                 # 500,000-row transaction; 1,000 owner-scoped subscribers at 1,000 changes/s for 20 s
 *   npm run bench:baseline -- --quick      # 50,000 rows; 2 s
 *
 * Results go to bench/results/baseline.json.
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { BENCH_SECRET, cpuMs, freePort, startBenchServer } from './lib/bench-server.js';
import { ClientFleet } from './lib/client-fleet.js';
import { measureWindow, pace } from './lib/measure.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rows: { type: 'string' }, seconds: { type: 'string' } } });
const ROWS = Number(args.rows ?? (args.quick ? 50_000 : 500_000));
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 20));
const CONNECTIONS = 1000;
const RATE = 1000;

/** The hand-made way: every row change as a notification carrying the row. */
const SETUP = `
  CREATE FUNCTION baseline_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('rowcast_baseline', json_build_object(
      'table', TG_TABLE_NAME, 'op', TG_OP, 'row', row_to_json(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END))::text);
    RETURN NULL;
  END $$;
  CREATE TABLE ingest (id bigserial PRIMARY KEY, v int NOT NULL, note text);
  CREATE TABLE bench_orders (id bigserial PRIMARY KEY, owner_id int NOT NULL, amount int, written_at double precision NOT NULL);
  CREATE TRIGGER ingest_notify AFTER INSERT OR UPDATE OR DELETE ON ingest FOR EACH ROW EXECUTE FUNCTION baseline_notify();
  CREATE TRIGGER bench_orders_notify AFTER INSERT OR UPDATE OR DELETE ON bench_orders FOR EACH ROW EXECUTE FUNCTION baseline_notify();`;

async function startBaseline(databaseUrl: string) {
  const port = await freePort();
  const child = fork(path.resolve('bench/baseline-server.ts'), [JSON.stringify({ databaseUrl, port, secret: BENCH_SECRET })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`baseline server exited with ${code}`)));
    child.once('message', () => resolve());
  });
  return { child, pid: child.pid!, urls: [1, 2, 3, 4].map((i) => `ws://127.0.0.${i}:${port}/live`) };
}

/** One admin subscriber; one transaction of ROWS rows; changes/s from its commit to the last row received. */
async function ingest(databaseUrl: string, baseline: { pid: number; urls: string[] }) {
  const worker = fork(path.resolve('bench/ingest-worker.ts'), [JSON.stringify({ url: baseline.urls[0], secret: BENCH_SECRET, topic: 'ingest', expect: ROWS })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const message = (type: string) =>
    new Promise<{ at?: number; series?: Array<[number, number]> }>((resolve, reject) => {
      worker.on('message', (m: { type: string; at?: number; message?: string; series?: Array<[number, number]> }) => {
        if (m.type === type) resolve(m);
        if (m.type === 'error') reject(new Error(m.message));
      });
    });
  try {
    await message('ready');
    const done = message('done');
    const cpuBefore = cpuMs(baseline.pid);
    const writer = new pg.Client({ connectionString: databaseUrl });
    await writer.connect();
    const writeStarted = Date.now();
    await writer.query(`INSERT INTO ingest (v, note) SELECT g, 'row ' || g FROM generate_series(1, $1::int) g`, [ROWS]);
    const committed = Date.now();
    await writer.end();
    const { at, series } = await done;
    const seconds = (at! - committed) / 1000;
    return {
      rows: ROWS,
      writeSeconds: (committed - writeStarted) / 1000,
      seconds,
      changesPerSecond: Math.round(ROWS / seconds),
      serverCpuSeconds: (cpuMs(baseline.pid) - cpuBefore) / 1000,
      /** [seconds since the commit, changes received]: the throughput-over-time chart. */
      series: series!.map(([time, count]) => [(time - committed) / 1000, count]),
    };
  } finally {
    worker.send({ type: 'stop' });
  }
}

/** 1,000 owner-scoped subscribers, 1,000 changes/s spread across owners, as rowcast's latency scenario. */
async function latency(db: pg.Client, baseline: { pid: number; urls: string[] }) {
  const fleet = await ClientFleet.start({ urls: baseline.urls, topic: 'bench_orders', connections: CONNECTIONS });
  try {
    const perTick = RATE / 100;
    const pacer = pace(100, async () => {
      await db.query(
        `INSERT INTO bench_orders (owner_id, amount, written_at)
         SELECT floor(random() * $1)::int, g, extract(epoch FROM clock_timestamp()) * 1000 FROM generate_series(1, $2) g`,
        [CONNECTIONS, perTick],
      );
    });
    const window = await measureWindow({ serverPid: baseline.pid, fleet, pacer, seconds: SECONDS });
    await pacer.stop();
    const changes = window.changes * perTick;
    return {
      connections: CONNECTIONS,
      changesPerSecond: changes / window.seconds,
      received: window.received,
      closed: fleet.closed(),
      serverCpuPercent: (window.serverCpuMs / (window.seconds * 1000)) * 100,
      generatorCpuPercent: (window.generatorCpuMs / (window.seconds * 1000)) * 100,
      p50Ms: window.p50Ms,
      p90Ms: window.p90Ms,
      p99Ms: window.p99Ms,
      maxMs: window.maxMs,
      samples: window.samples,
    };
  } finally {
    await fleet.stop();
  }
}

async function main(): Promise<void> {
  console.log(`baseline (pg_notify + LISTEN + ws): ingest ${ROWS.toLocaleString('en')} rows; latency ${CONNECTIONS} subscribers at ${RATE} changes/s for ${SECONDS} s`);
  const database = await startBenchServer(SETUP, { rowcast: false });
  const baseline = await startBaseline(database.databaseUrl);
  try {
    const ingestResult = await ingest(database.databaseUrl, baseline);
    console.log(
      `  ingest: ${ingestResult.changesPerSecond.toLocaleString('en')} changes/s (${ingestResult.seconds.toFixed(2)} s after the commit; ` +
        `the write with its trigger took ${ingestResult.writeSeconds.toFixed(2)} s), server CPU ${ingestResult.serverCpuSeconds.toFixed(1)} s`,
    );
    const latencyResult = await latency(database.db, baseline);
    console.log(
      `  latency: ${Math.round(latencyResult.changesPerSecond)} changes/s, p50 ${latencyResult.p50Ms.toFixed(2)} ms p90 ${latencyResult.p90Ms.toFixed(2)} ms ` +
        `p99 ${latencyResult.p99Ms.toFixed(2)} ms max ${latencyResult.maxMs.toFixed(1)} ms, server CPU ${latencyResult.serverCpuPercent.toFixed(0)}%, load generators ${latencyResult.generatorCpuPercent.toFixed(0)}%`,
    );
    const problems = [
      ...(latencyResult.closed > 0 ? [`latency: the baseline closed ${latencyResult.closed} connections`] : []),
      ...(latencyResult.received === 0 ? ['latency: no event arrived'] : []),
    ];
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/baseline.json', JSON.stringify({ date: new Date().toISOString(), ingest: ingestResult, latency: latencyResult, problems }, null, 2));
  } finally {
    baseline.child.kill();
    await database.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
