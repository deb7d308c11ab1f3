/**
 * Snapshot benchmark: what `subscribe` with `snapshot: true`
 * (docs/snapshots.md) delivers on `/live`, and what it costs everyone else.
 * Clients are connections in load-generator processes
 * (bench/snapshot-worker.ts); the server runs from the built dist/ in its
 * own process, on a fresh database, with the default SNAPSHOT_CONCURRENCY.
 *
 * The table `item` has an `owner` policy on `owner_id` (int, indexed):
 * user 0 owns `--rows` rows (the big snapshot), users 1 … `--clients` own
 * `--per-client` rows each (spread over the table, as rows written over
 * time are), and one more user owns `--rows` / 5 (a smaller snapshot to
 * compare memory with). Rows are `id, owner_id, title (32 chars), amount,
 * created_at`: about 150 bytes of JSON each.
 *
 * 1. One big snapshot: user 0 subscribes with a snapshot; rows/s from the
 *    request to the last page (counted in the client, every page parsed,
 *    every row checked), repeated (unsubscribe, subscribe again) for
 *    `--seconds`. Ceiling, same run: the same rows read with a plain
 *    `SELECT` through `pg` in this process. Memory: the server's RSS
 *    (/proc/<pid>/status VmRSS, sampled every 5 ms) idle, and its peak
 *    during the first snapshot of `--rows` / 5 rows and then of `--rows`
 *    rows, before any other load: bounded memory grows the same for both,
 *    memory proportional to the table five times as much.
 * 2. Many small snapshots at once: every one of the `--clients` users
 *    subscribes with a snapshot at the same moment; per round, the time
 *    until all are done and each client's time from its request to its
 *    last page. Rounds repeat for `--seconds`. Ceiling, same run: the same
 *    users' rows with one plain `SELECT` each through SNAPSHOT_CONCURRENCY
 *    (4) `pg` connections in this process.
 * 3. Everyone else: `--subscribers` connections subscribed without a
 *    snapshot to a public table `tick`, into which this process inserts
 *    `--rate` rows/s (one per commit, each stamped with
 *    `clock_timestamp()`). Commit-to-receive latency (the samples of the
 *    rows written during a phase, however late they arrive) with no
 *    snapshots (a window before phase 1 and one after phase 2, pooled),
 *    during phase 1 and during phase 2; and how late the server's event
 *    loop ran in each window (prom-client's probe, read from `/metrics`).
 *
 *   npm run bench:snapshot                 # 100,000-row snapshot; 1,000 clients × 100 rows; 50 subscribers at 100 rows/s; 10 s phases
 *   npm run bench:snapshot -- --quick      # 20,000 rows; 200 clients × 100 rows; 3 s phases
 *
 * Flags: --rows, --clients, --per-client, --subscribers, --rate, --seconds.
 * Targets (reported, not enforced): ≥ 200,000 rows/s for the big snapshot;
 * server memory bounded by a few pages, not the table; the others' p99 ≤
 * 1.5× of theirs without snapshots. Results go to bench/results/snapshot.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { BENCH_METRICS_TOKEN, cpuMs, rssMiB, startBenchServer, type BenchServer } from './lib/bench-server.js';
import { pace } from './lib/measure.js';
import { SnapshotFleet, type LatencySample, type SnapshotResult } from './lib/snapshot-fleet.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rows: { type: 'string' },
    clients: { type: 'string' },
    'per-client': { type: 'string' },
    subscribers: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
  },
});
const ROWS = Number(args.rows ?? (args.quick ? 20_000 : 100_000));
const CLIENTS = Number(args.clients ?? (args.quick ? 200 : 1000));
const PER_CLIENT = Number(args['per-client'] ?? 100);
const SUBSCRIBERS = Number(args.subscribers ?? 50);
const RATE = Number(args.rate ?? 100);
/** Each latency window, and the least each phase runs (repeating its rounds). */
const SECONDS = Number(args.seconds ?? (args.quick ? 3 : 10));
/** Rounds each phase runs at least. */
const MIN_ROUNDS = { big: 3, many: 2 };

/** The server's snapshot settings (the defaults) and page size (src/server/start-server.ts). */
const CONCURRENCY = 4;
const PAGE_ROWS = 500;
const MAX_ROWS = Math.max(100_000, ROWS);

