/**
 * `npm run chaos`: issue 5's crash runs at full size, on a Postgres of their
 * own (an embedded one; the runs restart it).
 *
 *   npm run chaos                        # 5,000 changes/s for 20 s (one node, and a 3-node cluster), 500,000-row and TOAST crashes, the snapshot oracle
 *   npm run chaos -- --quick             # the CI sizes of test/crash.test.ts
 *   npm run chaos -- --rate 8000 --seconds 30
 *
 * Prints a Markdown table (docs/benchmarks.md, "Crash runs") and writes
 * chaos/results/latest.json. Exits 1 when any run found a problem.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createTestDatabase } from '../test/helpers/database.js';
import { CRASH_SCHEMA, runCrashTest, startPrivatePostgres, type CrashRunOptions } from './crash-run.js';
import { runSnapshotOracle, SNAPSHOT_SCHEMA } from './snapshot-run.js';
import { runTransactionCrash, TRANSACTION_SCHEMA } from './transaction-crash-run.js';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, rate: { type: 'string' }, seconds: { type: 'string' } },
});
const rate = Number(args.rate ?? (args.quick ? 1000 : 5000));
const seconds = Number(args.seconds ?? (args.quick ? 6 : 20));
const bigRows = args.quick ? 50_000 : 500_000;
const toastRows = args.quick ? 8 : 40;
const log = (line: string) => console.log(`  ${line}`);

// A window that covers the whole run and room to replay it: what a deployment
// that promises resumption across a few seconds of downtime at this rate needs.
const history = String(Math.max(10_000, rate * seconds + 1000));
const roomy = { MAX_BACKPRESSURE_BYTES: String(512 * 1024 * 1024) };

interface Row {
  run: string;
  result: string;
  problems: readonly string[];
  details: unknown;
}
const rows: Row[] = [];

const postgres = await startPrivatePostgres();
try {
  const crashRun = async (name: string, options: Pick<CrashRunOptions, 'disruptions' | 'reconnectEvery'> & { nodes?: number; env?: Record<string, string> }) => {
    console.log(`${name}`);
    const db = await createTestDatabase(CRASH_SCHEMA, postgres.url);
    try {
      const { env, ...rest } = options;
      const report = await runCrashTest(db, { rate, seconds, copies: 2, env: { HISTORY_EVENTS: history, ...roomy, ...env }, log, ...rest }, postgres.server);
      const received = report.readers.reduce((sum, r) => sum + r.received, 0);
      const expected = report.readers.reduce((sum, r) => sum + r.expected, 0);
      const connections = report.readers.reduce((sum, r) => sum + r.connections, 0);
      rows.push({
        run: name,
        result:
          `${report.changes.toLocaleString('en')} changes (${report.rate.toLocaleString('en')}/s); ${report.readers.length} clients received ` +
          `${received.toLocaleString('en')} of ${expected.toLocaleString('en')} events over ${connections} connections; ` +
          report.disruptions.map((d) => `${d.kind} back in ${d.tookMs} ms`).join(', '),
        problems: report.problems,
        details: { ...report, serverLog: undefined },
      });
    } finally {
      await db.drop();
    }
  };
  await crashRun(`${rate.toLocaleString('en')} changes/s for ${seconds} s, server killed twice (SIGKILL)`, {
    disruptions: [
      { at: seconds * 0.3, kind: 'kill-server' },
      { at: seconds * 0.65, kind: 'kill-server' },
    ],
    reconnectEvery: 2000,
  });
  await crashRun(`${rate.toLocaleString('en')} changes/s for ${seconds} s, Postgres restarted`, {
    disruptions: [{ at: seconds * 0.5, kind: 'restart-postgres' }],
    reconnectEvery: 0,
  });
  // Issue 10: the same on a three-node cluster (the machine's Redis, or REDIS_URL), the leader killed twice.
  await crashRun(`${rate.toLocaleString('en')} changes/s for ${seconds} s on a 3-node cluster, leader killed twice (SIGKILL)`, {
    nodes: 3,
    env: { REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', CLUSTER_FAILOVER_MS: '500' },
    disruptions: [
      { at: seconds * 0.3, kind: 'kill-leader' },
      { at: seconds * 0.65, kind: 'kill-leader' },
    ],
    reconnectEvery: 2000,
  });
  for (const kind of ['rows', 'toast'] as const) {
    const count = kind === 'rows' ? bigRows : toastRows;
    const name = kind === 'rows' ? `one ${count.toLocaleString('en')}-row transaction, server killed mid-delivery` : `${count} rows of 1 MiB text in one transaction, server killed mid-delivery`;
    console.log(name);
    const db = await createTestDatabase(TRANSACTION_SCHEMA, postgres.url);
    try {
      const report = await runTransactionCrash(db, {
        kind,
        rows: count,
        killAfter: Math.round(count * 0.3),
        env: { HISTORY_EVENTS: String(count + 1000), ...roomy },
        log,
      });
      rows.push({
        run: name,
        result: `${report.before.toLocaleString('en')} events before the kill, ${report.after.toLocaleString('en')} after resuming (resumed: ${report.resumed}); ${report.seconds.toFixed(1)} s from commit to last event`,
        problems: report.problems,
        details: report,
      });
    } finally {
      await db.drop();
    }
  }
  // Snapshots: clients subscribing with snapshot: true at random moments; the server killed, the stream cut off.
  {
    const name = `snapshots at ${rate.toLocaleString('en')} changes/s for ${seconds} s: 40 clients, server killed twice (SIGKILL), stream cut three times`;
    console.log(name);
    const db = await createTestDatabase(SNAPSHOT_SCHEMA, postgres.url);
    try {
      const report = await runSnapshotOracle(db, { rate, seconds, clients: args.quick ? 15 : 40, kills: [0.35, 0.7], streamCuts: [0.15, 0.5, 0.85], env: { HISTORY_EVENTS: history }, log });
      rows.push({
        run: name,
        result: `${report.changes.toLocaleString('en')} changes in ${report.transactions} transactions; ${report.snapshots} snapshots, ${report.resumes} resumes with since; every fold equal to SQL at the end`,
        problems: report.problems,
        details: report,
      });
    } finally {
      await db.drop();
    }
  }
} finally {
  await postgres.destroy();
}

console.log(`\n| run | result | problems |\n|---|---|---|`);
for (const row of rows) console.log(`| ${row.run} | ${row.result} | ${row.problems.length === 0 ? 'none' : row.problems.join('; ')} |`);
const out = path.resolve('chaos/results');
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, 'latest.json'), JSON.stringify({ at: new Date().toISOString(), rate, seconds, rows }, null, 2));
process.exit(rows.every((row) => row.problems.length === 0) ? 0 : 1);
