import type { ChatWitnessReport } from './chat-witness.js';
import type { Flatness } from './flatness.js';
import type { FleetCounts } from './load-fleet.js';
import type { NodeLogSummary } from './node-log-digest.js';
import type { SoakOptions } from './options.js';
import type { Sample } from './sampler.js';
import type { TableWitnessReport } from './table-witness.js';

/** One node over the run. */
export interface NodeResult {
  readonly node: number;
  readonly pid: number;
  readonly port: number;
  /** RSS at the first and last steady sample, the smallest and largest steady sample, and the peak (VmHWM) over the process's life. */
  readonly rss: { readonly startMiB: number | null; readonly endMiB: number | null; readonly minMiB: number | null; readonly maxMiB: number | null; readonly peakMiB: number | null };
  readonly flatness: Flatness | null;
  /** V8's heap in use over the steady phase, fitted the same way (for diagnosis: RSS that grows while this stays level is memory the allocator keeps, not live objects). */
  readonly heap: { readonly startMiB: number | null; readonly endMiB: number | null; readonly fit: Flatness | null };
  /** Mean CPU over the steady phase, % of one core. */
  readonly cpuPercent: number | null;
  /** Connections the node counted over the steady phase, and after the drain. */
  readonly connections: { readonly min: number | null; readonly mean: number | null; readonly max: number | null; readonly final: number | null };
  /** Exit code after SIGTERM at the end (0: a clean shutdown); null when a signal ended it. */
  readonly exitCode: number | null;
  readonly log: NodeLogSummary;
}

/** Everything a run measured and found: soak/results/<timestamp>.json. */
export interface SoakResults {
  readonly at: string;
  readonly command: string;
  readonly options: SoakOptions;
  readonly machine: { readonly cpus: number; readonly model: string; readonly memoryGiB: number; readonly node: string };
  readonly fileLimits: { readonly soft: number; readonly hard: number; readonly socketsPerNode: number; readonly socketsPerWorker: number };
  readonly seconds: { readonly start: number; readonly ramp: number; readonly steady: number; readonly drain: number; readonly total: number };
  readonly samples: Sample[];
  readonly nodes: NodeResult[];
  readonly connections: {
    readonly fleet: number;
    readonly witnesses: number;
    /** Connections the nodes counted together over the steady phase (churned ones are briefly away). */
    readonly heldMin: number | null;
    readonly heldMean: number | null;
    /** After the drain (every connection back): the nodes' count, and what it must be. */
    readonly heldFinal: number | null;
    readonly expectedFinal: number;
    /** Failed connects + failed subscribes + closes the clients did not ask for. */
    readonly failed: number;
    readonly tolerance: number;
  };
  /** Mean CPU over the steady phase, % of one core: the nodes together, the load workers, this harness, Postgres, Redis, the machine, and other work on it. */
  readonly cpu: {
    readonly nodes: number | null;
    readonly fleet: number | null;
    readonly harness: number | null;
    readonly postgres: number | null;
    readonly redis: number | null;
    readonly machine: number | null;
    readonly other: number | null;
  };
  readonly fleet: FleetCounts;
  readonly writer: { readonly changes: number; readonly transactions: number; readonly changesPerSecond: number };
  readonly latency: { readonly p50Ms: number; readonly p99Ms: number; readonly maxMs: number; readonly events: number } | null;
  readonly witnesses: { readonly table: TableWitnessReport[]; readonly chat: ChatWitnessReport[] };
  /** Table changes and room messages the witnesses should have received and did not (resyncs included). */
  readonly eventsLost: number;
  readonly problems: string[];
  readonly ok: boolean;
}

const n = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined || Number.isNaN(value) ? '—' : value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pad = (text: string, width: number) => text.padStart(width);

/** The series, one row per sample (at most `rows` rows: evenly thinned), as a fixed-width table. */
export function seriesTable(samples: readonly Sample[], rows = 40): string {
  const step = Math.max(1, Math.ceil(samples.length / rows));
  const shown = samples.filter((_, i) => i % step === 0 || i === samples.length - 1);
  const nodes = samples[0]?.nodes.length ?? 0;
  const header = [
    pad('min', 6),
    pad('phase', 7),
    ...Array.from({ length: nodes }, (_, i) => pad(`RSS${i + 1}`, 7)),
    ...Array.from({ length: nodes }, (_, i) => pad(`heap${i + 1}`, 6)),
    ...Array.from({ length: nodes }, (_, i) => pad(`conn${i + 1}`, 7)),
    ...Array.from({ length: nodes }, (_, i) => pad(`CPU${i + 1}%`, 6)),
    pad('fleet%', 7),
    pad('pg%', 5),
    pad('mach%', 6),
    pad('other%', 7),
    pad('chg/s', 6),
    pad('p99ms', 7),
    pad('redisMiB', 9),
  ].join(' ');
  const lines = shown.map((s) =>
    [
      pad((s.seconds / 60).toFixed(1), 6),
      pad(s.phase, 7),
      ...s.nodes.map((node) => pad(n(node.rssMiB), 7)),
      ...s.nodes.map((node) => pad(n(node.heapUsedMiB), 6)),
      ...s.nodes.map((node) => pad(n(node.connections), 7)),
      ...s.nodes.map((node) => pad(n(node.cpuPercent), 6)),
      pad(n(s.fleet.cpuPercent), 7),
      pad(n(s.postgresCpuPercent), 5),
      pad(n(s.machineCpuPercent), 6),
      pad(n(s.otherCpuPercent), 7),
      pad(n(s.changesPerSecond), 6),
      pad(s.latency ? n(s.latency.p99Ms, 1) : '—', 7),
      pad(n(s.redis.usedMiB, 1), 9),
    ].join(' '),
  );
  return [header, ...lines].join('\n');
}

