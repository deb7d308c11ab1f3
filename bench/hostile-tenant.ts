/**
 * Hostile-tenant benchmark: what one user holding the most filter groups a
 * topic may have, each as large as a filter may be, costs everyone else on
 * that topic. Target: the latency scenario's 1,000 owner-scoped subscribers
 * see their p99 rise by at most 1.5× beside the hostile tenant, against the
 * same run without it.
 *
 * One server, with the filter limits passed explicitly
 * (MAX_FILTER_GROUPS_PER_TOPIC, MAX_FILTER_GROUPS_PER_PARTITION,
 * MAX_FILTER_VALUES, MAX_FILTER_VALUE_LENGTH, MAX_FILTER_KEY_BYTES,
 * MAX_SUBSCRIPTIONS_PER_USER; bench/lib/hostile-filters.ts
 * has their defaults). The latency scenario's setup: 1,000 subscribers, each
 * owning its rows of an `owner` table, 1,000 changes/s spread over them (the
 * table has one column more, `zone`, for the filters' string comparisons).
 * Phases alternate on the same server under the same load: without the
 * hostile tenant, then with it (`--rounds` times). The hostile tenant is one
 * user that owns none of the rows; it opens one connection per filter group
 * (a connection holds one subscription per topic) until it holds
 * min(MAX_FILTER_GROUPS_PER_TOPIC, MAX_FILTER_GROUPS_PER_PARTITION,
 * MAX_SUBSCRIPTIONS_PER_USER) (the most groups one user's subscriptions to
 * one table can hold: they all read the same rows) or a subscribe
 * is refused with LIMIT_EXCEEDED. Every group is distinct and as large as the
 * limits allow (all MAX_FILTER_VALUES values, the key just within
 * MAX_FILTER_KEY_BYTES, the longest strings that fit), built so that each
 * evaluation compares every value and matches no row (see `hostileFilter`).
 *
 * A second variant, informational, does the same on a `public` table (there
 * every group's filter must be evaluated for every event): 20 subscribers
 * that receive every row (`--public-subscribers`; 20,000 deliveries/s, which
 * these two cores carry without becoming the bottleneck themselves), at the
 * same write rate.
 *
 * Each phase writes for 0.5 s of warm-up and the window, then waits until
 * every change has reached its subscribers (counted against the rows in the
 * table) and reports: commit-to-receive latency of every event received from
 * the window's start until then (an HDR histogram of all samples: a server
 * that falls behind is charged for its whole backlog, not only for what it
 * managed to send within the window), and the server's CPU per change (all
 * its CPU from the first write until the last delivery, over the changes
 * written). The ratio is p99 with / p99 without, each over all its rounds'
 * samples.
 *
 *   npx tsx bench/hostile-tenant.ts            # 20 s per phase, 3 rounds, both variants
 *   npx tsx bench/hostile-tenant.ts --quick    # 3 s per phase, 2 rounds
 *   npx tsx bench/hostile-tenant.ts --variants owner --seconds 10 --rounds 3
 *
 * Results go to bench/results/hostile-tenant.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { BENCH_SECRET, cpuMs, startBenchServer, type BenchServer } from './lib/bench-server.js';
import { ClientFleet } from './lib/client-fleet.js';
import {
  assertHostileFilter,
  DEFAULT_FILTER_LIMITS,
  filterKeyBytes,
  filterValues,
  fitHostileFilter,
  hostileFilter,
  hostileZone,
  limitsEnv,
  type HostileFilterPlan,
} from './lib/hostile-filters.js';
import { measureWindow, paceScopedInserts } from './lib/measure.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string' },
    rate: { type: 'string' },
    'public-subscribers': { type: 'string' },
    variants: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds ?? (args.quick ? 3 : 20));
const ROUNDS = Number(args.rounds ?? (args.quick ? 2 : 3));
const CONNECTIONS = Number(args.connections ?? 1000);
const RATE = Number(args.rate ?? 1000);
const PUBLIC_SUBSCRIBERS = Number(args['public-subscribers'] ?? 20);
const VARIANTS = (args.variants ?? 'owner,public').split(',') as Array<'owner' | 'public'>;
const LIMITS = DEFAULT_FILTER_LIMITS;
/** The target: p99 with the hostile tenant / p99 without it. */
const TARGET = 1.5;
/** The hostile tenant: a user id that owns none of the rows written. */
const HOSTILE_USER = '1000000';
/** Groups the hostile tenant tries to hold: the most one user may hold on one table (its subscriptions all read the same rows). */
const GROUPS = Math.min(LIMITS.groupsPerTopic, LIMITS.groupsPerPartition, LIMITS.subscriptionsPerUser);
/**
 * After the writes stop: how long the subscribers may receive nothing while
 * the server is idle (under 20% of a core) before the missing deliveries
 * count as lost. A busy server is waited for (it may hold its event loop for
 * many seconds while it works off a backlog), up to DRAIN_CAP_SECONDS: a
 * server that far behind fails the run rather than keep CI waiting.
 */
