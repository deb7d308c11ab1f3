import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { BENCH_SECRET } from './bench-server.js';
import type { HostileFilterPlan } from './hostile-filters.js';

/** What a bench/client-worker.ts process reports. */
interface WorkerMessage {
  readonly type: 'ready' | 'report' | 'error';
  readonly message?: string;
  readonly samples?: number[];
  readonly received?: number;
  readonly closed?: number;
  readonly cpu?: NodeJS.CpuUsage;
  /** With `ready`: connections subscribed, and the refusal that stopped the opening (`untilRefused`). */
  readonly connections?: number;
  readonly refused?: string | null;
}

export interface FleetOptions {
  /** Servers' /live URLs; user i connects to `urls[i % urls.length]`. */
  readonly urls: string[];
  readonly topic: string;
  /** Users `userOffset … userOffset + connections - 1` connect, each with `sub: "<i>"`. */
  readonly connections: number;
  readonly userOffset?: number;
  /** Load-generator processes (default: one per 5,000 connections, at least 2: one per core here). */
  readonly workers?: number;
  /** Every connection authenticates as this one user (default: connection i as user i). */
  readonly user?: string;
  /** Connection i subscribes with `hostileFilter(filters, i)` (bench/lib/hostile-filters.ts) instead of no filter. */
  readonly filters?: HostileFilterPlan;
  /**
   * A subscribe refused with `LIMIT_EXCEEDED` ends a worker's opening instead
   * of failing the fleet: {@link ClientFleet.held} says how many were held.
   */
  readonly untilRefused?: boolean;
  /** Which door the connections use (default `/live`). */
  readonly door?: 'live' | 'phoenix';
}

/**
 * Subscribed client connections spread over several load-generator processes
 * (bench/client-worker.ts), so the server's process is not the one making
 * load. Latency samples (commit-to-receive, µs) go into one histogram:
 * Node's `createHistogram` is an HDR histogram (it wraps the HdrHistogram C
 * library), so percentiles come from every sample, not an average.
 */
export class ClientFleet {
  readonly histogram: RecordableHistogram = createHistogram();
  readonly #received = new Map<ChildProcess, number>();
  readonly #closed = new Map<ChildProcess, number>();
  readonly #cpuMs = new Map<ChildProcess, number>();
  readonly #held = new Map<ChildProcess, number>();
  #refused: string | null = null;

  private constructor(readonly workers: ChildProcess[]) {}

  static async start(options: FleetOptions): Promise<ClientFleet> {
    const count = options.workers ?? Math.max(2, Math.ceil(options.connections / 5000));
    const perWorker = Math.ceil(options.connections / count);
    const workers: ChildProcess[] = [];
    const first = options.userOffset ?? 0;
    const end = first + options.connections;
    for (let from = first; from < end; from += perWorker) {
      const job = {
        urls: options.urls,
        secret: BENCH_SECRET,
        topic: options.topic,
        from,
        to: Math.min(end, from + perWorker),
        user: options.user,
        filters: options.filters,
        untilRefused: options.untilRefused,
        door: options.door,
      };
      workers.push(
        fork(path.resolve('bench/client-worker.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
      );
    }
    const fleet = new ClientFleet(workers);
    try {
      await Promise.all(workers.map((worker) => fleet.#watch(worker)));
    } catch (error) {
      await fleet.stop();
      throw error;
    }
    return fleet;
  }

  /** Resolves once the worker's connections are all subscribed; then records its reports. */
  #watch(worker: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      worker.once('exit', (code) => reject(new Error(`load generator exited with ${code} before its connections were ready`)));
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'ready') {
          this.#held.set(worker, message.connections ?? 0);
          this.#refused ??= message.refused ?? null;
          resolve();
        }
        if (message.type === 'error') reject(new Error(message.message));
        if (message.type === 'report') {
          for (const sample of message.samples!) this.histogram.record(sample);
          this.#received.set(worker, message.received!);
          this.#closed.set(worker, message.closed!);
          this.#cpuMs.set(worker, (message.cpu!.user + message.cpu!.system) / 1000);
        }
      });
    });
  }

  /** Connections that were subscribed when the fleet became ready. */
  held(): number {
    return sum(this.#held);
  }

  /** The first refusal that ended a worker's opening (`untilRefused`), or null if none was refused. */
  refused(): string | null {
    return this.#refused;
  }

  /** Events received so far, over all connections (as of the last reports, ≤ 250 ms old). */
  received(): number {
    return sum(this.#received);
  }

  /** Connections the server closed. */
  closed(): number {
    return sum(this.#closed);
  }

  /** CPU time the load generators have used, in ms. */
  cpuMs(): number {
    return sum(this.#cpuMs);
  }

  /** Waits for the next report of every worker (so counts are current). */
  async settle(): Promise<void> {
    await Promise.all(
      this.workers.map((worker) => new Promise<void>((resolve) => worker.once('message', () => resolve()))),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker) => {
        if (worker.exitCode !== null || worker.signalCode !== null) return;
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.send({ type: 'stop' });
        await exited;
      }),
    );
  }
}

function sum(values: Map<unknown, number>): number {
  let total = 0;
  for (const value of values.values()) total += value;
  return total;
}
