/**
 * Doors benchmark: the same table events through `/live`, through the
 * Phoenix door (`/socket/websocket`) and through the Supabase Realtime door
 * (`/realtime/v1/websocket`), on one server in one run. Each door gets a
 * fan-out phase (N subscribers of a public table at a high write rate:
 * deliveries/s) and a latency phase (the same subscribers at a low rate:
 * commit-to-receive p99). Targets, for Phoenix and for Supabase alike:
 * deliveries/s ≥ 0.9× and p99 ≤ 1.2× of `/live`'s (frames are built once
 * per door per event, never per subscriber). The doors alternate over
 * `--rounds` rounds and the ratios are of the medians, as the machine drifts.
 *
 * The Supabase clients (bench/supabase-client-worker.ts) join as
 * `@supabase/realtime-js` does: `realtime:<name>` with one
 * `postgres_changes` binding `{event: "*", schema: "public", table}`. They all
 * join the same channel name with the same binding, so the door builds each
 * event's frame once for all of them (the realistic best case). After the
 * rounds, one informational pass (`supabase-distinct`, no target) gives every
 * client a channel name of its own, so the door builds a frame per client
 * and event (its latency phase comes first: its fan-out phase may fall
 * behind, and that backlog is not latency at 20 changes/s); `--no-distinct`
 * skips it.
 *
 * After its phases each fleet must have received every change made while it
 * was subscribed (a public table: every subscriber gets every row); events
 * missing, frames nobody expected (a `system` error, an event for another
 * binding) and connections closed are problems.
 *
 *   npm run bench -- --only doors            # 2,000 subscribers, 3 rounds of 5 s phases
 *   npm run bench -- --quick --only doors    # 1,000 subscribers, 2 rounds of 2 s phases
 *
 * Results go to bench/results/doors.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startBenchServer } from './lib/bench-server.js';
import { ClientFleet } from './lib/client-fleet.js';
import { measureWindow, pace } from './lib/measure.js';
import { SupabaseFleet } from './lib/supabase-fleet.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    subscribers: { type: 'string' },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    'no-distinct': { type: 'boolean', default: false },
  },
});
const SUBSCRIBERS = Number(args.subscribers ?? (args.quick ? 1000 : 2000));
const ROUNDS = Number(args.rounds ?? (args.quick ? 2 : 3));
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 5));
const DISTINCT = !args['no-distinct'];
/** Offered deliveries/s in the fan-out phase, and changes/s in the latency phase. */
const FANOUT_DELIVERIES = 100_000;
const LATENCY_RATE = 20;
/** How long a fleet may take, after its last write, to receive every change. */
const DRAIN_SECONDS = 10;
const TABLE = 'bench_public';
/** The channel every Supabase client joins (`realtime:<name>`). */
const CHANNEL = 'bench';
const DOORS = ['live', 'phoenix', 'supabase'] as const;
type Door = (typeof DOORS)[number];
/** A door run: one of the three, or the informational Supabase pass with a channel per client. */
type Run = Door | 'supabase-distinct';

interface Phase {
  readonly deliveriesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuPercent: number;
  /** The load generators' CPU (all of them; Supabase's frames are about twice the size of the other doors'). */
  readonly generatorCpuPercent: number;
  readonly closed: number;
}

/** What one fleet's life saw besides its phases. */
interface FleetCheck {
  readonly run: Run;
  readonly round: number;
  /** Changes made while it was subscribed × its connections, and what it received of them. */
  readonly expected: number;
  readonly received: number;
  readonly closed: number;
  /** Frames that fit nothing expected (Supabase fleets only). */
  readonly unexpected: number;
  readonly unexpectedFrames: string[];
}

/** What measureWindow reads of a fleet; both fleets have it. */
type Fleet = ClientFleet | SupabaseFleet;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function startFleet(run: Run, urls: string[]): Promise<Fleet> {
  if (run === 'live' || run === 'phoenix') return ClientFleet.start({ urls, topic: TABLE, connections: SUBSCRIBERS, door: run });
  return SupabaseFleet.start({ urls, table: TABLE, channel: CHANNEL, distinct: run === 'supabase-distinct', connections: SUBSCRIBERS });
}

