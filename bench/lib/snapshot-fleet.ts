import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { BENCH_SECRET } from './bench-server.js';

/** What a bench/snapshot-worker.ts process is given: its users, each one `/live` connection. */
export interface SnapshotJob {
  readonly urls: string[];
  readonly secret: string;
  /** The table topic subscribed with `snapshot: true`. */
  readonly topic: string;
  /** User numbers; user u authenticates as `sub: "<u>"` and owns the rows whose `owner_id` is u. */
  readonly users: number[];
  /**
   * Live subscribers instead: each connection subscribes to `topic` as it
   * opens (no snapshot) and the worker reports every event's `written_at`
   * (epoch ms) and its commit-to-receive latency, every 250 ms.
   */
  readonly live?: boolean;
}

/** From the parent to a worker. */
export type SnapshotCommand =
  /** The named users (all of the worker's if omitted) subscribe with `snapshot: true`, all at once. */
  | { readonly type: 'snapshot'; readonly users?: number[] }
  /** Every subscribed connection unsubscribes (so that the next `snapshot` is a fresh one). */
  | { readonly type: 'unsubscribe' }
  | { readonly type: 'stop' };

/** One connection's snapshot, times in epoch ms (sub-ms precision; one machine, one clock). */
export interface SnapshotResult {
  readonly user: number;
  /** When the subscribe was sent, when its answer came, when the last page (`done: true`) came; null if it never did. */
  readonly sentAt: number;
  readonly answeredAt: number | null;
  readonly doneAt: number | null;
  readonly pages: number;
  readonly rows: number;
  /** Distinct row ids over its pages (fewer than `rows`: a row came twice). */
  readonly distinct: number;
  /** Rows whose `owner_id` is not the user's (the policy let through a row it should not). */
  readonly foreign: number;
  /** Payload bytes of the pages. */
  readonly bytes: number;
  /** A refused subscribe, a `subscription` frame (revoked), a page after the last, or a closed connection. */
  readonly error: string | null;
}

/** From a worker to the parent. */
export type SnapshotReport =
  | { readonly type: 'ready'; readonly connections: number }
  | { readonly type: 'done'; readonly results: SnapshotResult[]; readonly cpu: NodeJS.CpuUsage }
  | { readonly type: 'unsubscribed' }
  /** Live subscribers: `[written_at, latency ms]` pairs, flattened, since the last report; counters since the start. */
  | { readonly type: 'samples'; readonly samples: number[]; readonly received: number; readonly closed: number; readonly cpu: NodeJS.CpuUsage }
  | { readonly type: 'error'; readonly message: string };

export interface SnapshotFleetOptions {
  /** Servers' /live URLs; user u connects to `urls[u % urls.length]`. */
  readonly urls: string[];
  readonly topic: string;
  readonly users: number[];
  /** Live subscribers (see {@link SnapshotJob.live}) instead of snapshot clients. */
  readonly live?: boolean;
  /** Load-generator processes (default: one per 5,000 users, at least 1). */
  readonly workers?: number;
}

/** One event a live subscriber received: when its row was written (epoch ms) and how long it took to arrive (ms). */
export interface LatencySample {
  readonly writtenAt: number;
  readonly ms: number;
}

/**
 * Connections that subscribe with `snapshot: true` when told, spread over
 * load-generator processes (bench/snapshot-worker.ts) as
 * {@link ClientFleet} spreads subscribers: the server's process never makes
 * the load. A round is every named user subscribing at once; it resolves
 * with every connection's account once each has its last page (or failed).
 * With `live`, the connections are plain subscribers whose latency samples
 * are kept with the time their row was written, so that a phase's samples
 * are those of the rows written during it, however late they arrive.
 */
export class SnapshotFleet {
  /** Live subscribers' samples, in arrival order. */
  readonly samples: LatencySample[] = [];
  readonly #cpuMs = new Map<ChildProcess, number>();
  readonly #users = new Map<ChildProcess, Set<number>>();
  readonly #received = new Map<ChildProcess, number>();
  readonly #closed = new Map<ChildProcess, number>();

  private constructor(readonly workers: ChildProcess[]) {}