const STALL_SECONDS = 10;
const DRAIN_CAP_SECONDS = 120 + 10 * SECONDS;
/**
 * After the writes stop: how long the hostile tenant stays while deliveries
 * are still missing. A server that has fallen that far behind is past the
 * target anyway; the hostile tenant then leaves so the backlog clears (the
 * late events' latency still counts) and the next phase starts clean.
 */
const HOSTILE_DRAIN_SECONDS = 30;

/** A table variant: its topic, its read policy, and who subscribes to it. */
interface Variant {
  readonly name: 'owner' | 'public';
  readonly table: string;
  readonly subscribers: number;
  readonly informational: boolean;
}

/** What one phase (one measured window, with or without the hostile tenant) saw. */
interface Phase {
  readonly round: number;
  readonly hostile: boolean;
  /** Filter groups the hostile tenant held (0 without it), and what the server's /status said, if it says. */
  readonly groupsHeld: number;
  readonly serverFilterGroups: number | null;
  /** A subscribe beyond the groups held was refused with LIMIT_EXCEEDED (null without the hostile tenant). */
  readonly furtherRefused: boolean | null;
  /** Changes written (warm-up and window), and the write rate in the window. */
  readonly changes: number;
  readonly changesPerSecond: number;
  /** Server CPU from the first write to the last delivery, per change written; and in the window, in % of a core. */
  readonly serverCpuMs: number;
  readonly serverCpuUsPerChange: number;
  readonly serverCpuPercent: number;
  readonly generatorCpuPercent: number;
  /** Latency of every event received from the window's start to the last delivery. */
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
  /** Deliveries the rows written in the phase owed the subscribers, and how many arrived (after the writes stopped). */
  readonly expected: number;
  readonly delivered: number;
  /** Seconds waited after the writes stopped, and why the wait ended. */
  readonly drainSeconds: number;
  readonly drainEnded: DrainEnd;
  /** Deliveries were still missing HOSTILE_DRAIN_SECONDS after the writes stopped, so the hostile tenant left before the rest arrived. */
  readonly fellBehind: boolean;
  /** Subscribers' and hostile connections the server closed; events the hostile tenant received (its filters match nothing). */
  readonly closed: number;
  readonly hostileClosed: number;
  readonly hostileReceived: number;
}

/** Why the wait for deliveries ended: all arrived, nothing arrived while the server idled, or the time allowed passed. */
type DrainEnd = 'delivered' | 'stalled' | 'cap';

/** Pooled latency of all the phases of one kind (with or without the hostile tenant). */
interface Pooled {
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
  readonly serverCpuUsPerChange: number;
}

