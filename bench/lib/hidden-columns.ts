/**
 * The hidden-columns mode of bench/scoped-fanout.ts (`--hidden`): the
 * latency scenario's owner-scoped load, with and without a policy's
 * `hidden_columns` (docs/protocol.md, "Hidden columns"), in one run.
 *
 * Each hidden count `h` of `--hidden 0,2` (variant `i`, from 1) gets its own
 * table, `bench_orders_<i>_h<h>`, all with the same columns: the latency scenario's
 * `bench_orders` plus `--text-columns` text columns `secret_1 … secret_k`
 * (default: the largest hidden count), each filled with a 64-character value
 * on every row written, so every variant writes, decodes and routes the same
 * rows; only the policy differs: table `h` hides `secret_1 … secret_h` from
 * non-admins. A count may repeat: `--hidden 0,0` measures two identical
 * tables, an A/A control showing how far the ratio wanders with nothing
 * different between the variants. Every subscriber is a non-admin owning its own rows (the
 * stripping happens for non-admin partitions only; no admin subscribes, so
 * no frame of the whole row is made).
 *
 * A probe checks the premise first: for each table, a subscriber of its own
 * rows writes one row and must receive every text column that is not hidden,
 * with its value, and none that is. After the run every row written must
 * have a value in every text column.
 *
 * Each variant's subscribers (one fleet per table) stay connected through
 * the run. After 1 s of unmeasured writes to every table (left out when
 * phases are shorter than 2 s, as in the suite's `--quick`), the writes go
 * to one table at a time, in phases of `seconds / rounds` after 0.5 s of
 * warm-up each, the order of the variants reversed every other round (off,
 * on, on, off, …) so that drift in the machine's load falls on both. Per
 * phase: the server's CPU in the window per change written in it (as the
 * latency scenario measures it), and the commit-to-receive latency of every
 * event from the window's start until every change written has arrived
 * (counted against the rows in the table: one delivery per row; one missing
 * is a problem). Per variant: CPU pooled over its phases (all CPU over all
 * changes) and latency over all its samples; also the median of its phases'
 * CPU per change, which a phase disturbed by other load on the machine moves
 * less. The ratios of each variant to the first: pooled CPU per change (the
 * target, ≤ 1.1, is reported, never enforced), median CPU per change, p50
 * and p99; and the CPU ratio of each round.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { BENCH_SECRET, rssMiB, startBenchServer, type BenchServer } from './bench-server.js';
import { ClientFleet } from './client-fleet.js';
import { measureWindow, pace, type Pacer } from './measure.js';

export interface HiddenOptions {
  /** Subscriber counts, each measured in turn (every variant's fleet of that size at once). */
  readonly connections: number[];
  /** Changes/s written to the table of the phase. */
  readonly rate: number;
  /** Measured seconds per variant, split over the rounds. */
  readonly seconds: number;
  readonly rounds: number;
  /** Hidden column counts, one variant each; ratios are to the first. */
  readonly hidden: number[];
  /** Text columns every table has (≥ the largest hidden count). */
  readonly textColumns: number;
}

/** A variant: its place in `--hidden` (0-based), how many of the text columns its table's policy hides, its table. */
interface Variant {
  readonly index: number;
  readonly hidden: number;
  readonly table: string;
}

/** What one phase (one variant's window in one round) saw. */
interface Phase {
  readonly round: number;
  readonly variant: number;
  readonly hidden: number;
  readonly windowSeconds: number;
  /** Changes written in the window, and the server's CPU in it. */
  readonly windowChanges: number;
  readonly windowCpuMs: number;
  readonly changesPerSecond: number;
  readonly serverCpuUsPerChange: number;
  readonly serverCpuPercent: number;
  readonly generatorCpuPercent: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
  /** Rows written in the phase (warm-up and window) and the deliveries that arrived for them. */
  readonly expected: number;
  readonly delivered: number;
  readonly drainSeconds: number;
  readonly closed: number;
}

/** A variant's phases pooled. */
interface Pooled {
  readonly variant: number;
  readonly hidden: number;
  readonly changes: number;
  readonly serverCpuUsPerChange: number;
  /** The median of the phases' CPU per change. */
  readonly medianCpuUsPerChange: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
}

/** Bytes of each text column's value (a password hash is 60, a note more). */
const VALUE_LENGTH = 64;
/** After the writes stop: how long deliveries may make no progress before the missing ones count as lost. */
const STALL_SECONDS = 10;