/** Redis over the steady phase: memory used and the cluster stream's length, first and last. */
function steadyRedis(samples: readonly Sample[]) {
  const steady = samples.filter((s) => s.phase === 'steady' && s.redis.usedMiB !== null);
  if (steady.length === 0) return null;
  const [first, last] = [steady[0]!.redis, steady.at(-1)!.redis];
  return { startMiB: first.usedMiB, endMiB: last.usedMiB, startEntries: first.streamEntries, endEntries: last.streamEntries };
}

/** The readable summary printed at the end of a run. */
export function renderSummary(r: SoakResults): string {
  const o = r.options;
  const out: string[] = [];
  out.push(
    `\nsoak (${o.size}): ${n(o.connections)} connections over ${o.nodes} nodes, ${n(o.rate)} changes/s, chat ${o.chatPerSecond}/s per topic, ` +
      `churn ${o.churnPercentPerMinute}%/min, ${o.minutes} min steady — ${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}` +
      (Object.keys(o.env).length > 0 ? `\nserver configuration: ${Object.entries(o.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''),
  );
  out.push(
    `open files per process: soft ${n(r.fileLimits.soft)}, hard ${n(r.fileLimits.hard)}; up to ${n(r.fileLimits.socketsPerNode)} sockets per node, ` +
      `${n(r.fileLimits.socketsPerWorker)} per load worker (${r.fleet.workers} workers)`,
  );
  out.push(`time: start ${r.seconds.start.toFixed(0)} s, ramp ${r.seconds.ramp.toFixed(1)} s, steady ${r.seconds.steady.toFixed(0)} s, drain ${r.seconds.drain.toFixed(1)} s\n`);
  out.push(
    `MiB: RSS and V8 heap used per node; CPU in % of one core (this machine: ${r.machine.cpus} cores = ${r.machine.cpus * 100}%); ` +
      `other% is what the machine spent on work that is not the soak's.`,
  );
  out.push(seriesTable(r.samples));
  const cpu = r.cpu;
  out.push(
    `\nCPU over the steady phase (% of one core): nodes ${n(cpu.nodes)}, load workers ${n(cpu.fleet)}, harness ${n(cpu.harness)}, Postgres ${n(cpu.postgres)}, ` +
      `Redis ${n(cpu.redis)}; machine ${n(cpu.machine)} of ${r.machine.cpus * 100}, of which other work ${n(cpu.other)}` +
      ((cpu.other ?? 0) > 20 ? ' — the machine was shared with other work: CPU and latency numbers are contended' : ''),
  );
  out.push('\nper node (steady phase):');
  for (const node of r.nodes) {
    const f = node.flatness;
    const heapFlat = node.heap.fit !== null && node.heap.fit.fittedGrowthMiB <= node.heap.fit.toleranceMiB;
    const verdict = !f
      ? 'too few samples'
      : f.flat === null
        ? `not judged (window ${(f.toMinute - f.fromMinute).toFixed(1)} min < 20 min)`
        : f.flat
          ? 'FLAT'
          : `GROWING${heapFlat ? ' (V8 heap used did not grow: memory reserved by V8 or the allocator, not live objects)' : ''}`;
    out.push(
      `  node ${node.node} (pid ${node.pid}): RSS ${n(node.rss.startMiB)} → ${n(node.rss.endMiB)} MiB (min ${n(node.rss.minMiB)}, max ${n(node.rss.maxMiB)}, peak ${n(node.rss.peakMiB)}); ` +
        `CPU ${n(node.cpuPercent)}% of a core; connections ${n(node.connections.min)}–${n(node.connections.max)} (final ${n(node.connections.final)}); exit ${node.exitCode ?? 'signal'}`,
    );
    if (f) {
      out.push(
        `    RSS min ${f.fromMinute.toFixed(1)}–${f.toMinute.toFixed(1)}: slope ${f.slopeMiBPerMinute.toFixed(2)} MiB/min, fitted growth ${f.fittedGrowthMiB.toFixed(1)} MiB ` +
          `(tolerance ${f.toleranceMiB.toFixed(1)}: twice the noise ${f.noiseMiB.toFixed(1)}, at least 10), spread ${f.spreadMiB.toFixed(1)} MiB over ${f.samples} samples: ${verdict}`,
      );
    }
    const heap = node.heap.fit;
    if (heap) {
      out.push(
        `    V8 heap used ${n(node.heap.startMiB)} → ${n(node.heap.endMiB)} MiB: slope ${heap.slopeMiBPerMinute.toFixed(2)} MiB/min, fitted growth ${heap.fittedGrowthMiB.toFixed(1)} MiB, ` +
          `noise ${heap.noiseMiB.toFixed(1)} MiB`,
      );
    }
    const counts = Object.entries(node.log.counts)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([msg, count]) => `${msg} ×${n(count)}`)
      .join(', ');
    out.push(`    log: ${node.log.warnings} warnings, ${node.log.errors} errors; ${counts}`);
    for (const line of node.log.kept.slice(0, 3)) out.push(`      ${JSON.stringify(line).slice(0, 300)}`);
  }
  const c = r.connections;
  out.push(
    `\nconnections: ${n(c.fleet)} fleet + ${c.witnesses} witnesses; held during steady min ${n(c.heldMin)}, mean ${n(c.heldMean)}; ` +
      `after the drain ${n(c.heldFinal)} (expected ${n(c.expectedFinal)}); failed ${c.failed} (tolerance ${c.tolerance})`,
  );
  const f = r.fleet;
  out.push(
    `fleet: ${n(f.sessions)} sessions, ${n(f.drops)} drops; table resubscribes resumed ${n(f.tableResumed)} / not resumed ${n(f.tableNotResumed)} ` +
      `(since older than the replay window); room resumed ${n(f.roomResumed)} / not ${n(f.roomNotResumed)}; ` +
      `failed connects ${f.failedConnects}, failed subscribes ${f.failedSubscribes}, server closes ${JSON.stringify(f.serverCloses)}, ` +
      `other frames (revocations, errors) ${f.otherFrames}; ` +
      `events received: table ${n(f.received.table)}, room ${n(f.received.room)}, pings ${n(f.received.pings)}; load workers ${n(f.rssMiB)} MiB`,
  );
  const redisSeries = steadyRedis(r.samples);
  if (redisSeries) {
    out.push(
      `redis: ${n(redisSeries.startMiB, 1)} → ${n(redisSeries.endMiB, 1)} MiB used, cluster stream ${n(redisSeries.startEntries)} → ${n(redisSeries.endEntries)} entries ` +
        `(trimmed at about CLUSTER_STREAM_LENGTH entries: ${r.options.env['CLUSTER_STREAM_LENGTH'] ?? '100000, the default'})`,
    );
  }
  out.push(
    `chat: ${n(f.chat.sent)} sent, ${n(f.chat.acked)} acknowledged, failed ${JSON.stringify(f.chat.failed)}, ${f.chat.unanswered} unanswered (connection dropped first)`,
  );
  out.push(
    `writer: ${n(r.writer.changes)} changes in ${n(r.writer.transactions)} transactions, ${n(r.writer.changesPerSecond, 1)}/s` +
      (r.latency ? `; write-to-receive at the admin witnesses p50 ${r.latency.p50Ms.toFixed(2)} ms, p99 ${r.latency.p99Ms.toFixed(2)} ms, max ${r.latency.maxMs.toFixed(1)} ms` : ''),
  );
  out.push('\nwitnesses:');
  for (const w of r.witnesses.table) {
    out.push(
      `  ${w.name}: ${n(w.received)} received of ${n(w.expected)} expected; lost ${w.lost}, unexpected ${w.unexpected}, backwards ${w.backwards}, resyncs ${w.resyncs}, ` +
        `rows differing ${w.rowsDiffering}; ${w.sessions} sessions, slowest reconnect ${w.slowestReconnectMs} ms`,
    );
  }
  for (const w of r.witnesses.chat) {
    out.push(
      `  ${w.name}: room ${n(w.received)} received, ${n(w.expected)} expected; lost ${w.lost}, duplicates ${w.duplicates}, backwards ${w.backwards}, ` +
        `seq mismatches ${w.seqMismatches}, resyncs ${w.resyncs}, unverifiable ${w.unverifiable}; pings ${n(w.pings.received)} received ` +
        `(${w.pings.resyncs} resumed: false, as expected for an ephemeral topic); ${w.sessions} sessions, slowest reconnect ${w.slowestReconnectMs} ms`,
    );
  }
  out.push(`\nevents lost by witnesses: ${r.eventsLost}`);
  out.push(r.problems.length === 0 ? 'problems: none' : `problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`);
  out.push(r.ok ? 'result: PASS' : 'result: FAIL');
  return out.join('\n');
}
