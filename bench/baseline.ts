/**
 * Baseline benchmark (issue 8): the ingest and latency scenarios run on the
 * common hand-made alternative to rowcast (bench/baseline-server.ts: a
 * trigger calling `pg_notify` with the row as JSON, one `LISTEN`
 * connection, a `ws` server looping over its sockets), with the same tables,
 * rows, subscribers and load generators as rowcast's scenarios, and the
 * largest point of the scoped fan-out scenario (where the baseline's loop
 * over every socket per change shows). The suite (bench/run.ts) sets these
 * beside rowcast's results of the same run.
 *
 *   npm run bench:baseline                 # 500,000-row transaction; 1,000 owner-scoped subscribers at 1,000 changes/s
 *                                          # for 20 s; 19,800 at 2,000 changes/s
 *   npm run bench:baseline -- --quick      # 50,000 rows; 2 s; 1,500 at 500 changes/s
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
import { measureWindow, paceScopedInserts } from './lib/measure.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rows: { type: 'string' }, seconds: { type: 'string' } } });
const ROWS = Number(args.rows ?? (args.quick ? 50_000 : 500_000));
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 20));
/** The scoped fan-out scenario's largest point: connections and changes/s (as bench/scoped-fanout.ts). */
const SCOPED = args.quick ? { connections: 1500, rate: 500 } : { connections: 19_800, rate: 2000 };

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

/** Owner-scoped subscribers, changes spread across owners in batches every 10 ms, as rowcast's latency and scoped fan-out scenarios. */
async function scoped(db: pg.Client, baseline: { pid: number; urls: string[] }, connections: number, rate: number) {
  const fleet = await ClientFleet.start({ urls: baseline.urls, topic: 'bench_orders', connections });
  try {
    const { pacer, perTick } = paceScopedInserts(db, connections, rate);
    const window = await measureWindow({ serverPid: baseline.pid, fleet, pacer, seconds: SECONDS });
    await pacer.stop();
    const changes = window.changes * perTick;
    return {
      connections,
      changes,
      changesPerSecond: changes / window.seconds,
      received: window.received,
      closed: fleet.closed(),
      serverCpuPercent: (window.serverCpuMs / (window.seconds * 1000)) * 100,
      serverCpuUsPerChange: (window.serverCpuMs * 1000) / changes,
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
  console.log(
    `baseline (pg_notify + LISTEN + ws): ingest ${ROWS.toLocaleString('en')} rows; latency 1000 subscribers at 1000 changes/s for ${SECONDS} s; ` +
      `${SCOPED.connections} subscribers at ${SCOPED.rate} changes/s`,
  );
  const database = await startBenchServer(SETUP, { rowcast: false });
  const baseline = await startBaseline(database.databaseUrl);
  try {
    const ingestResult = await ingest(database.databaseUrl, baseline);
    console.log(
      `  ingest: ${ingestResult.changesPerSecond.toLocaleString('en')} changes/s (${ingestResult.seconds.toFixed(2)} s after the commit; ` +
        `the write with its trigger took ${ingestResult.writeSeconds.toFixed(2)} s), server CPU ${ingestResult.serverCpuSeconds.toFixed(1)} s`,
    );
    const latencyResult = await scoped(database.db, baseline, 1000, 1000);
    const scopedResult = await scoped(database.db, baseline, SCOPED.connections, SCOPED.rate);
    for (const [name, r] of [['latency', latencyResult], ['scoped', scopedResult]] as const) {
      console.log(
        `  ${name}: ${r.connections} subscribers, ${Math.round(r.changesPerSecond)} changes/s, p50 ${r.p50Ms.toFixed(2)} ms p90 ${r.p90Ms.toFixed(2)} ms ` +
          `p99 ${r.p99Ms.toFixed(2)} ms max ${r.maxMs.toFixed(1)} ms, server CPU ${r.serverCpuPercent.toFixed(0)}% (${r.serverCpuUsPerChange.toFixed(0)} µs/change), ` +
          `load generators ${r.generatorCpuPercent.toFixed(0)}%`,
      );
    }
    const problems = [latencyResult, scopedResult].flatMap((r) => [
      ...(r.closed > 0 ? [`${r.connections} subscribers: the baseline closed ${r.closed} connections`] : []),
      ...(r.received === 0 ? [`${r.connections} subscribers: no event arrived`] : []),
    ]);
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/baseline.json', JSON.stringify({ date: new Date().toISOString(), ingest: ingestResult, latency: latencyResult, scoped: scopedResult, problems }, null, 2));
  } finally {
    baseline.child.kill();
    await database.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