const tableOf = (index: number, hidden: number) => `bench_orders_${index + 1}_h${hidden}`;
const textColumn = (i: number) => `secret_${i}`;
/** The value of text column `i` (1-based) in every row: fixed length, distinct per column. */
const valueOf = (i: number) => `${textColumn(i)}:`.padEnd(VALUE_LENGTH, String.fromCharCode(96 + (i % 26)));

export async function runHiddenColumns(options: HiddenOptions): Promise<Record<string, unknown>> {
  const { hidden, textColumns } = options;
  if (hidden.some((h) => !Number.isInteger(h) || h < 0 || h > textColumns)) {
    throw new Error(`--hidden: counts from 0 to the text columns (${textColumns})`);
  }
  const variants = hidden.map((h, index) => ({ index, hidden: h, table: tableOf(index, h) }));
  const phaseSeconds = options.seconds / options.rounds;
  console.log(
    `hidden columns: ${variants.map((v) => `${v.hidden} of ${textColumns}`).join(' / ')} text columns hidden (${VALUE_LENGTH} characters each), ` +
      `connections ${options.connections.join(' / ')}, ${options.rate} changes/s, ${options.rounds} rounds of ${phaseSeconds} s per variant`,
  );
  const bench = await startBenchServer(setupSql(variants, textColumns));
  const problems: string[] = [];
  const results: Array<Record<string, unknown>> = [];
  const probes: Array<{ table: string; hidden: number; columns: string[]; frameBytes: number }> = [];
  try {
    for (const variant of variants) {
      const seen = await probe(bench, variant, textColumns);
      probes.push({ table: variant.table, hidden: variant.hidden, columns: seen.columns, frameBytes: seen.frameBytes });
      problems.push(...seen.wrong);
    }
    for (const connections of options.connections) {
      const result = await runSize(bench, variants, connections, options, phaseSeconds);
      results.push(result.summary);
      problems.push(...result.problems.map((p) => `${connections} connections: ${p}`));
    }
    problems.push(...(await emptyValues(bench, variants, textColumns)));
  } finally {
    await bench.stop();
  }
  return { rate: options.rate, seconds: options.seconds, rounds: options.rounds, textColumns, valueLength: VALUE_LENGTH, hidden, probes, results, problems };
}

/** Each variant's table: the latency scenario's columns and the text columns; an owner policy hiding the first `hidden`. */
function setupSql(variants: Variant[], textColumns: number): string {
  const texts = Array.from({ length: textColumns }, (_, i) => `${textColumn(i + 1)} text, `).join('');
  return variants
    .map((v) => {
      const hide = Array.from({ length: v.hidden }, (_, i) => textColumn(i + 1)).join(',');
      return `
    CREATE TABLE ${v.table} (id bigserial PRIMARY KEY, owner_id int NOT NULL, amount int, ${texts}written_at double precision NOT NULL);
    INSERT INTO rowcast.table_policies (table_name, read, owner_column, hidden_columns) VALUES ('${v.table}', 'owner', 'owner_id', '{${hide}}');`;
    })
    .join('\n');
}

/** The INSERT of `perTick` rows, owners drawn from `0 … owners - 1`, every text column filled, stamped with the wall clock. */
function insertSql(table: string, textColumns: number): string {
  const columns = Array.from({ length: textColumns }, (_, i) => `${textColumn(i + 1)}, `).join('');
  const values = Array.from({ length: textColumns }, (_, i) => `$${i + 3}::text, `).join('');
  return `INSERT INTO ${table} (owner_id, amount, ${columns}written_at)
    SELECT floor(random() * $1)::int, g, ${values}extract(epoch FROM clock_timestamp()) * 1000 FROM generate_series(1, $2) g`;
}

/** The latency scenario's write load (bench/lib/measure.ts paceScopedInserts) with the text columns filled. */
function paceInserts(db: BenchServer['db'], table: string, textColumns: number, owners: number, rate: number): { pacer: Pacer; perTick: number } {
  const perTick = Math.max(1, Math.round(rate / 100));
  const sql = insertSql(table, textColumns);
  const values = Array.from({ length: textColumns }, (_, i) => valueOf(i + 1));
  const pacer = pace(100, async () => {
    await db.query(sql, [owners, perTick, ...values]);
  });
  return { pacer, perTick };
}

