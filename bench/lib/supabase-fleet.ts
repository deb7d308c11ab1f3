import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { BENCH_SECRET } from './bench-server.js';

/** What a bench/supabase-client-worker.ts process reports (bench/client-worker.ts's messages, plus the unexpected frames). */
interface WorkerMessage {
  readonly type: 'ready' | 'report' | 'error';
  readonly message?: string;
  readonly samples?: number[];
  readonly received?: number;
  readonly closed?: number;
  readonly unexpected?: number;
  readonly unexpectedFrames?: string[];
  readonly cpu?: NodeJS.CpuUsage;
}

export interface SupabaseFleetOptions {
  /** Servers' /live URLs; connection i connects to `urls[i % urls.length]` (its `/live` becomes `/realtime/v1/websocket`). */
  readonly urls: string[];
  /** The table every connection binds (`{event: "*", schema: "public", table}`). */
  readonly table: string;
  /** The channel every connection joins, `realtime:<channel>` (`distinct`: `realtime:<channel>-<i>`). */
  readonly channel: string;
  readonly distinct?: boolean;
  readonly connections: number;
  /** Load-generator processes (default: one per 5,000 connections, at least 2, as ClientFleet). */
  readonly workers?: number;
}

/**
 * {@link ClientFleet} (bench/lib/client-fleet.ts) for the Supabase door: the
 * same reports (so `measureWindow` reads it alike), from connections of
 * bench/supabase-client-worker.ts, plus the frames nothing expected.
 */
export class SupabaseFleet {
  readonly histogram: RecordableHistogram = createHistogram();
  readonly #received = new Map<ChildProcess, number>();
  readonly #closed = new Map<ChildProcess, number>();
  readonly #cpuMs = new Map<ChildProcess, number>();
  readonly #unexpected = new Map<ChildProcess, number>();
  readonly #unexpectedFrames: string[] = [];

  private constructor(readonly workers: ChildProcess[]) {}

  static async start(options: SupabaseFleetOptions): Promise<SupabaseFleet> {
    const count = options.workers ?? Math.max(2, Math.ceil(options.connections / 5000));
    const perWorker = Math.ceil(options.connections / count);
    const workers: ChildProcess[] = [];
    for (let from = 0; from < options.connections; from += perWorker) {
      const job = { urls: options.urls, secret: BENCH_SECRET, table: options.table, channel: options.channel, distinct: options.distinct ?? false, from, to: Math.min(options.connections, from + perWorker) };
      workers.push(
        fork(path.resolve('bench/supabase-client-worker.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
      );
    }
    const fleet = new SupabaseFleet(workers);
    try {
      await Promise.all(workers.map((worker) => fleet.#watch(worker)));
    } catch (error) {
      await fleet.stop();
      throw error;
    }
    return fleet;
  }

  #watch(worker: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      worker.once('exit', (code) => reject(new Error(`load generator exited with ${code} before its connections were ready`)));
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'ready') resolve();
        if (message.type === 'error') reject(new Error(message.message));
        if (message.type === 'report') {
          for (const sample of message.samples!) this.histogram.record(sample);
          this.#received.set(worker, message.received!);
          this.#closed.set(worker, message.closed!);
          this.#unexpected.set(worker, message.unexpected!);
          for (const frame of message.unexpectedFrames!) if (this.#unexpectedFrames.length < 5 && !this.#unexpectedFrames.includes(frame)) this.#unexpectedFrames.push(frame);
          this.#cpuMs.set(worker, (message.cpu!.user + message.cpu!.system) / 1000);
        }
      });
    });
  }

  /** Events (of the joined binding) received so far, over all connections (as of the last reports, ≤ 250 ms old). */
  received(): number {
    return sum(this.#received);
  }

  /** Connections the server closed. */
  closed(): number {
    return sum(this.#closed);
  }

  /** Frames that fit nothing expected (a `system` error, an event of another binding, `phx_error`, …), and the first few of them. */
  unexpected(): { count: number; frames: string[] } {
    return { count: sum(this.#unexpected), frames: [...this.#unexpectedFrames] };
  }

  /** CPU time the load generators have used, in ms. */
  cpuMs(): number {
    return sum(this.#cpuMs);
  }

  /** Waits for the next report of every worker (so counts are current). */
  async settle(): Promise<void> {
    await Promise.all(this.workers.map((worker) => new Promise<void>((resolve) => worker.once('message', () => resolve()))));
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
