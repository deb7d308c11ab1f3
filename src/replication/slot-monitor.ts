import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';

/** What the slot costs the database, as last read. */
export interface SlotReading {
  /** WAL Postgres keeps for the slot: current WAL position minus the slot's `restart_lsn`. */
  readonly retainedWalBytes: number;
  /** Committed WAL this node has not handed off yet: the replication lag in bytes. */
  readonly lagBytes: number;
  /**
   * `pg_replication_slots.wal_status`: `reserved`/`extended` are fine,
   * `unreserved` means the slot is about to lose WAL to `max_slot_wal_keep_size`,
   * `lost` means it has (events are gone; the slot must be recreated).
   */
  readonly walStatus: string | null;
  /** Bytes left before `max_slot_wal_keep_size` invalidates the slot (`null`: no limit). */
  readonly safeWalSizeBytes: number | null;
  readonly readAt: string;
}

/** Where to look and how often. */
export interface SlotMonitorOptions {
  readonly db: Database;
  readonly slotName: string;
  /** The position this node has handed off (for the lag). */
  readonly handedOffLsn: () => string;
  readonly logger: Logger;
  /** Default 2,000 ms. */
  readonly intervalMs?: number;
}

/**
 * Reads the slot's retained WAL and the stream's lag every few seconds, for
 * `/status` and `/metrics` (they stay synchronous and cheap). The replay
 * window holds the slot back by up to `HISTORY_EVENTS` events, so retained
 * WAL is the number to watch; `max_slot_wal_keep_size` caps it, and a slot
 * past the cap is reported here as `walStatus: 'lost'` and logged.
 */
export class SlotMonitor {
  readonly #options: SlotMonitorOptions;
  #reading: SlotReading | null = null;
  #timer: NodeJS.Timeout | null = null;
  #reportedStatus: string | null = null;
  #databaseUp = true;

  constructor(options: SlotMonitorOptions) {
    this.#options = options;
  }

  /** Reads once now, then every interval until {@link stop}. */
  async start(): Promise<void> {
    await this.#read();
    this.#timer = setInterval(() => void this.#read(), this.#options.intervalMs ?? 2000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Whether the last reading reached the database. */
  get databaseUp(): boolean {
    return this.#databaseUp;
  }

  /** The last reading (`null` before the first one succeeds, or while the database is unreachable). */
  get reading(): SlotReading | null {
    return this.#reading;
  }

  async #read(): Promise<void> {
    try {
      const { rows } = await sql<{ retained: string | null; lag: string; wal_status: string | null; safe_wal_size: string | null }>`
        SELECT (pg_current_wal_lsn() - restart_lsn)::text AS retained,
               greatest(pg_current_wal_flush_lsn() - ${this.#options.handedOffLsn()}::pg_lsn, 0)::text AS lag,
               wal_status, safe_wal_size::text AS safe_wal_size
          FROM pg_replication_slots WHERE slot_name = ${this.#options.slotName}`.execute(this.#options.db);
      this.#databaseUp = true;
      const row = rows[0];
      if (!row) {
        this.#reading = null;
        return;
      }
      this.#reading = {
        retainedWalBytes: Number(row.retained ?? 0),
        lagBytes: Number(row.lag),
        walStatus: row.wal_status,
        safeWalSizeBytes: row.safe_wal_size === null ? null : Number(row.safe_wal_size),
        readAt: new Date().toISOString(),
      };
      this.#report(row.wal_status);
    } catch {
      this.#databaseUp = false;
      this.#reading = null;
    }
  }

  /** Logs each change of `wal_status` into a worrying state once. */
  #report(walStatus: string | null): void {
    if (walStatus === this.#reportedStatus) return;
    this.#reportedStatus = walStatus;
    if (walStatus === 'unreserved') {
      this.#options.logger.warn({ slot: this.#options.slotName }, 'slot past max_wal_size: max_slot_wal_keep_size will soon drop WAL it needs');
    } else if (walStatus === 'lost') {
      this.#options.logger.error(
        { slot: this.#options.slotName },
        'slot lost WAL to max_slot_wal_keep_size: changes were dropped; drop the slot and restart rowcast (clients must refetch)',
      );
    }
  }
}