/**
 * The premise, on `variant`'s table: user 0 subscribes, writes a row it owns
 * and must receive the text columns its policy does not hide, with their
 * values, and none that it hides. Returns the columns and size of the event
 * frame received, and what is wrong, if anything.
 */
async function probe(bench: BenchServer, variant: Variant, textColumns: number): Promise<{ columns: string[]; frameBytes: number; wrong: string[] }> {
  const token = jwt.sign({ sub: '0' }, BENCH_SECRET, { algorithm: 'HS256', expiresIn: '1h' });
  const socket = new WebSocket(`${bench.urls[0]}?token=${token}&client=bench`, { perMessageDeflate: false });
  try {
    const { attributes, frameBytes } = await new Promise<{ attributes: Record<string, unknown>; frameBytes: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`probe of ${variant.table}: no event within 10 s`)), 10_000);
      socket.once('error', reject);
      socket.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; method?: string; ok?: boolean; data?: { attributes?: Record<string, unknown> } };
        if (frame.type === 'session') socket.send(JSON.stringify({ id: 1, method: 'subscribe', attributes: { topicName: variant.table } }));
        else if (frame.type === 'response' && frame.method === 'subscribe') {
          if (!frame.ok) reject(new Error(`probe of ${variant.table}: subscribe refused: ${data.toString()}`));
          else bench.db.query(insertSql(variant.table, textColumns), [1, 1, ...Array.from({ length: textColumns }, (_, i) => valueOf(i + 1))]).catch(reject);
        } else if (frame.type === 'event') {
          clearTimeout(timer);
          resolve({ attributes: frame.data?.attributes ?? {}, frameBytes: Buffer.byteLength(data.toString()) });
        }
      });
    });
    const wrong: string[] = [];
    for (let i = 1; i <= textColumns; i++) {
      const column = textColumn(i);
      if (i <= variant.hidden && column in attributes) wrong.push(`${variant.table}: hidden column ${column} reached a non-admin`);
      if (i > variant.hidden && attributes[column] !== valueOf(i)) wrong.push(`${variant.table}: visible column ${column} arrived as ${JSON.stringify(attributes[column])}`);
    }
    console.log(
      `  probe of ${variant.table}: an event frame of ${frameBytes} bytes carries ${Object.keys(attributes).join(', ')}` +
        (wrong.length > 0 ? `; wrong: ${wrong.join('; ')}` : ' (as its policy says)'),
    );
    return { columns: Object.keys(attributes), frameBytes, wrong };
  } finally {
    socket.terminate();
  }
}

/** Rows written without a value in some text column (there should be none: every hidden column had something to hide). */
async function emptyValues(bench: BenchServer, variants: Variant[], textColumns: number): Promise<string[]> {
  const anyEmpty = Array.from({ length: textColumns }, (_, i) => `${textColumn(i + 1)} IS NULL`).join(' OR ') || 'false';
  const problems: string[] = [];
  for (const v of variants) {
    const { rows } = await bench.db.query<{ empty: string }>(`SELECT count(*) AS empty FROM ${v.table} WHERE ${anyEmpty}`);
    if (Number(rows[0]!.empty) > 0) problems.push(`${v.table}: ${rows[0]!.empty} rows lack a text value`);
  }
  return problems;
}

