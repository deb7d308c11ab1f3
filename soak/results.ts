import { cpus, totalmem } from 'node:os';
import type { ChatWitnessReport } from './chat-witness.js';
import type { FileLimits } from './file-limit.js';
import { judgeFlatness } from './flatness.js';
import type { FleetCounts } from './load-fleet.js';
import type { NodeLogSummary } from './node-log-digest.js';
import type { SoakOptions } from './options.js';
import type { NodeResult, SoakResults } from './report.js';
import type { NodeSample, Sample } from './sampler.js';
import type { TableWitnessReport } from './table-witness.js';

/** Failed connections allowed: this share of the fleet, and at least {@link MIN_FAILED_TOLERANCE}. */
const FAILED_SHARE = 0.001;
const MIN_FAILED_TOLERANCE = 5;

/** What a finished run recorded, before it is judged. */
export interface RunRecord {
  readonly options: SoakOptions;
  readonly limits: FileLimits;
  readonly socketsPerNode: number;
  readonly socketsPerWorker: number;
  readonly startedAt: number;
  /** Seconds since the start at which each phase ended. */
  readonly marks: { readonly start: number; readonly ramp: number; readonly steady: number; readonly drain: number };
  readonly totalSeconds: number;
  readonly samples: Sample[];
  /** The sample taken after the drain. */
  readonly finalSample: Sample;
  readonly nodes: ReadonlyArray<{
    readonly pid: number;
    readonly port: number;
    readonly peakMiB: number | null;
    readonly exitCode: number | null;
    /** It exited before the end (its crash is already among the problems). */
    readonly exitedEarly: boolean;
    readonly log: NodeLogSummary;
  }>;
  readonly witnesses: number;
  /** What the nodes counted together after the drain (null: one did not answer). */
  readonly heldFinal: number | null;
  readonly fleet: FleetCounts;
  readonly writer: { readonly changes: number; readonly transactions: number };
  readonly latency: SoakResults['latency'];
  readonly tableReports: TableWitnessReport[];
  readonly chatReports: ChatWitnessReport[];
  /** Problems found while running (crashes, stalls, the writer's model). */
  readonly problems: readonly string[];
}

const meanOf = (values: readonly number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);
const present = <T>(values: ReadonlyArray<T | null>): T[] => values.filter((v): v is T => v !== null);

/**
 * Judges a run: per node its RSS over the steady phase (and whether it stayed
 * flat), CPU and connections; the fleet's failed connections against the
 * tolerance; the nodes' final count against the connections open; every
 * witness's account. The run passes when nothing is wrong and no witness
 * lost an event.
 */