async function main(): Promise<void> {
  const plan = fitHostileFilter(LIMITS, GROUPS);
  const variants = chooseVariants();
  console.log(
    `hostile tenant: ${variants.map((v) => `${v.subscribers} ${v.name}-table subscribers`).join(', then ')}; ${RATE} changes/s, ` +
      `${SECONDS} s per phase, ${ROUNDS} rounds of without / with ${GROUPS} max-size filter groups of one user; ${cpus().length} cores`,
  );
  const bench = await startBenchServer(setupSql(variants, plan), { env: limitsEnv(LIMITS) });
  const report: Record<string, unknown> = {};
  const problems: string[] = [];
  try {
    for (const variant of variants) {
      const result = await runVariant(bench, variant, hostileZone(plan));
      report[variant.name] = result.summary;
      problems.push(...result.problems.map((p) => `${variant.name} table: ${p}`));
    }
  } finally {
    await bench.stop();
  }
  printTable(report);
  const owner = report['owner'] as { ratio: number } | undefined;
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/hostile-tenant.json',
    JSON.stringify(
      {
        date: new Date().toISOString(),
        cores: cpus().length,
        rate: RATE,
        seconds: SECONDS,
        rounds: ROUNDS,
        limits: LIMITS,
        target: TARGET,
        ratio: owner?.ratio ?? null,
        met: owner ? owner.ratio <= TARGET : null,
        ...report,
        problems,
      },
      null,
      2,
    ),
  );
  if (problems.length > 0) console.error(`\nproblems: ${problems.join('; ')}`);
}

function chooseVariants(): Variant[] {
  const all: Variant[] = [
    { name: 'owner', table: 'bench_orders', subscribers: CONNECTIONS, informational: false },
    { name: 'public', table: 'bench_public_orders', subscribers: PUBLIC_SUBSCRIBERS, informational: true },
  ];
  const chosen = all.filter((v) => VARIANTS.includes(v.name));
  if (chosen.length === 0) throw new Error('--variants: owner, public or both');
  return chosen;
}

/**
 * The latency scenario's table, once per variant, plus the `zone` column the
 * filters compare their strings with (every row gets the plan's zone).
 */
function setupSql(variants: Variant[], plan: HostileFilterPlan): string {
  return variants
    .map(
      (v) => `
    CREATE TABLE ${v.table} (id bigserial PRIMARY KEY, owner_id int NOT NULL, amount int, written_at double precision NOT NULL,
      zone text NOT NULL DEFAULT '${hostileZone(plan)}');
    INSERT INTO rowcast.table_policies (table_name, read, owner_column)
      VALUES ('${v.table}', '${v.name}', ${v.name === 'owner' ? "'owner_id'" : 'NULL'});`,
    )
    .join('\n');
}

/** The rounds of one variant: its subscribers stay connected; the hostile tenant comes and goes. */
async function runVariant(bench: BenchServer, variant: Variant, zone: string) {
  console.log(`\n${variant.name} table${variant.informational ? ' (informational)' : ''}: ${variant.subscribers} subscribers of ${variant.table}`);
  const { plan, filter } = await prepareFilters(bench, variant, zone);
  const fleet = await ClientFleet.start({ urls: bench.urls, topic: variant.table, connections: variant.subscribers });
  const pools = { without: createHistogram(), with: createHistogram() };
  const phases: Phase[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const hostile of [false, true]) {
        const phase = await runPhase({ bench, variant, fleet, plan, round, hostile, pool: hostile ? pools.with : pools.without });
        phases.push(phase);
        printPhase(phase);
      }
    }
  } finally {
    await fleet.stop();
  }
  return { summary: summarize(variant, phases, pools, filter), problems: phaseProblems(phases, variant) };
}

/** The plan the server takes on the variant's table, checked against a row like the ones written, and its size. */
async function prepareFilters(bench: BenchServer, variant: Variant, zone: string) {
  const { plan, shrunk } = await fitToServer(bench, variant.table);
  assertHostileFilter(plan, GROUPS - 1, { id: '1', owner_id: 7, amount: 1, written_at: Date.now(), zone });
  const largest = hostileFilter(plan, GROUPS);
  const filter = { values: filterValues(largest), keyBytes: filterKeyBytes(largest), valueLength: plan.valueLength, inValues: plan.inValues, shrunkForServer: shrunk };
  console.log(
    `  each hostile filter: ${filter.values} values (${filter.inValues} in one \`in\` list), strings of ${filter.valueLength} characters, ` +
      `a key of up to ${filter.keyBytes} bytes${shrunk > 0 ? ` (the key budget shrunk ${shrunk} times until the server took it)` : ''}`,
  );
  return { plan, filter };
}

