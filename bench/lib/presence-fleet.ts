import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { BENCH_SECRET } from './bench-server.js';

/** What a bench/presence-worker.ts process is given: its members and what they do. */
export interface PresenceJob {
  readonly urls: string[];
  readonly secret: string;
  readonly topic: string;
  /** Members `from` … `to - 1`; member i authenticates as `sub: "<i>"`, which is its presence key. */
  readonly from: number;
  readonly to: number;
  /** Keys a complete view holds (every member of the room). */
  readonly expect: number;
  /** `all`: every member applies every presence frame to its view; `witness`: only the worker's first member does, the others count frames and bytes. */
  readonly apply: 'all' | 'witness';
  /** `room`: each member subscribes and tracks as it opens; `storm`: members open with a session only, and all subscribe, then track, when told. */
  readonly mode: 'room' | 'storm';
}

/** From the parent to a worker. */
export type PresenceCommand =
  /** Every member subscribes, then tracks: at once (`spreadMs` 0) or each at a random moment of the next `spreadMs`. */
  | { readonly type: 'storm'; readonly at: number; readonly spreadMs: number }
  | { readonly type: 'pace'; readonly method: 'track' | 'new-message'; readonly rate: number; readonly pad: number }
  | { readonly type: 'pace-stop' }
  | { readonly type: 'summary' }
  | { readonly type: 'stop' };

/** One member's account of the run. */
export interface MemberSummary {
  readonly frames: number;
  readonly bytes: number;
  /** Keys in its view. */
  readonly keys: number;
  /** ms from the `storm` command to its view holding every key; null if it never did (or it does not apply frames). */
  readonly completeMs: number | null;
  /** What it would have received from a server sending a frame per key changed (and the same state frames); null if it does not apply frames. */
  readonly unbatched: { readonly frames: number; readonly bytes: number } | null;
}

/** Counters of one worker, cumulative since it started. */
export interface PresenceCounts {
  /** Presence frames (state and diff) over its members, and their payload bytes. */
  readonly presenceFrames: number;
  readonly presenceBytes: number;
  /** `new-message` event frames over its members, and their payload bytes. */
  readonly events: number;
  readonly eventBytes: number;
  /** Answers to its paced requests. */
  readonly tracked: number;
  readonly messaged: number;
  readonly failed: number;
  readonly firstFailure: string | null;
  /** Members whose view holds every key (of those that apply frames), and the fewest keys a witness holds. */
  readonly complete: number;
  readonly witnessKeys: number;
  /** Diffs that did not continue a member's view (a leave of a meta it does not hold, a join of a key it holds), and the first. */
  readonly inconsistent: number;
  readonly firstInconsistency: string | null;
  /** Connections the server closed. */
  readonly closed: number;
}

/** From a worker to the parent. */
export type PresenceReport =
  | { readonly type: 'ready'; readonly members: number }
  | ({ readonly type: 'report'; readonly samples: number[]; readonly cpu: NodeJS.CpuUsage } & PresenceCounts)
  | { readonly type: 'summary'; readonly members: MemberSummary[] }
  | { readonly type: 'error'; readonly message: string };

export interface PresenceFleetOptions {
  /** Servers' /live URLs; member i connects to `urls[i % urls.length]`. */
  readonly urls: string[];
  readonly topic: string;
  readonly members: number;
  readonly apply: PresenceJob['apply'];
  readonly mode: PresenceJob['mode'];
  /** Load-generator processes (default: one per 5,000 members, at least 2: one per core here). */
  readonly workers?: number;
  /**
   * Members `0 … updaters - 1` get a process of their own and are the ones
   * that {@link PresenceFleet.pace} makes send (default 0: every worker
   * sends its share from its members). A process that reads a diff on
   * thousands of sockets stalls for tens of ms, and requests paced from it
   * would then leave in bursts that follow the server's flushes.
   */
  readonly updaters?: number;
}

const ZERO: PresenceCounts = {
  presenceFrames: 0,
  presenceBytes: 0,
  events: 0,
  eventBytes: 0,
  tracked: 0,
  messaged: 0,
  failed: 0,
  firstFailure: null,
  complete: 0,
  witnessKeys: 0,
  inconsistent: 0,
  firstInconsistency: null,
  closed: 0,
};

/**
 * The members of one presence room, spread over load-generator processes
 * (bench/presence-worker.ts) as {@link ClientFleet} spreads subscribers.
 * Latency samples (µs from a meta's or message's `t` to a witness applying
 * it) go into one HDR histogram.
 */
export class PresenceFleet {
  readonly histogram: RecordableHistogram = createHistogram();
  readonly #counts = new Map<ChildProcess, PresenceCounts>();
  readonly #cpuMs = new Map<ChildProcess, number>();

  /** The workers whose members {@link pace} makes send. */
  readonly #senders: ChildProcess[];

  private constructor(
    readonly workers: ChildProcess[],
    senders: ChildProcess[],
  ) {
    this.#senders = senders;
  }