/** Every round of every variant at one subscriber count: one fleet per table, all connected throughout. */
async function runSize(bench: BenchServer, variants: Variant[], connections: number, options: HiddenOptions, phaseSeconds: number) {
  const fleets = await Promise.all(variants.map((v) => ClientFleet.start({ urls: bench.urls, topic: v.table, connections })));
  const pools = variants.map(() => createHistogram());
  const phases: Phase[] = [];
  try {
    if (phaseSeconds >= 2) await warmUp(bench, variants, fleets, connections, options, 1);
    for (let round = 1; round <= options.rounds; round++) {
      const order = round % 2 === 1 ? variants : [...variants].reverse();
      for (const variant of order) {
        const fleet = fleets[variant.index]!;
        const phase = await runPhase(bench, variant, fleet, connections, options, phaseSeconds, round);
        pools[variant.index]!.add(fleet.histogram);
        phases.push(phase);
        printPhase(connections, phase, options.textColumns);
      }
    }
  } finally {
    await Promise.all(fleets.map((f) => f.stop()));
  }
  const pooled = variants.map((v) => pool(v, phases.filter((p) => p.variant === v.index), pools[v.index]!));
  const first = pooled[0]!;
  const ratios = pooled.slice(1).map((p) => ({
    hidden: p.hidden,
    against: first.hidden,
    cpu: p.serverCpuUsPerChange / first.serverCpuUsPerChange,
    medianCpu: p.medianCpuUsPerChange / first.medianCpuUsPerChange,
    p50: p.p50Ms / first.p50Ms,
    p99: p.p99Ms / first.p99Ms,
    roundCpu: Array.from({ length: options.rounds }, (_, i) => {
      const of = (variant: number) => phases.find((x) => x.round === i + 1 && x.variant === variant)!.serverCpuUsPerChange;
      return of(p.variant) / of(first.variant);
    }),
  }));
  for (const r of ratios) console.log(`  ${connections} connections, ${ratioLine(r)}`);
  const problems = phases.flatMap((p) => {
    const name = `round ${p.round}, ${p.hidden} hidden (table ${p.variant + 1})`;
    return [
      ...(p.closed > 0 ? [`${name}: the server closed ${p.closed} connections`] : []),
      ...(p.delivered < p.expected ? [`${name}: ${p.expected - p.delivered} of ${p.expected} deliveries never arrived`] : []),
      ...(p.delivered > p.expected ? [`${name}: ${p.delivered - p.expected} deliveries more than the ${p.expected} rows written`] : []),
      ...(p.samples === 0 ? [`${name}: no event arrived`] : []),
    ];
  });
  return { summary: { connections, variants: pooled, ratios, serverRssMiB: rssMiB(bench.pid), phases }, problems };
}

/**
 * Before the first round, `seconds` of writes to every table at once, not
 * measured: a fresh server's first events are slower (its code not yet
 * optimized), which would otherwise fall on the first variant measured.
 */
async function warmUp(bench: BenchServer, variants: Variant[], fleets: ClientFleet[], connections: number, options: HiddenOptions, seconds: number): Promise<void> {
  await Promise.all(
    variants.map(async (variant, i) => {
      const firstId = await lastId(bench, variant.table);
      await fleets[i]!.settle();
      const before = fleets[i]!.received();
      const { pacer } = paceInserts(bench.db, variant.table, options.textColumns, connections, options.rate);
      await sleep(seconds * 1000);
      await pacer.stop();
      await drain(fleets[i]!, before, (await lastId(bench, variant.table)) - firstId);
    }),
  );
}

/** One phase: write to the variant's table for the warm-up and the window, stop, and wait for every delivery. */
async function runPhase(
  bench: BenchServer,
  variant: Variant,
  fleet: ClientFleet,
  connections: number,
  options: HiddenOptions,
  seconds: number,
  round: number,
): Promise<Phase> {
  const firstId = await lastId(bench, variant.table);
  // The fleet has been idle since its last phase was drained (or it opened): its count is current.
  const receivedBefore = fleet.received();
  const { pacer, perTick } = paceInserts(bench.db, variant.table, options.textColumns, connections, options.rate);
  const window = await measureWindow({ serverPid: bench.pid, fleet, pacer, seconds });
  await pacer.stop();
  const expected = (await lastId(bench, variant.table)) - firstId;
  const drainStarted = performance.now();
  const delivered = await drain(fleet, receivedBefore, expected);
  // measureWindow reset the histogram at the window's start: it now holds every sample since.
  const latency = fleet.histogram;
  const windowChanges = window.changes * perTick;
  return {
    round,
    variant: variant.index,
    hidden: variant.hidden,
    windowSeconds: window.seconds,
    windowChanges,
    windowCpuMs: window.serverCpuMs,
    changesPerSecond: windowChanges / window.seconds,
    serverCpuUsPerChange: (window.serverCpuMs * 1000) / windowChanges,
    serverCpuPercent: (window.serverCpuMs / (window.seconds * 1000)) * 100,
    generatorCpuPercent: (window.generatorCpuMs / (window.seconds * 1000)) * 100,
    p50Ms: latency.percentile(50) / 1000,
    p90Ms: latency.percentile(90) / 1000,
    p99Ms: latency.percentile(99) / 1000,
    maxMs: latency.max / 1000,
    samples: latency.count,
    expected,
    delivered,
    drainSeconds: (performance.now() - drainStarted) / 1000,
    closed: fleet.closed(),
  };
}

