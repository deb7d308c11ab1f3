import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { HarnessMessage, WorkerCounts, WorkerJob, WorkerMessage } from './worker-protocol.js';

/** How the fleet's connections are laid out over workers and nodes. */
export interface FleetOptions extends Omit<WorkerJob, 'from' | 'to'> {
  readonly connections: number;
  /** At most this many connections per worker process (each stays well within its open-file limit). */
  readonly maxPerWorker: number;
  /** Called once if a worker exits before {@link LoadFleet.stop}. */
  readonly onExit: (message: string) => void;
}

/** Every worker's counters added up. */
export type FleetCounts = WorkerCounts & { readonly workers: number };

/**
 * The soak's client connections, held by several load-generator processes
 * (soak/load-worker.ts) so that no process nears its open-file limit and the
 * nodes are not the ones making load. Keeps each worker's last counters and
 * the ids of every acknowledged room message (which the chat witness must
 * have received).
 */
export class LoadFleet {
  readonly workers: ChildProcess[];
  /** Ids of room messages the server acknowledged (`new-message` answered ok). */
  readonly ackedRoomIds = new Set<string>();
  readonly rampSeconds: number[] = [];
  readonly #counts = new Map<ChildProcess, WorkerCounts>();
  readonly #readinesses: Array<Promise<void>>;
  #stopping = false;

  private constructor(workers: ChildProcess[]) {
    this.workers = workers;
    this.#readinesses = workers.map((worker) => this.#readiness(worker));
  }

  /** Forks the workers; they start opening their connections at once (see {@link ready}). */
  static launch(options: FleetOptions): LoadFleet {
    const count = Math.max(1, Math.ceil(options.connections / options.maxPerWorker));
    const per = Math.ceil(options.connections / count);
    const { connections: _c, maxPerWorker: _m, onExit: _o, ...shared } = options;
    const workers: ChildProcess[] = [];
    for (let from = 0; from < options.connections; from += per) {
      const job: WorkerJob = { ...shared, from, to: Math.min(options.connections, from + per) };
      // Detached: a Ctrl-C in the terminal reaches the harness, which stops the workers in order (a worker whose harness is gone exits by itself).
      workers.push(
        fork(path.resolve('soak/load-worker.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true }),
      );
    }
    const fleet = new LoadFleet(workers);
    for (const worker of workers) {
      worker.on('message', (message: WorkerMessage) => fleet.#record(worker, message));
      worker.once('exit', (code, signal) => {
        if (!fleet.#stopping) options.onExit(`load worker ${worker.pid} exited (${signal ?? code})`);
      });
    }
    return fleet;
  }

  /** Waits until every connection is open and subscribed; rejects when a worker fails or `timeoutMs` passes. */
  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const open = this.perWorker().map((c) => `${c.open}/${c.connections}`);
        reject(new Error(`the fleet's connections were not all open within ${timeoutMs} ms (open per worker, as last reported: ${open.join(', ') || 'none'})`));
      }, timeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.#readinesses), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Each worker's process id. */
  get pids(): number[] {
    return this.workers.map((worker) => worker.pid!);
  }

  #record(worker: ChildProcess, message: WorkerMessage): void {
    if (message.type === 'error') return;
    this.#counts.set(worker, message.counts);
    if (message.type === 'ready') this.rampSeconds.push(message.rampSeconds);
    else for (const id of message.ackedRoomIds) this.ackedRoomIds.add(id);
  }

  /** Resolves on the worker's `ready`; rejects on its `error` or an exit before it. */
  #readiness(worker: ChildProcess): Promise<void> {
    const readiness = new Promise<void>((resolve, reject) => {
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'ready') resolve();
        if (message.type === 'error') reject(new Error(`load worker ${worker.pid}: ${message.message}`));
      });
      worker.once('exit', (code, signal) => reject(new Error(`load worker ${worker.pid} exited (${signal ?? code}) during the ramp`)));
    });
    readiness.catch(() => {}); // awaited by ready(); not an unhandled rejection before that
    return readiness;
  }

  /** The steady phase: churn and chat (messages/s to each chat topic, over all workers). */
  startTraffic(churnPercentPerMinute: number, chatPerSecond: number): void {
    this.#send({ type: 'start', churnPercentPerMinute, chatPerSecond: chatPerSecond / this.workers.length });
  }

  /** Stops churn and chat, and waits until every connection is back and subscribed; false if some were not within `timeoutMs`. */
  async quiesce(timeoutMs: number): Promise<boolean> {
    const answers = this.workers.map(
      (worker) =>
        new Promise<boolean>((resolve) => {
          // A worker that died never answers: give up a little after its own deadline.
          const timer = setTimeout(() => resolve(false), timeoutMs + 5000);
          const onMessage = (message: WorkerMessage) => {
            if (message.type !== 'quiesced') return;
            worker.off('message', onMessage);
            clearTimeout(timer);
            resolve(message.settled);
          };
          worker.on('message', onMessage);
        }),
    );
    this.#send({ type: 'quiesce', timeoutMs });
    return (await Promise.all(answers)).every(Boolean);
  }

  /** Every worker's last counters, added up. */
  counts(): FleetCounts {
    return sumCounts([...this.#counts.values()]);
  }

  /** Each worker's last counters. */
  perWorker(): WorkerCounts[] {
    return this.workers.map((worker) => this.#counts.get(worker)).filter((c): c is WorkerCounts => c !== undefined);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.workers.map(async (worker) => {
        if (worker.exitCode !== null || worker.signalCode !== null) return;
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        if (worker.connected) worker.send({ type: 'stop' } satisfies HarnessMessage);
        else worker.kill('SIGKILL');
        const timer = setTimeout(() => worker.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  #send(message: HarnessMessage): void {
    for (const worker of this.workers) if (worker.connected) worker.send(message);
  }
}

const addRecords = (records: ReadonlyArray<Readonly<Record<string, number>>>): Record<string, number> => {
  const sum: Record<string, number> = {};
  for (const record of records) for (const [key, value] of Object.entries(record)) sum[key] = (sum[key] ?? 0) + value;
  return sum;
};

function sumCounts(all: readonly WorkerCounts[]): FleetCounts {
  const total = (pick: (c: WorkerCounts) => number) => all.reduce((sum, c) => sum + pick(c), 0);
  return {
    workers: all.length,
    connections: total((c) => c.connections),
    open: total((c) => c.open),
    sessions: total((c) => c.sessions),
    received: { table: total((c) => c.received.table), room: total((c) => c.received.room), pings: total((c) => c.received.pings) },
    drops: total((c) => c.drops),
    tableResumed: total((c) => c.tableResumed),
    tableNotResumed: total((c) => c.tableNotResumed),
    roomResumed: total((c) => c.roomResumed),
    roomNotResumed: total((c) => c.roomNotResumed),
    failedConnects: total((c) => c.failedConnects),
    failedSubscribes: total((c) => c.failedSubscribes),
    serverCloses: addRecords(all.map((c) => c.serverCloses)),
    otherFrames: total((c) => c.otherFrames),
    chat: {
      sent: total((c) => c.chat.sent),
      acked: total((c) => c.chat.acked),
      failed: addRecords(all.map((c) => c.chat.failed)),
      unanswered: total((c) => c.chat.unanswered),
    },
    cpuMs: total((c) => c.cpuMs),
    rssMiB: total((c) => c.rssMiB),
  };
}