  static async start(options: PresenceFleetOptions): Promise<PresenceFleet> {
    const updaters = options.updaters ?? 0;
    const rest = options.members - updaters;
    const count = options.workers ?? Math.max(2, Math.ceil(rest / 5000));
    const perWorker = Math.ceil(rest / count);
    const ranges: Array<[number, number]> = updaters > 0 ? [[0, updaters]] : [];
    for (let from = updaters; from < options.members; from += perWorker) ranges.push([from, Math.min(options.members, from + perWorker)]);
    const workers = ranges.map(([from, to]) => {
      const job: PresenceJob = { urls: options.urls, secret: BENCH_SECRET, topic: options.topic, from, to, expect: options.members, apply: options.apply, mode: options.mode };
      return fork(path.resolve('bench/presence-worker.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    });
    const fleet = new PresenceFleet(workers, updaters > 0 ? workers.slice(0, 1) : workers);
    try {
      await Promise.all(workers.map((worker) => fleet.#watch(worker)));
    } catch (error) {
      await fleet.stop();
      throw error;
    }
    return fleet;
  }

  /** Resolves once the worker's members are all open (in a room: subscribed and tracked); then records its reports. */
  #watch(worker: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      worker.once('exit', (code) => reject(new Error(`load generator exited with ${code} before its members were ready`)));
      worker.on('message', (message: PresenceReport) => {
        switch (message.type) {
          case 'ready':
            resolve();
            break;
          case 'error':
            reject(new Error(message.message));
            break;
          case 'report':
            for (const sample of message.samples) this.histogram.record(sample);
            this.#counts.set(worker, message);
            this.#cpuMs.set(worker, (message.cpu.user + message.cpu.system) / 1000);
            break;
          case 'summary':
            break;
        }
      });
    });
  }

  #send(command: PresenceCommand): void {
    for (const worker of this.workers) worker.send(command);
  }

  /** Every member subscribes, then tracks (the join storm): now, or spread over `spreadMs`; completion times count from this call. */
  storm(spreadMs = 0): void {
    this.#send({ type: 'storm', at: performance.timeOrigin + performance.now(), spreadMs });
  }

  /** `rate` requests per second from the sending members (each worker its share), round-robin, until {@link stopPacing}. */
  pace(method: 'track' | 'new-message', rate: number, pad = 0): void {
    const share = rate / this.#senders.length;
    for (const worker of this.#senders) worker.send({ type: 'pace', method, rate: share, pad } satisfies PresenceCommand);
  }

  stopPacing(): void {
    this.#send({ type: 'pace-stop' });
  }

  /** The workers' counters summed (as of the last reports, ≤ 250 ms old); `witnessKeys` is the fewest over witnesses. */
  counts(): PresenceCounts {
    let total = ZERO;
    let witnessKeys = Number.POSITIVE_INFINITY;
    for (const c of this.#counts.values()) {
      witnessKeys = Math.min(witnessKeys, c.witnessKeys);
      total = {
        presenceFrames: total.presenceFrames + c.presenceFrames,
        presenceBytes: total.presenceBytes + c.presenceBytes,
        events: total.events + c.events,
        eventBytes: total.eventBytes + c.eventBytes,
        tracked: total.tracked + c.tracked,
        messaged: total.messaged + c.messaged,
        failed: total.failed + c.failed,
        firstFailure: total.firstFailure ?? c.firstFailure,
        complete: total.complete + c.complete,
        witnessKeys: 0,
        inconsistent: total.inconsistent + c.inconsistent,
        firstInconsistency: total.firstInconsistency ?? c.firstInconsistency,
        closed: total.closed + c.closed,
      };
    }
    return { ...total, witnessKeys: this.#counts.size === this.workers.length ? witnessKeys : 0 };
  }

  /** CPU time the load generators have used, in ms. */
  cpuMs(): number {
    let total = 0;
    for (const value of this.#cpuMs.values()) total += value;
    return total;
  }

  /** Waits for the next report of every worker (so counts are current). */
  async settle(): Promise<void> {
    await Promise.all(this.workers.map((worker) => new Promise<void>((resolve) => worker.once('message', () => resolve()))));
  }

  /** Every member's account. */
  async summary(): Promise<MemberSummary[]> {
    const answers = await Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<Extract<PresenceReport, { type: 'summary' }>>((resolve) => {
            const listen = (message: PresenceReport) => {
              if (message.type !== 'summary') return;
              worker.off('message', listen);
              resolve(message);
            };
            worker.on('message', listen);
            worker.send({ type: 'summary' } satisfies PresenceCommand);
          }),
      ),
    );
    return answers.flatMap((answer) => answer.members);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker) => {
        if (worker.exitCode !== null || worker.signalCode !== null) return;
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.send({ type: 'stop' } satisfies PresenceCommand);
        await exited;
      }),
    );
  }
}