const BIG_USER = 0;
const MEDIUM_USER = CLIENTS + 1;
const MEDIUM_ROWS = Math.round(ROWS / 5);
const SMALL_USERS = Array.from({ length: CLIENTS }, (_, i) => i + 1);
/** The tick subscribers' subs, apart from the table's owners. */
const TICK_USERS = 1_000_000;
const COLUMNS = 'id, owner_id, title, amount, created_at';

const setupSql = `
  CREATE TABLE item (id bigserial PRIMARY KEY, owner_id int NOT NULL, title text NOT NULL, amount int NOT NULL, created_at timestamptz NOT NULL);
  INSERT INTO item (owner_id, title, amount, created_at)
    SELECT ${BIG_USER}, md5(g::text), g % 1000, now() - g * interval '1 second' FROM generate_series(1, ${ROWS}) g;
  INSERT INTO item (owner_id, title, amount, created_at)
    SELECT 1 + g % ${CLIENTS}, md5(g::text), g % 1000, now() - g * interval '1 second' FROM generate_series(0, ${CLIENTS * PER_CLIENT - 1}) g;
  INSERT INTO item (owner_id, title, amount, created_at)
    SELECT ${MEDIUM_USER}, md5(g::text), g % 1000, now() - g * interval '1 second' FROM generate_series(1, ${MEDIUM_ROWS}) g;
  CREATE INDEX item_owner ON item (owner_id);
  CREATE TABLE tick (id bigserial PRIMARY KEY, written_at double precision NOT NULL);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('item', 'owner', 'owner_id');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('tick', 'public');
  ANALYZE item;`;

const now = () => performance.timeOrigin + performance.now();
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 50);
const n = (value: number) => Math.round(value).toLocaleString('en');
const loop = (w: { eventLoop: { p99Ms: number; maxMs: number } }) => `server event loop late p99 ${w.eventLoop.p99Ms.toFixed(1)} ms, max ${w.eventLoop.maxMs.toFixed(1)} ms`;
/** min / median / max of a phase's rounds. */
const spread = (values: number[], format: (value: number) => string) =>
  values.length === 1 ? format(values[0]!) : `${format(Math.min(...values))} / ${format(median(values))} / ${format(Math.max(...values))} (min / median / max)`;

/** The server's RSS, sampled every 5 ms: the highest since the last `reset`. */
class RssSampler {
  #peak = 0;
  readonly #timer: NodeJS.Timeout;
  constructor(readonly pid: number) {
    this.#timer = setInterval(() => this.sample(), 5);
  }
  sample(): number {
    const rss = rssMiB(this.pid);
    this.#peak = Math.max(this.#peak, rss);
    return rss;
  }
  /** The current RSS, which becomes the peak. */
  reset(): number {
    this.#peak = 0;
    return this.sample();
  }
  peak(): number {
    this.sample();
    return this.#peak;
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

interface Latency {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

function latency(samples: readonly LatencySample[]): Latency {
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  return { samples: sorted.length, p50Ms: percentile(sorted, 50), p90Ms: percentile(sorted, 90), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? NaN };
}

/** What went wrong in a round's accounts: failures, missing or extra rows, duplicates, rows of another owner. */
function roundProblems(name: string, results: readonly SnapshotResult[], expected: (user: number) => number): string[] {
  const problems: string[] = [];
  const failed = results.filter((r) => r.error !== null);
  if (failed.length > 0) problems.push(`${name}: ${failed.length} snapshots failed (${failed[0]!.error})`);
  const wrong = results.filter((r) => r.error === null && r.rows !== expected(r.user));
  if (wrong.length > 0) problems.push(`${name}: ${wrong.length} snapshots had the wrong number of rows (user ${wrong[0]!.user}: ${wrong[0]!.rows}, expected ${expected(wrong[0]!.user)})`);
  const duplicated = results.filter((r) => r.distinct !== r.rows);
  if (duplicated.length > 0) problems.push(`${name}: ${duplicated.length} snapshots had a row twice`);
  const foreign = results.reduce((sum, r) => sum + r.foreign, 0);
  if (foreign > 0) problems.push(`${name}: ${foreign} rows of another owner were sent`);
  return problems;
}

const expectedRows = (user: number) => (user === BIG_USER ? ROWS : user === MEDIUM_USER ? MEDIUM_ROWS : PER_CLIENT);

/** One plain `SELECT` of a user's rows through `pg`: rows and ms. */
async function select(client: pg.Client, user: number): Promise<{ rows: number; ms: number }> {
  const started = performance.now();
  const result = await client.query(`SELECT ${COLUMNS} FROM item WHERE owner_id = $1`, [user]);
  return { rows: result.rows.length, ms: performance.now() - started };
}

/** Phase 2's ceiling: every small user's rows, one `SELECT` each, through CONCURRENCY connections taking users in turn. */
async function selectMany(clients: pg.Client[]): Promise<{ ms: number; rows: number; perQuery: number[] }> {
  const queue = [...SMALL_USERS];
  const perQuery: number[] = [];
  let rows = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      for (let user = queue.shift(); user !== undefined; user = queue.shift()) {
        const result = await select(client, user);
        rows += result.rows;
        perQuery.push(result.ms);
      }
    }),
  );
  return { ms: performance.now() - started, rows, perQuery };
}