  static async start(options: SnapshotFleetOptions): Promise<SnapshotFleet> {
    const count = options.workers ?? Math.max(1, Math.ceil(options.users.length / 5000));
    const perWorker = Math.ceil(options.users.length / count);
    const workers: ChildProcess[] = [];
    const users: Array<Set<number>> = [];
    for (let from = 0; from < options.users.length; from += perWorker) {
      const job: SnapshotJob = { urls: options.urls, secret: BENCH_SECRET, topic: options.topic, users: options.users.slice(from, from + perWorker), live: options.live ?? false };
      users.push(new Set(job.users));
      workers.push(fork(path.resolve('bench/snapshot-worker.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    }
    const fleet = new SnapshotFleet(workers);
    workers.forEach((worker, i) => fleet.#users.set(worker, users[i]!));
    try {
      await Promise.all(workers.map((worker) => fleet.#ready(worker)));
    } catch (error) {
      await fleet.stop();
      throw error;
    }
    return fleet;
  }

  #ready(worker: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      worker.once('exit', (code) => reject(new Error(`load generator exited with ${code} before its connections were open`)));
      worker.on('message', (message: SnapshotReport) => {
        if (message.type === 'ready') resolve();
        if (message.type === 'error') reject(new Error(message.message));
        if (message.type === 'done') this.#cpuMs.set(worker, (message.cpu.user + message.cpu.system) / 1000);
        if (message.type === 'samples') {
          for (let i = 0; i < message.samples.length; i += 2) this.samples.push({ writtenAt: message.samples[i]!, ms: message.samples[i + 1]! });
          this.#received.set(worker, message.received);
          this.#closed.set(worker, message.closed);
          this.#cpuMs.set(worker, (message.cpu.user + message.cpu.system) / 1000);
        }
      });
    });
  }

  /** The next message of `type` from `worker` (a worker that exits first fails it). */
  #next<T extends SnapshotReport['type']>(worker: ChildProcess, type: T): Promise<Extract<SnapshotReport, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load generator exited with ${code}`));
      const listen = (message: SnapshotReport) => {
        if (message.type === 'error') {
          worker.off('message', listen);
          worker.off('exit', onExit);
          reject(new Error(message.message));
        }
        if (message.type !== type) return;
        worker.off('message', listen);
        worker.off('exit', onExit);
        resolve(message as Extract<SnapshotReport, { type: T }>);
      };
      worker.on('message', listen);
      worker.once('exit', onExit);
    });
  }

  /** One round: `users` (default all) subscribe with a snapshot at once; resolves with each one's account once all are done. */
  async snapshot(users?: number[]): Promise<SnapshotResult[]> {
    const involved = this.workers.filter((worker) => !users || users.some((user) => this.#users.get(worker)!.has(user)));
    const answers = involved.map((worker) => this.#next(worker, 'done'));
    for (const worker of involved) worker.send({ type: 'snapshot', ...(users ? { users } : {}) } satisfies SnapshotCommand);
    return (await Promise.all(answers)).flatMap((answer) => answer.results);
  }

  /** Every subscribed connection unsubscribes; resolves once all are answered. */
  async unsubscribe(): Promise<void> {
    const answers = this.workers.map((worker) => this.#next(worker, 'unsubscribed'));
    for (const worker of this.workers) worker.send({ type: 'unsubscribe' } satisfies SnapshotCommand);
    await Promise.all(answers);
  }

  /** CPU time the load generators have used, in ms (as of their last round or report). */
  cpuMs(): number {
    return sum(this.#cpuMs);
  }

  /** Live subscribers: events received over all connections (as of the last reports, ≤ 250 ms old). */
  received(): number {
    return sum(this.#received);
  }

  /** Live subscribers: connections the server closed. */
  closed(): number {
    return sum(this.#closed);
  }

  /** Live subscribers: waits for the next report of every worker (so samples and counts are current). */
  async settle(): Promise<void> {
    await Promise.all(this.workers.map((worker) => this.#next(worker, 'samples')));
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker) => {
        if (worker.exitCode !== null || worker.signalCode !== null) return;
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.send({ type: 'stop' } satisfies SnapshotCommand);
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
