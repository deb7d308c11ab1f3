/**
 * Scoped fan-out benchmark (issue 3): N connections, each subscribed to an
 * `owner`-policy table where it owns its own rows; a writer commits changes
 * spread across owners at a steady rate. Reports the server's CPU time per
 * change at each N (the permission index should make it flat in N) and the
 * commit-to-receive latency distribution.
 *
 *   npm run bench:scoped                 # 1,000 / 5,000 / 19,800 connections, 2,000 changes/s, 20 s each
 *                                 # (19,800: a process here may hold 20,000 files at most)
 *   npm run bench:scoped -- --quick      # 500 / 1,500 connections, 500 changes/s, 2 s each
 *
 * With `--hidden 0,2` it measures what hidden columns cost instead
 * (bench/lib/hidden-columns.ts; the suite's hidden-columns scenario): one
 * table per hidden count, each with the same `--text-columns` (default: the
 * largest count) filled text columns, whose policy hides that many of them
 * from the non-admin subscribers; phases alternate between the tables in one
 * run (`--rounds`, `--seconds` per variant in all), and each variant's server
 * CPU per change and latency are reported with their ratio to the first's.
 *
 *   npx tsx bench/scoped-fanout.ts --connections 1000 --rate 1000 --seconds 20 --hidden 0,2 --rounds 10
 *
 * Load generators are separate processes (bench/client-worker.ts); their CPU
 * is reported beside the server's. Runs against the embedded Postgres unless
 * DATABASE_URL is set. Results go to bench/results/scoped-fanout.json (or the
 * name given with `--out`: the suite runs it as its latency scenario too).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { rssMiB, startBenchServer } from './lib/bench-server.js';
import { ClientFleet } from './lib/client-fleet.js';
import { printHiddenTables, runHiddenColumns } from './lib/hidden-columns.js';
import { measureWindow, paceScopedInserts } from './lib/measure.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    connections: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    'latency-at': { type: 'string' },
    out: { type: 'string' },
    hidden: { type: 'string' },
    'text-columns': { type: 'string' },
    rounds: { type: 'string' },
  },
});
const CONNECTIONS = (args.connections ?? (args.quick ? '500,1500' : '1000,5000,19800')).split(',').map(Number);
const RATE = Number(args.rate ?? (args.quick ? 500 : 2000));
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 20));
const LATENCY_AT = Number(args['latency-at'] ?? (args.quick ? 1500 : 5000));

/** `--hidden`: the hidden-columns comparison instead of the scoped fan-out. */
async function hiddenMain(): Promise<void> {
  const hidden = args.hidden!.split(',').map(Number);
  // Other load on the machine moves these numbers (the ratio is only as good as the rounds agree): recorded with them.
  const loadBefore = loadavg();
  const report = await runHiddenColumns({
    connections: CONNECTIONS,
    rate: RATE,
    seconds: SECONDS,
    rounds: Number(args.rounds ?? (args.quick ? 2 : 10)),
    hidden,
    textColumns: Number(args['text-columns'] ?? Math.max(...hidden)),
  });
  printHiddenTables(report);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    `bench/results/${args.out ?? 'hidden-columns'}.json`,
    JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, loadAverage: { before: loadBefore, after: loadavg() }, ...report }, null, 2),
  );
  const problems = report['problems'] as string[];
  if (problems.length > 0) console.error(`\nproblems: ${problems.join('; ')}`);
}

async function main(): Promise<void> {
  if (args.hidden !== undefined) return hiddenMain();
  console.log(`scoped fan-out: connections ${CONNECTIONS.join(' / ')}, ${RATE} changes/s for ${SECONDS} s each, ${cpus().length} cores`);
  const bench = await startBenchServer(`
    CREATE TABLE bench_orders (id bigserial PRIMARY KEY, owner_id int NOT NULL, amount int, written_at double precision NOT NULL);
    INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('bench_orders', 'owner', 'owner_id');`);
  const { db, urls } = bench;

  const results: Array<Record<string, number>> = [];
  try {
    for (const connections of CONNECTIONS) {
      const result = await scenario(bench.pid, db, urls, connections);
      results.push(result);
      console.log(
        `  ${connections} connections: ${result['changes']} changes, server CPU ${result['serverCpuUsPerChange']!.toFixed(1)} µs/change ` +
          `(${result['serverCpuPercent']!.toFixed(0)}% of a core), load generators ${result['clientCpuPercent']!.toFixed(0)}%, ` +
          `latency p50 ${result['p50Ms']!.toFixed(2)} ms p90 ${result['p90Ms']!.toFixed(2)} ms p99 ${result['p99Ms']!.toFixed(2)} ms max ${result['maxMs']!.toFixed(1)} ms, ` +
          `server RSS ${result['serverRssMiB']!.toFixed(0)} MiB`,
      );
    }
  } finally {
    await bench.stop();
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
    `bench/results/${args.out ?? 'scoped-fanout'}.json`,
    JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, rate: RATE, seconds: SECONDS, flatness, results, problems: fleetProblems(results) }, null, 2),
  );
}

/** What makes a run's numbers meaningless: connections the server closed, or nothing received. */
function fleetProblems(results: Array<Record<string, number>>): string[] {
  return results.flatMap((r) => [
    ...(r['closed']! > 0 ? [`${r['connections']} connections: the server closed ${r['closed']}`] : []),
    ...(r['received'] === 0 ? [`${r['connections']} connections: no event arrived`] : []),
  ]);
}

async function scenario(serverPid: number, db: pg.Client, urls: string[], connections: number): Promise<Record<string, number>> {
  const fleet = await ClientFleet.start({ urls, topic: 'bench_orders', connections });
  try {
    const { pacer, perTick } = paceScopedInserts(db, connections, RATE);
    const window = await measureWindow({ serverPid, fleet, pacer, seconds: SECONDS });
    await pacer.stop();
    const changes = window.changes * perTick;
    return {
      connections,
      changes,
      received: window.received,
      closed: fleet.closed(),
      changesPerSecond: changes / window.seconds,
      serverCpuUsPerChange: (window.serverCpuMs * 1000) / changes,
      serverCpuPercent: (window.serverCpuMs / (window.seconds * 1000)) * 100,
      clientCpuPercent: (window.generatorCpuMs / (window.seconds * 1000)) * 100,
      p50Ms: window.p50Ms,
      p90Ms: window.p90Ms,
      p99Ms: window.p99Ms,
      maxMs: window.maxMs,
      samples: window.samples,
      serverRssMiB: rssMiB(serverPid),
    };
  } finally {
    await fleet.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