/** A variant's result: pooled latency and CPU without and with the hostile tenant, their ratio, and every phase. */
function summarize(variant: Variant, phases: Phase[], pools: { without: RecordableHistogram; with: RecordableHistogram }, filter: object) {
  const without = pooled(pools.without, phases.filter((p) => !p.hostile));
  const withHostile = pooled(pools.with, phases.filter((p) => p.hostile));
  const ratio = withHostile.p99Ms / without.p99Ms;
  const roundRatios = Array.from({ length: ROUNDS }, (_, i) => phases[2 * i + 1]!.p99Ms / phases[2 * i]!.p99Ms);
  const groupsHeld = Math.min(...phases.filter((p) => p.hostile).map((p) => p.groupsHeld));
  console.log(
    `  ${variant.name} table: p99 without ${without.p99Ms.toFixed(2)} ms, with ${withHostile.p99Ms.toFixed(2)} ms: ratio ${ratio.toFixed(2)} ` +
      `(rounds: ${roundRatios.map((r) => r.toFixed(2)).join(', ')}; ${variant.informational ? 'informational' : `target ≤ ${TARGET}`}); ` +
      `server CPU per change ${without.serverCpuUsPerChange.toFixed(0)} → ${withHostile.serverCpuUsPerChange.toFixed(0)} µs`,
  );
  return {
    table: variant.table,
    read: variant.name,
    informational: variant.informational,
    subscribers: variant.subscribers,
    rate: RATE,
    hostile: { user: HOSTILE_USER, groupsTried: GROUPS, groupsHeld, furtherRefused: phases.every((p) => p.furtherRefused !== false), filter },
    /** Phases with the hostile tenant in which the server fell behind (their p99 is a lower bound). */
    fellBehind: phases.filter((p) => p.fellBehind).length,
    without,
    with: withHostile,
    ratio,
    roundRatios,
    phases,
  };
}

/** The hostile tenant while attached: its connections, and whether a subscribe beyond them was refused. */
interface Tenant {
  readonly fleet: ClientFleet;
  readonly furtherRefused: boolean;
}

/**
 * One phase: attach the hostile tenant if asked, write for the warm-up and
 * the window, stop writing, wait for every delivery, detach.
 */
async function runPhase(options: {
  bench: BenchServer;
  variant: Variant;
  fleet: ClientFleet;
  plan: HostileFilterPlan;
  round: number;
  hostile: boolean;
  pool: RecordableHistogram;
}): Promise<Phase> {
  const { bench, variant, fleet, round } = options;
  const tenant = options.hostile ? await attachHostile(bench, variant.table, options.plan) : null;
  let detached = false;
  try {
    const firstId = await lastId(bench, variant.table);
    await fleet.settle();
    const receivedBefore = fleet.received();
    const cpuBefore = cpuMs(bench.pid);
    const { pacer, perTick } = paceScopedInserts(bench.db, CONNECTIONS, RATE, variant.table);
    const window = await measureWindow({ serverPid: bench.pid, fleet, pacer, seconds: SECONDS });
    await pacer.stop();
    const changes = (await lastId(bench, variant.table)) - firstId;
    const expected = variant.name === 'owner' ? changes : changes * variant.subscribers;
    const drainStarted = performance.now();
    const end = await endPhase(bench, variant.table, fleet, tenant, receivedBefore, expected);
    detached = true;
    const serverCpuMs = cpuMs(bench.pid) - cpuBefore;
    // measureWindow reset the histogram at the window's start: it now holds every sample since.
    const latency = fleet.histogram;
    options.pool.add(latency);
    return {
      round,
      hostile: options.hostile,
      groupsHeld: tenant?.fleet.held() ?? 0,
      serverFilterGroups: end.serverFilterGroups,
      furtherRefused: tenant?.furtherRefused ?? null,
      changes,
      changesPerSecond: (window.changes * perTick) / window.seconds,
      serverCpuMs,
      serverCpuUsPerChange: (serverCpuMs * 1000) / changes,
      serverCpuPercent: (window.serverCpuMs / (window.seconds * 1000)) * 100,
      generatorCpuPercent: (window.generatorCpuMs / (window.seconds * 1000)) * 100,
      p50Ms: latency.percentile(50) / 1000,
      p90Ms: latency.percentile(90) / 1000,
      p99Ms: latency.percentile(99) / 1000,
      maxMs: latency.max / 1000,
      samples: latency.count,
      expected,
      delivered: end.delivered,
      drainSeconds: (performance.now() - drainStarted) / 1000,
      drainEnded: end.ended,
      fellBehind: end.fellBehind,
      closed: fleet.closed(),
      hostileClosed: end.hostileClosed,
      hostileReceived: end.hostileReceived,
    };
  } finally {
    if (tenant && !detached) await detachHostile(bench, variant.table, tenant.fleet);
  }
}

