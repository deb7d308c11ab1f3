/**
 * Doors benchmark: the same table events through `/live` and through the
 * Phoenix door (`/socket/websocket`), on one server in one run. Each door
 * gets a fan-out phase (N subscribers of a public table at a high write
 * rate: deliveries/s) and a latency phase (the same subscribers at a low
 * rate: commit-to-receive p99). Targets: Phoenix deliveries/s ≥ 0.9× and
 * p99 ≤ 1.2× of `/live`'s (frames are built once per door per event, never
 * per subscriber). The doors alternate over `--rounds` rounds and the
 * ratios are of the medians, as the machine drifts.
 *
 *   npm run bench -- --only doors            # 2,000 subscribers, 3 rounds of 5 s phases
 *   npm run bench -- --quick --only doors    # 1,000 subscribers, 2 rounds of 2 s phases
 *
 * Results go to bench/results/doors.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startBenchServer } from './lib/bench-server.js';
import { ClientFleet } from './lib/client-fleet.js';
import { measureWindow, pace } from './lib/measure.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, subscribers: { type: 'string' }, rounds: { type: 'string' }, seconds: { type: 'string' } } });
const SUBSCRIBERS = Number(args.subscribers ?? (args.quick ? 1000 : 2000));
const ROUNDS = Number(args.rounds ?? (args.quick ? 2 : 3));
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 5));
/** Offered deliveries/s in the fan-out phase, and changes/s in the latency phase. */
const FANOUT_DELIVERIES = 100_000;
const LATENCY_RATE = 20;
const DOORS = ['live', 'phoenix'] as const;
type Door = (typeof DOORS)[number];

interface Phase {
  readonly deliveriesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuPercent: number;
  readonly closed: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  console.log(`doors: ${SUBSCRIBERS} subscribers of one public table through /live and Phoenix, ${ROUNDS} rounds of ${SECONDS} s phases`);
  const server = await startBenchServer(`
    CREATE TABLE bench_public (id bigserial PRIMARY KEY, amount int NOT NULL, written_at double precision NOT NULL);
    INSERT INTO rowcast.table_policies (table_name, read) VALUES ('bench_public', 'public');`);
  const phases: Record<Door, { fanout: Phase[]; latency: Phase[] }> = { live: { fanout: [], latency: [] }, phoenix: { fanout: [], latency: [] } };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const door of round % 2 === 0 ? DOORS : [...DOORS].reverse()) {
        const fleet = await ClientFleet.start({ urls: server.urls, topic: 'bench_public', connections: SUBSCRIBERS, door });
        try {
          for (const [kind, rate] of [['fanout', FANOUT_DELIVERIES / SUBSCRIBERS], ['latency', LATENCY_RATE]] as const) {
            const pacer = pace(rate, async (i) => {
              await server.db.query(`INSERT INTO bench_public (amount, written_at) VALUES ($1, extract(epoch FROM clock_timestamp()) * 1000)`, [i]);
            });
            const window = await measureWindow({ serverPid: server.pid, fleet, pacer, seconds: SECONDS });
            await pacer.stop();
            const phase: Phase = {
              deliveriesPerSecond: window.received / window.seconds,
              p50Ms: window.p50Ms,
              p99Ms: window.p99Ms,
              serverCpuPercent: (window.serverCpuMs / (window.seconds * 1000)) * 100,
              closed: fleet.closed(),
            };
            phases[door][kind].push(phase);
            console.log(`  round ${round + 1}, ${door}, ${kind} at ${rate} changes/s: ${Math.round(phase.deliveriesPerSecond).toLocaleString('en')} deliveries/s, p50 ${phase.p50Ms.toFixed(2)} ms, p99 ${phase.p99Ms.toFixed(2)} ms, server ${phase.serverCpuPercent.toFixed(0)}%`);
          }
        } finally {
          await fleet.stop();
        }
      }
    }
  } finally {
    await server.stop();
  }
  const summary = (door: Door) => ({
    deliveriesPerSecond: median(phases[door].fanout.map((p) => p.deliveriesPerSecond)),
    fanoutP99Ms: median(phases[door].fanout.map((p) => p.p99Ms)),
    latencyP50Ms: median(phases[door].latency.map((p) => p.p50Ms)),
    latencyP99Ms: median(phases[door].latency.map((p) => p.p99Ms)),
  });
  const live = summary('live');
  const phoenix = summary('phoenix');
  const deliveriesRatio = phoenix.deliveriesPerSecond / live.deliveriesPerSecond;
  const p99Ratio = phoenix.latencyP99Ms / live.latencyP99Ms;
  console.log(`\nPhoenix / /live: deliveries/s ${deliveriesRatio.toFixed(2)} (target ≥ 0.9), latency p99 ${p99Ratio.toFixed(2)} (target ≤ 1.2)`);
  const problems = DOORS.flatMap((door) =>
    [...phases[door].fanout, ...phases[door].latency].flatMap((p) => [
      ...(p.closed > 0 ? [`${door}: ${p.closed} connections closed`] : []),
      ...(p.deliveriesPerSecond === 0 ? [`${door}: nothing delivered`] : []),
    ]),
  );
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/doors.json',
    JSON.stringify({ date: new Date().toISOString(), subscribers: SUBSCRIBERS, fanoutDeliveriesOffered: FANOUT_DELIVERIES, latencyRate: LATENCY_RATE, rounds: ROUNDS, seconds: SECONDS, live, phoenix, deliveriesRatio, p99Ratio, phases, problems }, null, 2),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
