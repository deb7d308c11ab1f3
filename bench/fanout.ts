/**
 * Fan-out benchmark (issue 8): one `public` table, N subscribers that all
 * receive every row, steady writes, against a ceiling measured in the same
 * run: a bare uWS server (bench/bare-uws-server.ts) publishing frames of the
 * same shape and size, at the same rate, to the same number of sockets from
 * the same load generators.
 *
 * The offered load is fixed in deliveries per second (`--deliveries`, default
 * 200,000): the write rate at N subscribers is deliveries / N, so 20 changes/s
 * at 10,000 subscribers. Each phase reports deliveries/s received, server
 * CPU per delivery, the load generators' CPU, and commit-to-receive latency.
 *
 *   npm run bench:fanout                      # 1,000 / 5,000 / 10,000 / 19,800 subscribers, 10 s each
 *   npm run bench:fanout -- --quick           # 1,000 subscribers, 100,000 deliveries/s, 2 s each
 *
 * 19,800 rather than 20,000: a process here may hold 20,000 files at most,
 * and the server needs a few for itself. Results go to bench/results/fanout.json.
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startBenchServer } from './lib/bench-server.js';
import { ClientFleet } from './lib/client-fleet.js';
import { measureWindow, pace, type Window } from './lib/measure.js';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, subscribers: { type: 'string' }, deliveries: { type: 'string' }, seconds: { type: 'string' } },
});
const SUBSCRIBERS = (args.subscribers ?? (args.quick ? '1000' : '1000,5000,10000,19800')).split(',').map(Number);
const DELIVERIES = Number(args.deliveries ?? (args.quick ? 100_000 : 200_000));
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 10));

interface Phase {
  readonly deliveriesPerSecond: number;
  readonly serverCpuPercent: number;
  readonly serverCpuUsPerDelivery: number;
  readonly generatorCpuPercent: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
  readonly closed: number;
}

function phase(window: Window, fleet: ClientFleet): Phase {
  const ms = window.seconds * 1000;
  return {
    deliveriesPerSecond: window.received / window.seconds,
    serverCpuPercent: (window.serverCpuMs / ms) * 100,
    serverCpuUsPerDelivery: (window.serverCpuMs * 1000) / Math.max(1, window.received),
    generatorCpuPercent: (window.generatorCpuMs / ms) * 100,
    p50Ms: window.p50Ms,
    p90Ms: window.p90Ms,
    p99Ms: window.p99Ms,
    maxMs: window.maxMs,
    samples: window.samples,
    closed: fleet.closed(),
  };
}

async function startBareServer() {
  const port = await freePort();
  const child = fork(path.resolve('bench/bare-uws-server.ts'), [String(port)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bare uWS server exited with ${code}`)));
    child.once('message', () => resolve());
  });
  return { child, pid: child.pid!, urls: [1, 2, 3, 4].map((i) => `ws://127.0.0.${i}:${port}/live`) };
}

async function main(): Promise<void> {
  console.log(`fan-out: ${SUBSCRIBERS.join(' / ')} subscribers of one public table, ${DELIVERIES.toLocaleString('en')} deliveries/s offered, ${SECONDS} s per phase`);
  const server = await startBenchServer(`
    CREATE TABLE bench_public (id bigserial PRIMARY KEY, amount int NOT NULL, written_at double precision NOT NULL);
    INSERT INTO rowcast.table_policies (table_name, read) VALUES ('bench_public', 'public');`);
  const bare = await startBareServer();
  const results = [];
  try {
    for (const subscribers of SUBSCRIBERS) {
      const rate = DELIVERIES / subscribers;

      const rowcastFleet = await ClientFleet.start({ urls: server.urls, topic: 'bench_public', connections: subscribers });
      let rowcast: Phase;
      try {
        const pacer = pace(rate, async (i) => {
          await server.db.query(`INSERT INTO bench_public (amount, written_at) VALUES ($1, extract(epoch FROM clock_timestamp()) * 1000)`, [i]);
        });
        const window = await measureWindow({ serverPid: server.pid, fleet: rowcastFleet, pacer, seconds: SECONDS });
        await pacer.stop();
        rowcast = phase(window, rowcastFleet);
      } finally {
        await rowcastFleet.stop();
      }

      const bareFleet = await ClientFleet.start({ urls: bare.urls, topic: 'bench_public', connections: subscribers });
      let ceiling: Phase;
      try {
        bare.child.send({ type: 'publish', rate });
        const window = await measureWindow({ serverPid: bare.pid, fleet: bareFleet, seconds: SECONDS });
        const stopped = new Promise((resolve) => bare.child.once('message', resolve));
        bare.child.send({ type: 'stop-publishing' });
        await stopped;
        ceiling = phase(window, bareFleet);
      } finally {
        await bareFleet.stop();
      }

      const result = {
        subscribers,
        changesPerSecond: rate,
        offeredDeliveriesPerSecond: DELIVERIES,
        rowcast,
        ceiling,
        ratio: rowcast.deliveriesPerSecond / ceiling.deliveriesPerSecond,
        cpuPerDeliveryRatio: rowcast.serverCpuUsPerDelivery / ceiling.serverCpuUsPerDelivery,
      };
      results.push(result);
      console.log(
        `  ${subscribers} subscribers at ${rate.toFixed(1)} changes/s: rowcast ${Math.round(rowcast.deliveriesPerSecond).toLocaleString('en')} deliveries/s ` +
          `(CPU ${rowcast.serverCpuPercent.toFixed(0)}%, p50 ${rowcast.p50Ms.toFixed(2)} ms, p99 ${rowcast.p99Ms.toFixed(2)} ms), ` +
          `bare uWS ${Math.round(ceiling.deliveriesPerSecond).toLocaleString('en')} (CPU ${ceiling.serverCpuPercent.toFixed(0)}%, p50 ${ceiling.p50Ms.toFixed(2)} ms, p99 ${ceiling.p99Ms.toFixed(2)} ms); ` +
          `ratio ${result.ratio.toFixed(2)}, load generators ${rowcast.generatorCpuPercent.toFixed(0)}% / ${ceiling.generatorCpuPercent.toFixed(0)}%`,
      );
    }
  } finally {
    bare.child.kill();
    await server.stop();
  }
  const at10k = results.find((r) => r.subscribers === 10_000);
  console.log(`\ndeliveries/s, rowcast / bare uWS: ${results.map((r) => r.ratio.toFixed(2)).join(' / ')} (target ≥ 0.8)`);
  if (at10k) console.log(`p99 at 10,000 subscribers and ${at10k.changesPerSecond} changes/s: ${at10k.rowcast.p99Ms.toFixed(2)} ms (target ≤ 50 ms)`);
  const problems = results.flatMap((r) =>
    (['rowcast', 'ceiling'] as const).flatMap((side) => [
      ...(r[side].closed > 0 ? [`${r.subscribers} subscribers, ${side}: ${r[side].closed} connections closed`] : []),
      ...(r[side].deliveriesPerSecond === 0 ? [`${r.subscribers} subscribers, ${side}: nothing delivered`] : []),
    ]),
  );
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/fanout.json',
    JSON.stringify({ date: new Date().toISOString(), offeredDeliveriesPerSecond: DELIVERIES, seconds: SECONDS, results, problems }, null, 2),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