/**
 * The end of a phase, once the writes have stopped: waits for the deliveries
 * (with the hostile tenant, for HOSTILE_DRAIN_SECONDS at most), notes what
 * the server and the hostile tenant say, detaches the hostile tenant, and
 * waits for whatever deliveries are still missing.
 */
async function endPhase(bench: BenchServer, topic: string, fleet: ClientFleet, tenant: Tenant | null, before: number, expected: number) {
  let drained = await drain(fleet, bench.pid, before, expected, tenant ? HOSTILE_DRAIN_SECONDS : DRAIN_CAP_SECONDS);
  const fellBehind = tenant !== null && drained.ended !== 'delivered';
  const seen = {
    serverFilterGroups: await serverFilterGroups(bench, topic),
    hostileClosed: tenant?.fleet.closed() ?? 0,
    hostileReceived: tenant?.fleet.received() ?? 0,
  };
  if (tenant) await detachHostile(bench, topic, tenant.fleet);
  if (fellBehind) drained = await drain(fleet, bench.pid, before, expected, DRAIN_CAP_SECONDS);
  return { ...drained, fellBehind, ...seen };
}

/** The largest id written so far (ids are the write order: nothing else writes). */
async function lastId(bench: BenchServer, table: string): Promise<number> {
  const { rows } = await bench.db.query<{ id: string }>(`SELECT coalesce(max(id), 0) AS id FROM ${table}`);
  return Number(rows[0]!.id);
}

/**
 * Waits after the writes stop until the fleet has received `expected` events
 * since `before`, while deliveries progress or the server works (a server
 * far behind may deliver nothing for many seconds while its event loop
 * works off the backlog); gives up after STALL_SECONDS of neither, or
 * `capSeconds` in all.
 */
async function drain(
  fleet: ClientFleet,
  serverPid: number,
  before: number,
  expected: number,
  capSeconds: number,
): Promise<{ delivered: number; ended: DrainEnd }> {
  const started = performance.now();
  let delivered = fleet.received() - before;
  let progressAt = started;
  let checked = { at: started, cpu: cpuMs(serverPid) };
  let ended: DrainEnd = 'delivered';
  while (delivered < expected) {
    await fleet.settle();
    const now = { at: performance.now(), cpu: cpuMs(serverPid), delivered: fleet.received() - before };
    const busy = (now.cpu - checked.cpu) / (now.at - checked.at) > 0.2;
    if (now.delivered > delivered || busy) progressAt = now.at;
    delivered = now.delivered;
    checked = now;
    if (delivered < expected && now.at - progressAt > STALL_SECONDS * 1000) {
      ended = 'stalled';
      break;
    }
    if (delivered < expected && now.at - started > capSeconds * 1000) {
      ended = 'cap';
      break;
    }
  }
  return { delivered, ended };
}

/**
 * The hostile tenant: one user's connections, one max-size distinct filter
 * group each, until it holds GROUPS or the server refuses one; then one
 * subscribe more, which the server should refuse.
 */