interface BigRound {
  rows: number;
  ms: number;
  answerMs: number;
  rowsPerSecond: number;
  bytes: number;
  pages: number;
  /** The server's RSS: its peak during the round, and after it. */
  rssPeakMiB: number;
  rssAfterMiB: number;
}

const bigRound = (r: SnapshotResult, rss: RssSampler, peak: number): BigRound => {
  const ms = (r.doneAt ?? NaN) - r.sentAt;
  return {
    rows: r.rows,
    ms,
    answerMs: (r.answeredAt ?? NaN) - r.sentAt,
    rowsPerSecond: (r.rows / ms) * 1000,
    bytes: r.bytes,
    pages: r.pages,
    rssPeakMiB: peak,
    rssAfterMiB: rss.sample(),
  };
};

interface ManyRound {
  allDoneMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  answerP50Ms: number;
  answerP99Ms: number;
  serverCpuMs: number;
}

function manyRound(results: readonly SnapshotResult[], serverCpuMs: number): ManyRound {
  const per = results.map((r) => (r.doneAt ?? NaN) - r.sentAt).sort((a, b) => a - b);
  const answers = results.map((r) => (r.answeredAt ?? NaN) - r.sentAt).sort((a, b) => a - b);
  const started = Math.min(...results.map((r) => r.sentAt));
  const done = Math.max(...results.map((r) => r.doneAt ?? NaN));
  return {
    allDoneMs: done - started,
    p50Ms: percentile(per, 50),
    p99Ms: percentile(per, 99),
    maxMs: per.at(-1) ?? NaN,
    answerP50Ms: percentile(answers, 50),
    answerP99Ms: percentile(answers, 99),
    serverCpuMs,
  };
}

/**
 * How late the server's event loop ran since the previous call, in ms:
 * prom-client's `monitorEventLoopDelay` histogram (each `/metrics` scrape
 * resets it), whose probe fires every 10 ms and records the whole interval,
 * less those 10 ms.
 */
const PROBE_MS = 10;
async function eventLoopDelay(port: number): Promise<{ p50Ms: number; p99Ms: number; maxMs: number }> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${BENCH_METRICS_TOKEN}` } });
  const text = await response.text();
  const read = (name: string) => Number(new RegExp(`^rowcast_process_nodejs_eventloop_lag_${name}_seconds(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000 - PROBE_MS;
  return { p50Ms: read('p50'), p99Ms: read('p99'), maxMs: read('max') };
}

interface Window<T> {
  result: T;
  /** The span `body` ran, epoch ms. */
  from: number;
  to: number;
  seconds: number;
  serverCpuMs: number;
  /** The server's and the snapshot clients' CPU over the span, in % of a core. */
  serverCpuPercent: number;
  generatorCpuPercent: number;
  /** The tick subscribers' latency for the rows written in the span. */
  latency: Latency;
  undelivered: number;
  /** How late the server's event loop ran over the span (probed every 10 ms). */
  eventLoop: { p50Ms: number; p99Ms: number; maxMs: number };
}

/**
 * Runs `body` while the writer inserts ticks; returns its result, the span
 * it ran (epoch ms) and the tick subscribers' latency for the rows written
 * in that span, once every tick committed in it has reached every
 * subscriber (or 10 s passed).
 */