async function main(): Promise<void> {
  console.log(
    `doors: ${SUBSCRIBERS} subscribers of one public table through /live, Phoenix and Supabase (one shared channel), ${ROUNDS} rounds of ${SECONDS} s phases` +
      (DISTINCT ? '; then Supabase with a channel per client (informational)' : ''),
  );
  const server = await startBenchServer(`
    CREATE TABLE ${TABLE} (id bigserial PRIMARY KEY, amount int NOT NULL, written_at double precision NOT NULL);
    INSERT INTO rowcast.table_policies (table_name, read) VALUES ('${TABLE}', 'public');`);
  const phases: Record<Run, { fanout: Phase[]; latency: Phase[] }> = {
    live: { fanout: [], latency: [] },
    phoenix: { fanout: [], latency: [] },
    supabase: { fanout: [], latency: [] },
    'supabase-distinct': { fanout: [], latency: [] },
  };
  const checks: FleetCheck[] = [];
  const runs: Array<{ run: Run; round: number }> = [];
  for (let round = 0; round < ROUNDS; round++) for (const door of round % 2 === 0 ? DOORS : [...DOORS].reverse()) runs.push({ run: door, round });
  if (DISTINCT) runs.push({ run: 'supabase-distinct', round: ROUNDS });
  try {
    for (const { run, round } of runs) {
      const fleet = await startFleet(run, server.urls);
      try {
        let changes = 0;
        const fanout = ['fanout', FANOUT_DELIVERIES / SUBSCRIBERS] as const;
        const latency = ['latency', LATENCY_RATE] as const;
        // The informational pass measures latency first: its fan-out phase falls behind, and the backlog would be the latency phase's p99.
        for (const [kind, rate] of run === 'supabase-distinct' ? [latency, fanout] : [fanout, latency]) {
          const pacer = pace(rate, async (i) => {
            await server.db.query(`INSERT INTO ${TABLE} (amount, written_at) VALUES ($1, extract(epoch FROM clock_timestamp()) * 1000)`, [i]);
          });
          // measureWindow is typed for ClientFleet but reads only what both fleets have (histogram, settle, received, cpuMs).
          const window = await measureWindow({ serverPid: server.pid, fleet: fleet as ClientFleet, pacer, seconds: SECONDS });
          changes += await pacer.stop();
          const phase: Phase = {
            deliveriesPerSecond: window.received / window.seconds,
            p50Ms: window.p50Ms,
            p99Ms: window.p99Ms,
            serverCpuPercent: (window.serverCpuMs / (window.seconds * 1000)) * 100,
            generatorCpuPercent: (window.generatorCpuMs / (window.seconds * 1000)) * 100,
            closed: fleet.closed(),
          };
          phases[run][kind].push(phase);
          const label = run === 'supabase-distinct' ? 'supabase, a channel per client (informational)' : `round ${round + 1}, ${run}`;
          console.log(
            `  ${label}, ${kind} at ${rate} changes/s: ${Math.round(phase.deliveriesPerSecond).toLocaleString('en')} deliveries/s, ` +
              `p50 ${phase.p50Ms.toFixed(2)} ms, p99 ${phase.p99Ms.toFixed(2)} ms, server ${phase.serverCpuPercent.toFixed(0)}%, load generators ${phase.generatorCpuPercent.toFixed(0)}%`,
          );
        }
        checks.push(await drain(run, round, fleet, changes * SUBSCRIBERS));
      } finally {
        await fleet.stop();
      }
    }
  } finally {
    await server.stop();
  }

  const summary = (run: Run) => ({
    deliveriesPerSecond: median(phases[run].fanout.map((p) => p.deliveriesPerSecond)),
    fanoutP99Ms: median(phases[run].fanout.map((p) => p.p99Ms)),
    latencyP50Ms: median(phases[run].latency.map((p) => p.p50Ms)),
    latencyP99Ms: median(phases[run].latency.map((p) => p.p99Ms)),
  });
  const live = summary('live');
  const ratios = (run: Run) => {
    const s = summary(run);
    return { deliveriesRatio: s.deliveriesPerSecond / live.deliveriesPerSecond, p99Ratio: s.latencyP99Ms / live.latencyP99Ms };
  };
  const phoenix = summary('phoenix');
  const supabase = summary('supabase');
  const { deliveriesRatio, p99Ratio } = ratios('phoenix');
  const { deliveriesRatio: supabaseDeliveriesRatio, p99Ratio: supabaseP99Ratio } = ratios('supabase');
  console.log(`\nPhoenix / /live: deliveries/s ${deliveriesRatio.toFixed(2)} (target ≥ 0.9), latency p99 ${p99Ratio.toFixed(2)} (target ≤ 1.2)`);
  console.log(`Supabase / /live: deliveries/s ${supabaseDeliveriesRatio.toFixed(2)} (target ≥ 0.9), latency p99 ${supabaseP99Ratio.toFixed(2)} (target ≤ 1.2)`);
  const supabaseDistinct = DISTINCT ? { informational: true, channels: SUBSCRIBERS, ...summary('supabase-distinct'), ...ratios('supabase-distinct') } : null;
  if (supabaseDistinct) {
    console.log(
      `Supabase, a channel per client / /live (informational, no target): deliveries/s ${supabaseDistinct.deliveriesRatio.toFixed(2)}, latency p99 ${supabaseDistinct.p99Ratio.toFixed(2)}`,
    );
  }

  // A problem fails the suite; the informational pass's lost connections are notes (it may overload the server: a frame per client and event).
  const problems: string[] = [];
  const notes: string[] = [];
  for (const run of DOORS) {
    for (const p of [...phases[run].fanout, ...phases[run].latency]) if (p.deliveriesPerSecond === 0) problems.push(`${run}: nothing delivered`);
  }
  for (const check of checks) {
    const where = `${check.run}${check.run === 'supabase-distinct' ? '' : `, round ${check.round + 1}`}`;
    if (check.closed > 0) (check.run === 'supabase-distinct' ? notes : problems).push(`${where}: ${check.closed} connections closed`);
    // With connections closed, their missing events are the closing's (reported above).
    else if (check.received !== check.expected) {
      problems.push(`${where}: received ${check.received.toLocaleString('en')} of ${check.expected.toLocaleString('en')} expected events within ${DRAIN_SECONDS} s of the last write`);
    }
    if (check.unexpected > 0) problems.push(`${where}: ${check.unexpected} unexpected frames, e.g. ${check.unexpectedFrames.join(' / ')}`);
  }
  const complete = checks.filter((c) => c.closed === 0 && c.received === c.expected);
  console.log(`${complete.length} of ${checks.length} fleets received every change made while they were subscribed (${complete.reduce((n, c) => n + c.expected, 0).toLocaleString('en')} events)`);
  for (const line of [...problems.map((p) => `problem: ${p}`), ...notes.map((n) => `note: ${n}`)]) console.log(line);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/doors.json',
    JSON.stringify(
      {
        date: new Date().toISOString(),
        subscribers: SUBSCRIBERS,
        fanoutDeliveriesOffered: FANOUT_DELIVERIES,
        latencyRate: LATENCY_RATE,
        rounds: ROUNDS,
        seconds: SECONDS,
        live,
        phoenix,
        supabase,
        // Phoenix / /live (the fields the summary table has always read)…
        deliveriesRatio,
        p99Ratio,
        // …and Supabase (one shared channel) / /live.
        supabaseDeliveriesRatio,
        supabaseP99Ratio,
        supabaseDistinct,
        phases,
        checks,
        problems,
        notes,
      },
      null,
      2,
    ),
  );
}

/**
 * Waits (up to DRAIN_SECONDS) until the fleet has received every change made
 * while it was subscribed, then says what it got.
 */
async function drain(run: Run, round: number, fleet: Fleet, expected: number): Promise<FleetCheck> {
  const deadline = Date.now() + DRAIN_SECONDS * 1000;
  await fleet.settle();
  while (fleet.received() < expected && fleet.closed() === 0 && Date.now() < deadline) {
    await sleep(100);
    await fleet.settle();
  }
  const unexpected = fleet instanceof SupabaseFleet ? fleet.unexpected() : { count: 0, frames: [] };
  return { run, round, expected, received: fleet.received(), closed: fleet.closed(), unexpected: unexpected.count, unexpectedFrames: unexpected.frames };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