export function assembleResults(record: RunRecord): SoakResults {
  const { options, marks } = record;
  const problems = [...record.problems];
  const steady = record.samples.filter((s) => s.phase === 'steady');
  const steadySeconds = marks.steady - marks.ramp;

  const nodes: NodeResult[] = record.nodes.map((node, i) => {
    const rss = present(steady.map((s) => s.nodes[i]!.rssMiB));
    const held = present(steady.map((s) => s.nodes[i]!.connections));
    const series = (pick: (sample: NodeSample) => number | null) =>
      steady.map((s) => [(s.seconds - marks.ramp) / 60, pick(s.nodes[i]!)] as const).filter((p): p is readonly [number, number] => p[1] !== null);
    const heap = present(steady.map((s) => s.nodes[i]!.heapUsedMiB));
    const result: NodeResult = {
      node: i + 1,
      pid: node.pid,
      port: node.port,
      rss: { startMiB: rss[0] ?? null, endMiB: rss.at(-1) ?? null, minMiB: rss.length ? Math.min(...rss) : null, maxMiB: rss.length ? Math.max(...rss) : null, peakMiB: node.peakMiB },
      flatness: judgeFlatness(series((node) => node.rssMiB), steadySeconds / 60),
      heap: { startMiB: heap[0] ?? null, endMiB: heap.at(-1) ?? null, fit: judgeFlatness(series((node) => node.heapUsedMiB), steadySeconds / 60) },
      cpuPercent: meanOf(present(steady.map((s) => s.nodes[i]!.cpuPercent))),
      connections: { min: held.length ? Math.min(...held) : null, mean: meanOf(held), max: held.length ? Math.max(...held) : null, final: record.finalSample.nodes[i]!.connections },
      exitCode: node.exitCode,
      log: node.log,
    };
    if (node.exitCode !== 0 && !node.exitedEarly) problems.push(`node ${i + 1} exited with ${node.exitCode ?? 'a signal'} on SIGTERM at the end (a clean shutdown exits 0)`);
    if (node.log.errors > 0) problems.push(`node ${i + 1} logged ${node.log.errors} errors, first: ${JSON.stringify(node.log.kept.find((l) => l['level'] >= 50)).slice(0, 300)}`);
    const flatness = result.flatness;
    if (flatness?.flat === false) {
      problems.push(`node ${i + 1}: RSS grew ${flatness.fittedGrowthMiB.toFixed(1)} MiB over the last 20 minutes (tolerance ${flatness.toleranceMiB.toFixed(1)})`);
    }
    return result;
  });

  const fleet = record.fleet;
  const failed = fleet.failedConnects + fleet.failedSubscribes + Object.values(fleet.serverCloses).reduce((a, b) => a + b, 0);
  const tolerance = Math.max(MIN_FAILED_TOLERANCE, Math.round(options.connections * FAILED_SHARE));
  if (failed > tolerance) problems.push(`${failed} failed connections (failed connects, failed subscribes, closes the clients did not ask for): over the tolerance of ${tolerance}`);
  const expectedFinal = options.connections + record.witnesses;
  if (record.heldFinal !== expectedFinal) {
    problems.push(record.heldFinal === null ? 'after the drain a node did not answer /status' : `after the drain the nodes count ${record.heldFinal} connections; ${expectedFinal} are open`);
  }
  if (fleet.chat.sent > 0 && fleet.chat.acked === 0) problems.push('no chat message was acknowledged');
  for (const report of [...record.tableReports, ...record.chatReports]) problems.push(...report.problems);
  // A resync (`resumed: false`) is a loss the server owned up to; lost counts those it did not.
  const eventsLost = [...record.tableReports, ...record.chatReports].reduce((sum, w) => sum + w.lost + w.resyncs, 0);

  const heldSums = steady.map((s) => s.nodes.reduce((sum, node) => sum + (node.connections ?? NaN), 0)).filter((v) => !Number.isNaN(v));
  const cpu = cpus();
  return {
    at: new Date(record.startedAt).toISOString(),
    command: `soak/main.ts ${process.argv.slice(2).join(' ')}`.trim(),
    options,
    machine: { cpus: cpu.length, model: cpu[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    fileLimits: { soft: record.limits.soft, hard: record.limits.hard, socketsPerNode: record.socketsPerNode, socketsPerWorker: record.socketsPerWorker },
    seconds: { start: marks.start, ramp: marks.ramp - marks.start, steady: steadySeconds, drain: marks.drain - marks.steady, total: record.totalSeconds },
    samples: record.samples,
    nodes,
    connections: {
      fleet: options.connections,
      witnesses: record.witnesses,
      heldMin: heldSums.length ? Math.min(...heldSums) : null,
      heldMean: meanOf(heldSums),
      heldFinal: record.heldFinal,
      expectedFinal,
      failed,
      tolerance,
    },
    cpu: {
      nodes: meanOf(steady.map((s) => s.nodes.reduce((sum, node) => sum + (node.cpuPercent ?? 0), 0))),
      fleet: meanOf(steady.map((s) => s.fleet.cpuPercent)),
      harness: meanOf(steady.map((s) => s.harness.cpuPercent)),
      postgres: meanOf(present(steady.map((s) => s.postgresCpuPercent))),
      redis: meanOf(present(steady.map((s) => s.redis.cpuPercent))),
      machine: meanOf(steady.map((s) => s.machineCpuPercent)),
      other: meanOf(steady.map((s) => s.otherCpuPercent)),
    },
    fleet,
    writer: { ...record.writer, changesPerSecond: record.writer.changes / Math.max(1, steadySeconds) },
    latency: record.latency,
    witnesses: { table: record.tableReports, chat: record.chatReports },
    eventsLost,
    problems,
    ok: problems.length === 0 && eventsLost === 0,
  };
}