async function attachHostile(bench: BenchServer, topic: string, plan: HostileFilterPlan): Promise<Tenant> {
  const fleet = await ClientFleet.start({ urls: bench.urls, topic, connections: GROUPS, user: HOSTILE_USER, filters: plan, untilRefused: true, workers: 1 });
  const further = await subscribeOnce(bench.urls[0]!, topic, hostileFilter(plan, GROUPS));
  further.socket.terminate();
  const refused = fleet.refused();
  console.log(
    `    hostile tenant holds ${fleet.held()} filter groups${refused ? ` (then refused: ${errorOf(refused)})` : ''}; ` +
      `one more subscribe: ${further.error ? `refused (${further.error})` : 'accepted (no limit stopped it)'}`,
  );
  if (!further.error) await waitForGroups(bench, topic, fleet.held());
  return { fleet, furtherRefused: further.error?.startsWith('LIMIT_EXCEEDED') ?? false };
}

/** Closes the hostile tenant's connections and waits until the server has dropped its groups. */
async function detachHostile(bench: BenchServer, topic: string, fleet: ClientFleet): Promise<void> {
  await fleet.stop();
  await waitForGroups(bench, topic, 0);
}

/**
 * Fits the plan to the server: subscribes once with the largest filter that
 * fits the limits and, while the server refuses it with LIMIT_EXCEEDED (it
 * may count a key a little differently), with the largest that fits a key
 * budget 5% smaller, and so on.
 */
async function fitToServer(bench: BenchServer, topic: string): Promise<{ plan: HostileFilterPlan; shrunk: number }> {
  for (let shrunk = 0; ; shrunk++) {
    const plan = fitHostileFilter({ ...LIMITS, keyBytes: Math.floor(LIMITS.keyBytes * 0.95 ** shrunk) }, GROUPS);
    const answer = await subscribeOnce(bench.urls[0]!, topic, hostileFilter(plan, GROUPS - 1));
    answer.socket.terminate();
    if (!answer.error) {
      await waitForGroups(bench, topic, 0);
      return { plan, shrunk };
    }
    if (!answer.error.startsWith('LIMIT_EXCEEDED')) throw new Error(`the server refused a hostile filter: ${answer.error}`);
  }
}

/** One connection of the hostile user that subscribes with `filter`; resolves with the socket and the refusal (`CODE: message`), if refused. */
function subscribeOnce(url: string, topic: string, filter: unknown): Promise<{ socket: WebSocket; error: string | null }> {
  const token = jwt.sign({ sub: HOSTILE_USER }, BENCH_SECRET, { algorithm: 'HS256', expiresIn: '1h' });
  const socket = new WebSocket(`${url}?token=${token}&client=bench`, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', (code) => reject(new Error(`the server closed the connection (${code}) before answering its subscribe`)));
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; method?: string; ok?: boolean; error?: { code: string; message: string } };
      if (frame.type === 'session') socket.send(JSON.stringify({ id: 1, method: 'subscribe', attributes: { topicName: topic, filter } }));
      if (frame.type === 'response' && frame.method === 'subscribe') resolve({ socket, error: frame.ok ? null : `${frame.error!.code}: ${frame.error!.message}` });
    });
  });
}

/** `CODE: message` of a response frame's error. */
function errorOf(frameText: string): string {
  const { error } = JSON.parse(frameText) as { error?: { code: string; message: string } };
  return error ? `${error.code}: ${error.message}` : frameText;
}

