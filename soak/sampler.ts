import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { RecordableHistogram } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { cpuMs, rssMiB } from '../bench/lib/bench-server.js';
import type { ServerProcess } from '../test/helpers/server-process.js';
import { treeCpuMs } from './process-cpu.js';
import { SoakCluster } from './soak-cluster.js';

/** One node at one moment. CPU is % of one core over the interval since the previous sample. */
export interface NodeSample {
  readonly rssMiB: number | null;
  /** V8's heap in use and reserved, and memory held outside it (buffers), from `/metrics`: they tell a live-object leak from RSS the allocator keeps. */
  readonly heapUsedMiB: number | null;
  readonly heapTotalMiB: number | null;
  readonly externalMiB: number | null;
  readonly cpuPercent: number | null;
  /** From `/status` (null when it did not answer). */
  readonly connections: number | null;
  readonly role: string | null;
  /** WAL bytes the leader handed off that this node has not routed yet. */
  readonly lagBytes: number | null;
  readonly deliveries: number | null;
  readonly slowConsumersClosed: number | null;
  readonly replayWindowEvents: number | null;
  /** The slot's retained WAL as the node last read it (leaders only). */
  readonly retainedWalMiB: number | null;
}

/** Everything sampled at one moment. */
export interface Sample {
  /** Seconds since the run began (the first node started), and the phase it was in. */
  readonly seconds: number;
  readonly phase: string;
  readonly nodes: NodeSample[];
  /** The load workers together (CPU: % of one core), and their connections open and subscribed as last reported. */
  readonly fleet: { readonly cpuPercent: number; readonly rssMiB: number; readonly open: number };
  /** This process: the writer, the witnesses and this sampler. */
  readonly harness: { readonly cpuPercent: number; readonly rssMiB: number };
  /** Postgres (the postmaster and its backends; null when it is not on this machine). */
  readonly postgresCpuPercent: number | null;
  /** Redis: its CPU (shared with whatever else uses it), memory, and the cluster stream's entries. */
  readonly redis: { readonly cpuPercent: number | null; readonly usedMiB: number | null; readonly streamEntries: number | null };
  /** The whole machine, in % of one core (2 cores busy = 200%), and what of it none of the above used: other work on a shared machine. */
  readonly machineCpuPercent: number;
  readonly otherCpuPercent: number;
  /** Changes committed so far, and per second over the interval. */
  readonly changes: number;
  readonly changesPerSecond: number;
  /** Write-to-receive latency at the admin witnesses over the interval (null: no live event). */
  readonly latency: { readonly p50Ms: number; readonly p99Ms: number; readonly maxMs: number; readonly events: number } | null;
}

/** Where the sampler reads from. */
export interface SamplerSources {
  readonly nodes: readonly ServerProcess[];
  readonly fleetPids: () => number[];
  readonly fleetOpen: () => number;
  readonly phase: () => string;
  readonly changes: () => number;
  /** Read and reset at every sample. */
  readonly latency: readonly RecordableHistogram[];
  readonly redis: Redis;
  readonly streamKey: string;
  /** Postgres's postmaster and Redis's server, when they run on this machine. */
  readonly postgresPid: number | null;
  readonly redisPid: number | null;
  /** Epoch ms the run began. */
  readonly startedAt: number;
}

/** Busy and total jiffies of the machine (/proc/stat). */
function machineJiffies(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}