async function window<T>(
  server: BenchServer,
  ticks: SnapshotFleet,
  writer: { count(): number },
  generatorCpuMs: () => number,
  body: () => Promise<T>,
): Promise<Window<T>> {
  await eventLoopDelay(server.port);
  const cpu = cpuMs(server.pid);
  const generators = generatorCpuMs();
  const from = now();
  const result = await body();
  const to = now();
  const eventLoop = await eventLoopDelay(server.port);
  const serverCpuMs = cpuMs(server.pid) - cpu;
  const generatorsMs = generatorCpuMs() - generators;
  const expected = writer.count() * SUBSCRIBERS;
  const deadline = Date.now() + 10_000;
  do await ticks.settle();
  while (ticks.received() < expected && Date.now() < deadline);
  const samples = ticks.samples.filter((s) => within(s, { from, to }));
  const seconds = (to - from) / 1000;
  return {
    result,
    from,
    to,
    seconds,
    serverCpuMs,
    serverCpuPercent: serverCpuMs / seconds / 10,
    generatorCpuPercent: generatorsMs / seconds / 10,
    latency: latency(samples),
    undelivered: Math.max(0, expected - ticks.received()),
    eventLoop,
  };
}

async function main(): Promise<void> {
  console.log(
    `snapshot: one ${n(ROWS)}-row snapshot; ${n(CLIENTS)} clients × ${PER_CLIENT} rows at once; ` +
      `${SUBSCRIBERS} live subscribers at ${RATE} rows/s; ${SECONDS} s phases (SNAPSHOT_CONCURRENCY ${CONCURRENCY}, ${PAGE_ROWS} rows a page)`,
  );
  const loadBefore = loadavg()[0]!;
  const setupStarted = performance.now();
  const server = await startBenchServer(setupSql, { env: { SNAPSHOT_MAX_ROWS: String(MAX_ROWS), SNAPSHOT_CONCURRENCY: String(CONCURRENCY) } });
  console.log(`  server up on ${n(ROWS + CLIENTS * PER_CLIENT + MEDIUM_ROWS)} rows after ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);
  const readers = await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const client = new pg.Client({ connectionString: server.databaseUrl });
      await client.connect();
      return client;
    }),
  );
  const rss = new RssSampler(server.pid);
  const fleets: SnapshotFleet[] = [];
  const problems: string[] = [];
  try {
    const ticks = await SnapshotFleet.start({ urls: server.urls, topic: 'tick', users: Array.from({ length: SUBSCRIBERS }, (_, i) => TICK_USERS + i), live: true });
    fleets.push(ticks);
    const big = await SnapshotFleet.start({ urls: server.urls, topic: 'item', users: [BIG_USER, MEDIUM_USER] });
    fleets.push(big);
    const many = await SnapshotFleet.start({ urls: server.urls, topic: 'item', users: SMALL_USERS, workers: CLIENTS >= 500 ? 2 : 1 });
    fleets.push(many);
    const generatorCpuMs = () => big.cpuMs() + many.cpuMs();
    await sleep(1000);

    // Ceilings, with nothing else running (the first read also brings the table into Postgres's cache).
    const first = readers[0]!;
    const ceilingRuns: number[] = [];
    for (let i = 0; i < 4; i++) {
      const { rows, ms } = await select(first, BIG_USER);
      if (rows !== ROWS) problems.push(`ceiling: the SELECT read ${rows} rows, expected ${ROWS}`);
      if (i > 0) ceilingRuns.push((rows / ms) * 1000);
    }
    await selectMany(readers);
    const manyCeiling = await selectMany(readers);
    const ceilingPerQuery = manyCeiling.perQuery.sort((a, b) => a - b);
    console.log(
      `  ceilings: plain SELECT of user 0's ${n(ROWS)} rows ${ceilingRuns.map(n).join(', ')} rows/s; ` +
        `${n(CLIENTS)} users' rows in ${manyCeiling.ms.toFixed(0)} ms over ${CONCURRENCY} connections (${n((manyCeiling.rows / manyCeiling.ms) * 1000)} rows/s)`,
    );

    // Memory, cold: the first snapshots this server reads, the smaller first, nothing else running.
    await sleep(500);
    const rssIdle = rss.reset();
    const medium = await big.snapshot([MEDIUM_USER]);
    const rssMedium = rss.peak();
    problems.push(...roundProblems('medium snapshot', medium, expectedRows));
    await big.unsubscribe();
    const coldStart = rss.sample();
    const cold = await big.snapshot([BIG_USER]);
    const rssCold = rss.peak();
    problems.push(...roundProblems('big snapshot (cold)', cold, expectedRows));
    await big.unsubscribe();
    const coldRound = bigRound(cold[0]!, rss, rssCold);
    const mediumRound = bigRound(medium[0]!, rss, rssMedium);
    console.log(
      `  memory: server RSS idle ${rssIdle.toFixed(1)} MiB; peak +${(rssMedium - rssIdle).toFixed(1)} MiB during the ${n(MEDIUM_ROWS)}-row snapshot ` +
        `(${(mediumRound.bytes / 2 ** 20).toFixed(1)} MiB of pages), +${(rssCold - rssIdle).toFixed(1)} MiB during the ${n(ROWS)}-row one ` +
        `(${(coldRound.bytes / 2 ** 20).toFixed(1)} MiB of pages; ${n(coldRound.rowsPerSecond)} rows/s, cold)`,
    );

    // The others' latency: with no snapshots, during phase 1, during phase 2, with none again.
    const writer = pace(RATE, async () => {
      await server.db.query(`INSERT INTO tick (written_at) VALUES (extract(epoch FROM clock_timestamp()) * 1000)`);
    });
    await sleep(1000);
    const idleBefore = await window(server, ticks, writer, generatorCpuMs, () => sleep(SECONDS * 1000));
    console.log(`  no snapshots: tick latency p50 ${idleBefore.latency.p50Ms.toFixed(2)} ms, p99 ${idleBefore.latency.p99Ms.toFixed(2)} ms (${n(idleBefore.latency.samples)} samples); ${loop(idleBefore)}`);

    let warmPeak = 0;
    const phase1 = await window(server, ticks, writer, generatorCpuMs, async () => {
      const rounds: BigRound[] = [];
      const started = performance.now();
      while (rounds.length < MIN_ROUNDS.big || performance.now() - started < SECONDS * 1000) {
        rss.reset();
        const results = await big.snapshot([BIG_USER]);
        problems.push(...roundProblems(`big snapshot ${rounds.length + 1}`, results, expectedRows));
        rounds.push(bigRound(results[0]!, rss, rss.peak()));
        warmPeak = Math.max(warmPeak, rounds.at(-1)!.rssPeakMiB);
        await big.unsubscribe();
      }
      return rounds;
    });
    const rssWarm = warmPeak;
    const bigRounds = phase1.result;
    const bigRowsPerSecond = median(bigRounds.map((r) => r.rowsPerSecond));
    const ceilingRowsPerSecond = median(ceilingRuns);
    console.log(
      `  phase 1: ${bigRounds.length} snapshots of ${n(ROWS)} rows, ${spread(bigRounds.map((r) => r.rowsPerSecond), n)} rows/s ` +
        `(answer after ${median(bigRounds.map((r) => r.answerMs)).toFixed(1)} ms); server CPU ${((phase1.serverCpuMs * 1000) / (bigRounds.length * ROWS)).toFixed(2)} µs/row; ` +
        `RSS peak +${(rssWarm - rssIdle).toFixed(1)} MiB over idle, +${(bigRounds.at(-1)!.rssAfterMiB - rssIdle).toFixed(1)} MiB after the last ` +
        `(${(bigRounds.reduce((sum, r) => sum + r.bytes, 0) / 2 ** 20).toFixed(0)} MiB of pages sent); tick latency p50 ${phase1.latency.p50Ms.toFixed(2)} ms, p99 ${phase1.latency.p99Ms.toFixed(2)} ms; ` +
        `server ${phase1.serverCpuPercent.toFixed(0)}%, snapshot client ${phase1.generatorCpuPercent.toFixed(0)}% of a core; ${loop(phase1)}`,
    );

    const phase2 = await window(server, ticks, writer, generatorCpuMs, async () => {
      const rounds: Array<{ round: ManyRound; results: SnapshotResult[] }> = [];
      const started = performance.now();
      while (rounds.length < MIN_ROUNDS.many || performance.now() - started < SECONDS * 1000) {
        const cpu = cpuMs(server.pid);
        const results = await many.snapshot();
        const round = manyRound(results, cpuMs(server.pid) - cpu);
        problems.push(...roundProblems(`many snapshots, round ${rounds.length + 1}`, results, expectedRows));
        rounds.push({ round, results });
        await many.unsubscribe();
      }
      return rounds;
    });
    const manyRounds = phase2.result.map((r) => r.round);
    const perClient = phase2.result.flatMap((r) => r.results.map((x) => (x.doneAt ?? NaN) - x.sentAt)).sort((a, b) => a - b);
    const allDoneMs = median(manyRounds.map((r) => r.allDoneMs));
    console.log(
      `  phase 2: ${manyRounds.length} rounds of ${n(CLIENTS)} snapshots at once, all done in ${spread(manyRounds.map((r) => r.allDoneMs), (ms) => `${ms.toFixed(0)} ms`)}; ` +
        `per client p50 ${percentile(perClient, 50).toFixed(0)} ms, p99 ${percentile(perClient, 99).toFixed(0)} ms; ` +
        `tick latency p50 ${phase2.latency.p50Ms.toFixed(2)} ms, p99 ${phase2.latency.p99Ms.toFixed(2)} ms; ` +
        `server ${phase2.serverCpuPercent.toFixed(0)}%, snapshot clients ${phase2.generatorCpuPercent.toFixed(0)}% of a core; ${loop(phase2)}`,
    );

    const idleAfter = await window(server, ticks, writer, generatorCpuMs, () => sleep(SECONDS * 1000));
    await writer.stop();
    console.log(`  no snapshots again: tick latency p50 ${idleAfter.latency.p50Ms.toFixed(2)} ms, p99 ${idleAfter.latency.p99Ms.toFixed(2)} ms; ${loop(idleAfter)}`);
    const idleSamples = ticks.samples.filter((s) => within(s, idleBefore) || within(s, idleAfter));
    const idle = latency(idleSamples);

    for (const [name, w] of [['no snapshots (before)', idleBefore], ['phase 1', phase1], ['phase 2', phase2], ['no snapshots (after)', idleAfter]] as const) {
      if (w.undelivered > 0) problems.push(`${name}: ${w.undelivered} tick deliveries never arrived`);
      if (w.latency.samples === 0) problems.push(`${name}: no tick arrived`);
    }
    if (ticks.closed() > 0) problems.push(`the server closed ${ticks.closed()} tick subscribers`);

    const result = {
      date: new Date().toISOString(),
      quick: args.quick,
      rows: ROWS,
      clients: CLIENTS,
      rowsPerClient: PER_CLIENT,
      subscribers: SUBSCRIBERS,
      rate: RATE,
      seconds: SECONDS,
      concurrency: CONCURRENCY,
      pageRows: PAGE_ROWS,
      /** The machine's 1-minute load average at the start and the end: other work on the same cores shows here. */
      loadAverage: [loadBefore, loadavg()[0]!],
      cores: cpus().length,
      big: {
        rows: ROWS,
        rounds: bigRounds,
        rowsPerSecond: bigRowsPerSecond,
        cold: coldRound,
        serverCpuUsPerRow: (phase1.serverCpuMs * 1000) / (bigRounds.length * ROWS),
        serverCpuPercent: phase1.serverCpuPercent,
        generatorCpuPercent: phase1.generatorCpuPercent,
        pageBytes: coldRound.bytes / coldRound.pages,
        ceiling: { rowsPerSecond: ceilingRowsPerSecond, runs: ceilingRuns },
        ratio: bigRowsPerSecond / ceilingRowsPerSecond,
        rss: {
          idleMiB: rssIdle,
          medium: { rows: MEDIUM_ROWS, bytes: mediumRound.bytes, peakGrowthMiB: rssMedium - rssIdle },
          cold: { bytes: coldRound.bytes, peakGrowthMiB: rssCold - rssIdle, growthOverMediumMiB: rssCold - coldStart },
          warmPeakGrowthMiB: rssWarm - rssIdle,
          /** After the last of phase 1's snapshots, and the pages all of them sent. */
          warmAfterGrowthMiB: bigRounds.at(-1)!.rssAfterMiB - rssIdle,
          warmBytes: bigRounds.reduce((sum, r) => sum + r.bytes, 0),
        },
      },
      many: {
        clients: CLIENTS,
        rowsPerClient: PER_CLIENT,
        rounds: manyRounds,
        allDoneMs,
        rowsPerSecond: ((CLIENTS * PER_CLIENT) / allDoneMs) * 1000,
        p50Ms: percentile(perClient, 50),
        p99Ms: percentile(perClient, 99),
        maxMs: perClient.at(-1) ?? NaN,
        serverCpuUsPerSnapshot: (manyRounds.reduce((sum, r) => sum + r.serverCpuMs, 0) * 1000) / (manyRounds.length * CLIENTS),
        serverCpuPercent: phase2.serverCpuPercent,
        generatorCpuPercent: phase2.generatorCpuPercent,
        ceiling: { allDoneMs: manyCeiling.ms, rowsPerSecond: (manyCeiling.rows / manyCeiling.ms) * 1000, queryP50Ms: percentile(ceilingPerQuery, 50), queryP99Ms: percentile(ceilingPerQuery, 99) },
        ratio: manyCeiling.ms / allDoneMs,
      },
      live: {
        subscribers: SUBSCRIBERS,
        rate: RATE,
        idle,
        idleBefore: idleBefore.latency,
        idleAfter: idleAfter.latency,
        duringBig: phase1.latency,
        duringMany: phase2.latency,
        ratioBig: phase1.latency.p99Ms / idle.p99Ms,
        ratioMany: phase2.latency.p99Ms / idle.p99Ms,
        /** The server's event-loop delay in each window. */
        eventLoop: { idleBefore: idleBefore.eventLoop, duringBig: phase1.eventLoop, duringMany: phase2.eventLoop, idleAfter: idleAfter.eventLoop },
      },
      problems,
    };

    console.log('\n| phase | measured | ceiling, same run | ratio | target |');
    console.log('|---|---|---|---:|---|');
    console.log(
      `| one snapshot of ${n(ROWS)} rows | ${n(bigRowsPerSecond)} rows/s (median of ${bigRounds.length}; cold ${n(coldRound.rowsPerSecond)}) | plain SELECT ${n(ceilingRowsPerSecond)} rows/s | ${result.big.ratio.toFixed(2)} | ≥ 200,000 rows/s |`,
    );
    console.log(
      `| server RSS during it | +${(rssCold - rssIdle).toFixed(1)} MiB (${n(MEDIUM_ROWS)} rows: +${(rssMedium - rssIdle).toFixed(1)} MiB); ${(coldRound.bytes / 2 ** 20).toFixed(1)} MiB of pages, ${n(result.big.pageBytes / 1024)} KiB each | — | — | a few pages, not the table |`,
    );
    console.log(
      `| ${n(CLIENTS)} × ${PER_CLIENT} rows at once | all done in ${allDoneMs.toFixed(0)} ms (median of ${manyRounds.length}); per client p50 ${result.many.p50Ms.toFixed(0)} ms, p99 ${result.many.p99Ms.toFixed(0)} ms | ` +
        `${n(CLIENTS)} SELECTs over ${CONCURRENCY} connections ${manyCeiling.ms.toFixed(0)} ms | ${result.many.ratio.toFixed(2)} | (no target) |`,
    );
    console.log(
      `| ${SUBSCRIBERS} live subscribers' p99 | no snapshots ${idle.p99Ms.toFixed(2)} ms; during phase 1 ${phase1.latency.p99Ms.toFixed(2)} ms (${result.live.ratioBig.toFixed(2)}×), ` +
        `during phase 2 ${phase2.latency.p99Ms.toFixed(2)} ms (${result.live.ratioMany.toFixed(2)}×) | — | — | ≤ 1.5× |`,
    );
    console.log(`\nload average ${result.loadAverage.map((l) => l.toFixed(1)).join(' → ')} (1 minute, ${cpus().length} cores: the server, Postgres and the load generators' own share is part of it)`);
    if (problems.length > 0) console.error(`problems: ${problems.join('; ')}`);
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/snapshot.json', JSON.stringify(result, null, 2));
  } finally {
    rss.stop();
    for (const fleet of fleets) await fleet.stop();
    for (const reader of readers) await reader.end();
    await server.stop();
  }
}

/** Whether a sample's row was written during a window. */
const within = (sample: LatencySample, w: { from: number; to: number }) => sample.writtenAt >= w.from && sample.writtenAt < w.to;

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
