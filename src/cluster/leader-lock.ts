import pg from 'pg';
import type { Logger } from 'pino';

export interface LeaderLockOptions {
  readonly url: string;
  /** What the lock is for (the slot's name): nodes of one cluster contend for the same one. */
  readonly name: string;
  /** How often a follower tries the lock and the leader checks its connection (ms): failover takes about this long. */
  readonly intervalMs: number;
  readonly logger: Logger;
  /** This node now holds the lock. */
  readonly onAcquired: () => void;
  /** This node lost the lock (its connection failed) or gave it up: stop reading the slot at once. */
  readonly onLost: () => void;
}

/**
 * Leadership of a rowcast cluster: a session-level Postgres advisory lock
 * held on a connection of its own. Postgres releases it when that session
 * ends — the leader's process died or its connection broke — and the next
 * follower to try (every `intervalMs`) takes it. The leader checks its
 * connection just as often, so a leader cut off from the database stops
 * reading the slot within about one interval.
 */
export class LeaderLock {
  readonly #options: LeaderLockOptions;
  #client: pg.Client | null = null;
  #leader = false;
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  #busy = false;

  constructor(options: LeaderLockOptions) {
    this.#options = options;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    this.#running = true;
    this.#timer = setInterval(() => void this.#tick(), this.#options.intervalMs);
    void this.#tick();
  }

  /** Gives the lock up (if held) and stops contending. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearInterval(this.#timer);
    await this.#drop(false);
  }

  /** Gives the lock up so another node can take it (this one tries again after an interval). */
  async release(): Promise<void> {
    await this.#drop(true);
  }

  async #tick(): Promise<void> {
    if (this.#busy || !this.#running) return;
    this.#busy = true;
    try {
      if (!this.#client) {
        const client = new pg.Client({ connectionString: this.#options.url, application_name: 'rowcast-leader-lock' });
        client.on('error', () => void this.#drop(true));
        await client.connect();
        this.#client = client;
      }
      if (this.#leader) {
        await this.#client.query('SELECT 1');
        return;
      }
      const { rows } = await this.#client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS locked`, [`rowcast:${this.#options.name}`]);
      if (rows[0]!.locked && this.#running) {
        this.#leader = true;
        this.#options.logger.warn({ lock: this.#options.name }, 'this node is now the cluster leader');
        this.#options.onAcquired();
      }
    } catch (error) {
      // After stop() the connection is ended on purpose: nothing to report.
      if (this.#running) this.#options.logger.warn({ err: error }, 'leader lock: database connection failed');
      await this.#drop(true);
    } finally {
      this.#busy = false;
    }
  }

  async #drop(notify: boolean): Promise<void> {
    const client = this.#client;
    const wasLeader = this.#leader;
    this.#client = null;
    this.#leader = false;
    if (wasLeader) {
      this.#options.logger.warn({ lock: this.#options.name }, 'this node is no longer the cluster leader');
      if (notify) this.#options.onLost();
    }
    // Ending the session releases the lock.
    await client?.end().catch(() => {});
  }
}