/** The largest id written so far (ids are the write order: nothing else writes). */
async function lastId(bench: BenchServer, table: string): Promise<number> {
  const { rows } = await bench.db.query<{ id: string }>(`SELECT coalesce(max(id), 0) AS id FROM ${table}`);
  return Number(rows[0]!.id);
}

/** Waits until the fleet has received `expected` events since `before`, or deliveries stall for STALL_SECONDS; returns how many arrived. */
async function drain(fleet: ClientFleet, before: number, expected: number): Promise<number> {
  let delivered = fleet.received() - before;
  let progressAt = performance.now();
  while (delivered < expected && performance.now() - progressAt < STALL_SECONDS * 1000) {
    await fleet.settle();
    const now = fleet.received() - before;
    if (now > delivered) progressAt = performance.now();
    delivered = now;
  }
  return delivered;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function pool(variant: Variant, phases: Phase[], histogram: RecordableHistogram): Pooled {
  const cpu = phases.reduce((total, p) => total + p.windowCpuMs, 0);
  const changes = phases.reduce((total, p) => total + p.windowChanges, 0);
  return {
    variant: variant.index,
    hidden: variant.hidden,
    changes,
    serverCpuUsPerChange: (cpu * 1000) / changes,
    medianCpuUsPerChange: median(phases.map((p) => p.serverCpuUsPerChange)),
    p50Ms: histogram.percentile(50) / 1000,
    p90Ms: histogram.percentile(90) / 1000,
    p99Ms: histogram.percentile(99) / 1000,
    maxMs: histogram.max / 1000,
    samples: histogram.count,
  };
}

function printPhase(connections: number, p: Phase, textColumns: number): void {
  console.log(
    `  ${connections} connections, round ${p.round}, table ${p.variant + 1} (${p.hidden} of ${textColumns} hidden): ${Math.round(p.changesPerSecond)} changes/s, ` +
      `server CPU ${p.serverCpuUsPerChange.toFixed(1)} µs/change (${p.serverCpuPercent.toFixed(0)}% of a core), load generators ${p.generatorCpuPercent.toFixed(0)}%, ` +
      `p50 ${p.p50Ms.toFixed(2)} ms p90 ${p.p90Ms.toFixed(2)} ms p99 ${p.p99Ms.toFixed(2)} ms max ${p.maxMs.toFixed(1)} ms; ${p.delivered} of ${p.expected} deliveries`,
  );
}

/** A variant's ratios to the first. */
interface Ratio {
  readonly hidden: number;
  readonly against: number;
  readonly cpu: number;
  readonly medianCpu: number;
  readonly p50: number;
  readonly p99: number;
  readonly roundCpu: number[];
}

function ratioLine(r: Ratio): string {
  return (
    `${r.hidden} hidden / ${r.against} hidden: server CPU per change ${r.cpu.toFixed(2)}× (target ≤ 1.1: ${r.cpu <= 1.1 ? 'met' : 'missed'}), ` +
    `median phase ${r.medianCpu.toFixed(2)}×, rounds ${r.roundCpu.map((x) => x.toFixed(2)).join(', ')}; p50 ${r.p50.toFixed(2)}×, p99 ${r.p99.toFixed(2)}×`
  );
}

/** The pooled variants and ratios of every subscriber count as Markdown tables. */
export function printHiddenTables(report: Record<string, unknown>): void {
  const results = report['results'] as Array<{ connections: number; variants: Pooled[]; ratios: Ratio[] }>;
  console.log('\n| connections | table | hidden columns | changes | server CPU µs/change | median phase µs/change | p50 ms | p90 ms | p99 ms | max ms |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    for (const v of r.variants) {
      console.log(
        `| ${r.connections} | ${v.variant + 1} | ${v.hidden} | ${v.changes} | ${v.serverCpuUsPerChange.toFixed(1)} | ${v.medianCpuUsPerChange.toFixed(1)} | ` +
          `${v.p50Ms.toFixed(2)} | ${v.p90Ms.toFixed(2)} | ${v.p99Ms.toFixed(2)} | ${v.maxMs.toFixed(1)} |`,
      );
    }
  }
  for (const r of results) for (const x of r.ratios) console.log(`${r.connections} connections, ${ratioLine(x)}`);
}