/** V8 heap used and total and external memory of a node, in MiB, from its Prometheus metrics (prom-client's defaults, prefixed `rowcast_process_`). */
async function nodeMemoryMetrics(port: number): Promise<{ heapUsedMiB: number | null; heapTotalMiB: number | null; externalMiB: number | null }> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${SoakCluster.adminToken()}` } });
  const text = await response.text();
  const mib = (name: string) => {
    const value = new RegExp(`^rowcast_process_${name} (\\S+)`, 'm').exec(text)?.[1];
    return value === undefined ? null : Number(value) / 2 ** 20;
  };
  return { heapUsedMiB: mib('nodejs_heap_size_used_bytes'), heapTotalMiB: mib('nodejs_heap_size_total_bytes'), externalMiB: mib('nodejs_external_memory_bytes') };
}

/** `fn()`, or null if it throws (a process gone, an endpoint not answering). */
function orNull<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch {
    return null;
  }
}

/**
 * Samples every `intervalMs`: each node's RSS (`VmRSS`) and CPU from /proc,
 * its V8 heap from `/metrics`,
 * its connections, role and lag from `/status` (asked as an admin), the load
 * workers', this process's, Postgres's and Redis's CPU, the machine's CPU
 * and what other work used of it, Redis's memory and the cluster stream's
 * length, the change rate and the witnesses' latency.
 */
export class Sampler {
  readonly samples: Sample[] = [];
  readonly #sources: SamplerSources;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #last = {
    at: 0,
    nodeCpu: [] as Array<number | null>,
    fleetCpu: 0,
    harnessCpu: 0,
    postgresCpu: null as number | null,
    redisCpu: null as number | null,
    machine: { busy: 0, total: 0 },
    changes: 0,
  };

  constructor(sources: SamplerSources) {
    this.#sources = sources;
    this.#mark();
  }

  /** Samples every `intervalMs`, calling `onSample` with each, until {@link stop}. */
  start(intervalMs: number, onSample: (sample: Sample) => void): void {
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = this.sample()
        .then(onSample)
        .finally(() => (this.#running = null));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  #fleetCpu(): number {
    return this.#sources.fleetPids().reduce((sum, pid) => sum + (orNull(() => cpuMs(pid)) ?? 0), 0);
  }

  #harnessCpu(): number {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  }

  #mark(): void {
    this.#last = {
      at: performance.now(),
      nodeCpu: this.#sources.nodes.map((node) => orNull(() => cpuMs(node.child.pid!))),
      fleetCpu: this.#fleetCpu(),
      harnessCpu: this.#harnessCpu(),
      postgresCpu: this.#sources.postgresPid === null ? null : treeCpuMs(this.#sources.postgresPid),
      redisCpu: this.#sources.redisPid === null ? null : orNull(() => cpuMs(this.#sources.redisPid!)),
      machine: machineJiffies(),
      changes: this.#sources.changes(),
    };
  }

  /** Takes one sample now (and keeps it). */
  async sample(): Promise<Sample> {
    const sources = this.#sources;
    const last = this.#last;
    const [statuses, metrics] = await Promise.all([
      Promise.all(sources.nodes.map((node) => SoakCluster.status(node).catch(() => null))),
      Promise.all(sources.nodes.map((node) => nodeMemoryMetrics(node.port).catch(() => null))),
    ]);
    const [usedMemory, streamEntries] = await Promise.all([
      sources.redis.info('memory').then((info) => Number(/used_memory:(\d+)/.exec(info)?.[1]) / 2 ** 20, () => null),
      sources.redis.xlen(sources.streamKey).catch(() => null),
    ]);
    this.#mark();
    const now = this.#last;
    const ms = now.at - last.at;
    const percent = (before: number | null, after: number | null) => (before === null || after === null ? null : ((after - before) / ms) * 100);
    const nodes = sources.nodes.map((node, i): NodeSample => {
      const status = statuses[i];
      const slot = status?.['replication']?.slot as { retainedWalBytes?: number } | null | undefined;
      return {
        rssMiB: orNull(() => rssMiB(node.child.pid!)),
        heapUsedMiB: metrics[i]?.heapUsedMiB ?? null,
        heapTotalMiB: metrics[i]?.heapTotalMiB ?? null,
        externalMiB: metrics[i]?.externalMiB ?? null,
        cpuPercent: percent(last.nodeCpu[i] ?? null, now.nodeCpu[i] ?? null),
        connections: status?.['connections'] ?? null,
        role: status?.['cluster']?.role ?? null,
        lagBytes: status?.['cluster']?.lagBytes ?? null,
        deliveries: status?.['deliveries'] ?? null,
        slowConsumersClosed: status?.['slowConsumersClosed'] ?? null,
        replayWindowEvents: status?.['replayWindowEvents'] ?? null,
        retainedWalMiB: status?.['cluster']?.role === 'leader' && slot?.retainedWalBytes != null ? slot.retainedWalBytes / 2 ** 20 : null,
      };
    });
    let latency: Sample['latency'] = null;
    const events = sources.latency.reduce((sum, h) => sum + h.count, 0);
    if (events > 0) {
      // The witnesses' histograms are alike in shape; the worst witness's percentile is the one reported.
      const worst = (pick: (h: RecordableHistogram) => number) => Math.max(...sources.latency.filter((h) => h.count > 0).map(pick)) / 1000;
      latency = { p50Ms: worst((h) => h.percentile(50)), p99Ms: worst((h) => h.percentile(99)), maxMs: worst((h) => h.max), events };
    }
    for (const histogram of sources.latency) histogram.reset();
    const fleetRss = sources.fleetPids().reduce((sum, pid) => sum + (orNull(() => rssMiB(pid)) ?? 0), 0);
    const fleetCpu = ((now.fleetCpu - last.fleetCpu) / ms) * 100;
    const harnessCpu = ((now.harnessCpu - last.harnessCpu) / ms) * 100;
    const postgresCpu = percent(last.postgresCpu, now.postgresCpu);
    const redisCpu = percent(last.redisCpu, now.redisCpu);
    const machineCpu = ((now.machine.busy - last.machine.busy) / Math.max(1, now.machine.total - last.machine.total)) * 100 * cpus().length;
    const ours = nodes.reduce((sum, node) => sum + (node.cpuPercent ?? 0), 0) + fleetCpu + harnessCpu + (postgresCpu ?? 0) + (redisCpu ?? 0);
    const sample: Sample = {
      seconds: Math.round((Date.now() - sources.startedAt) / 100) / 10,
      phase: sources.phase(),
      nodes,
      fleet: { cpuPercent: fleetCpu, rssMiB: fleetRss, open: sources.fleetOpen() },
      harness: { cpuPercent: harnessCpu, rssMiB: process.memoryUsage.rss() / 2 ** 20 },
      postgresCpuPercent: postgresCpu,
      redis: { cpuPercent: redisCpu, usedMiB: usedMemory, streamEntries },
      machineCpuPercent: machineCpu,
      otherCpuPercent: Math.max(0, machineCpu - ours),
      changes: now.changes,
      changesPerSecond: ((now.changes - last.changes) / ms) * 1000,
      latency,
    };
    this.samples.push(sample);
    return sample;
  }
}
