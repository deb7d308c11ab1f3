import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { operatorHeaders, TEST_SECRET } from './tokens.js';
import { serverEnv, type TestDatabase } from './database.js';

/** A JSON log line of the server. */
export type LogLine = Record<string, any>;

const MAIN = path.resolve('dist/src/cli/main.js');

/** Every child still running: killed when this (the test worker) process exits, so none outlives it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * The server as a separate process (the built `rowcast serve`), for tests
 * that kill it or measure its memory. Its JSON log lines are kept in order.
 */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  port = 0;
  #waiters: Array<() => void> = [];
  #exited = false;
  /** The last of what it wrote to stderr, for failure messages. */
  #stderr = '';

  private constructor(child: ChildProcess) {
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      this.logs.push(JSON.parse(line) as LogLine);
      this.#wake();
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.#stderr = (this.#stderr + chunk.toString()).slice(-2000)));
    running.add(child);
    child.on('exit', () => {
      running.delete(child);
      this.#exited = true;
      this.#wake();
    });
  }

  /**
   * Starts `rowcast serve` on `db` and waits until it listens; a process that
   * does not get there is killed before this throws. Tests start servers
   * through `withServerProcess` (with-server-process.ts), which kills them when the test ends.
   */
  static async start(db: TestDatabase, env: Record<string, string> = {}): Promise<ServerProcess> {
    const server = ServerProcess.spawn(db, env);
    try {
      await server.listening();
    } catch (error) {
      await server.kill('SIGKILL');
      throw error;
    }
    return server;
  }

  /** Starts `rowcast serve` on `db` without waiting for it: the caller kills it. */
  static spawn(db: TestDatabase, env: Record<string, string> = {}): ServerProcess {
    const child = spawn(process.execPath, [MAIN, 'serve'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        ...serverEnv(db, TEST_SECRET),
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServerProcess(child);
  }

  /**
   * Waits for "rowcast started" and learns the port. Start-up creates a
   * replication slot, which on the shared, busy test server can wait for
   * tens of seconds (see SLOT_WAIT_REPORT_MS): hence the long timeout.
   */
  async listening(): Promise<void> {
    const started = await this.waitForLog((l) => l['msg'] === 'rowcast started', 120_000);
    this.port = started['port'] as number;
  }

  get liveUrl(): string {
    return `ws://127.0.0.1:${this.port}/live`;
  }

  /** Waits for a log line that matches (lines already seen count). */
  async waitForLog(match: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (let seen = 0; ; ) {
      for (; seen < this.logs.length; seen++) if (match(this.logs[seen]!)) return this.logs[seen]!;
      if (this.#exited) throw new Error(`server exited while waiting; last logs: ${JSON.stringify(this.logs.slice(-3))}; stderr: ${this.#stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching log line within ${timeoutMs} ms; last: ${JSON.stringify(this.logs.slice(-3))}; stderr: ${this.#stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** `/status` of the running server. */
  async status(): Promise<Record<string, any>> {
    const response = await fetch(`http://127.0.0.1:${this.port}/status`, { headers: operatorHeaders() });
    return (await response.json()) as Record<string, any>;
  }

  /** Resident set size now and at its peak (VmHWM), in MiB. */
  memory(): { rssMiB: number; peakMiB: number } {
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
  }

  /** Sends `signal` and waits for the process to exit; returns its exit code (`null` when a signal ended it). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.#exited) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.kill(signal);
    return exited;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