/** The filter groups of `topic` per the server's /status, or null if /status does not say. */
async function serverFilterGroups(bench: BenchServer, topic: string): Promise<number | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${bench.port}/status`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return null;
    const status = (await response.json()) as { topics?: Array<{ name: string; filterGroups?: number }> };
    return status.topics?.find((t) => t.name === topic)?.filterGroups ?? null;
  } catch {
    return null;
  }
}

/** Waits (up to 10 s) until the server reports `groups` filter groups on `topic`; 1 s if it does not report them. */
async function waitForGroups(bench: BenchServer, topic: string, groups: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await serverFilterGroups(bench, topic);
    if (now === null) {
      await sleep(1000);
      return;
    }
    if (now === groups || Date.now() > deadline) return;
    await sleep(100);
  }
}

function pooled(histogram: RecordableHistogram, phases: Phase[]): Pooled {
  const cpuMs = phases.reduce((total, p) => total + p.serverCpuMs, 0);
  const changes = phases.reduce((total, p) => total + p.changes, 0);
  return {
    p50Ms: histogram.percentile(50) / 1000,
    p90Ms: histogram.percentile(90) / 1000,
    p99Ms: histogram.percentile(99) / 1000,
    maxMs: histogram.max / 1000,
    samples: histogram.count,
    serverCpuUsPerChange: (cpuMs * 1000) / changes,
  };
}

/** What makes a variant's numbers meaningless: connections closed, deliveries missing, no hostile groups held, filters that matched. */
function phaseProblems(phases: Phase[], variant: Variant): string[] {
  return phases.flatMap((p) => {
    const name = `round ${p.round} ${p.hostile ? 'with' : 'without'} the hostile tenant`;
    return [
      ...(p.closed > 0 ? [`${name}: the server closed ${p.closed} of the ${variant.subscribers} subscribers' connections`] : []),
      ...(p.hostileClosed > 0 ? [`${name}: the server closed ${p.hostileClosed} of the hostile tenant's connections`] : []),
      ...(p.drainEnded === 'stalled' ? [`${name}: ${p.expected - p.delivered} of ${p.expected} deliveries never arrived`] : []),
      ...(p.drainEnded === 'cap'
        ? [`${name}: ${p.expected - p.delivered} of ${p.expected} deliveries had not arrived ${Math.round(p.drainSeconds)} s after the writes stopped (the server was still busy)`]
        : []),
      ...(p.samples === 0 ? [`${name}: no event arrived in the window`] : []),
      ...(p.hostile && p.groupsHeld === 0 ? [`${name}: the hostile tenant held no filter group`] : []),
      ...(p.hostileReceived > 0 ? [`${name}: the hostile tenant received ${p.hostileReceived} events, but its filters match no row`] : []),
    ];
  });
}

/** The phases of every variant as one Markdown table, and each variant's ratio. */
function printTable(report: Record<string, unknown>): void {
  console.log('\n| table | round | hostile groups | changes/s | server CPU µs/change | p50 ms | p90 ms | p99 ms | max ms | delivered |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, variant] of Object.entries(report) as Array<[string, { phases: Phase[] }]>) {
    for (const p of variant.phases) {
      console.log(
        `| ${name} | ${p.round} | ${p.groupsHeld} | ${Math.round(p.changesPerSecond)} | ${p.serverCpuUsPerChange.toFixed(0)} | ` +
          `${p.p50Ms.toFixed(2)} | ${p.p90Ms.toFixed(2)} | ${p.p99Ms.toFixed(2)} | ${p.maxMs.toFixed(1)} | ${p.delivered} of ${p.expected} |`,
      );
    }
  }
  for (const [name, variant] of Object.entries(report) as Array<[string, { ratio: number; informational: boolean }]>) {
    console.log(`p99 with / without the hostile tenant, ${name} table: ${variant.ratio.toFixed(2)} (${variant.informational ? 'informational' : `target ≤ ${TARGET}`})`);
  }
}

function printPhase(p: Phase): void {
  console.log(
    `  round ${p.round}, ${p.hostile ? `with ${p.groupsHeld} hostile groups` : 'without'}: ${Math.round(p.changesPerSecond)} changes/s, ` +
      `server CPU ${p.serverCpuUsPerChange.toFixed(0)} µs/change (${p.serverCpuPercent.toFixed(0)}% of a core), load generators ${p.generatorCpuPercent.toFixed(0)}%, ` +
      `p50 ${p.p50Ms.toFixed(2)} ms p90 ${p.p90Ms.toFixed(2)} ms p99 ${p.p99Ms.toFixed(2)} ms max ${p.maxMs.toFixed(1)} ms; ` +
      `${p.delivered} of ${p.expected} deliveries${p.drainSeconds > 1 ? ` (the last ${p.drainSeconds.toFixed(1)} s after the writes stopped)` : ''}` +
      (p.fellBehind ? `; the server fell behind: the hostile tenant left ${HOSTILE_DRAIN_SECONDS} s after the writes stopped` : ''),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
