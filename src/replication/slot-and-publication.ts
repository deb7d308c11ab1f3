import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { StartupError } from '../errors.js';
import { parseLsn, type Lsn } from './lsn.js';

/** Which publication and slot rowcast streams from. */
export interface SlotAndPublicationOptions {
  readonly slotName: string;
  readonly publicationName: string;
  /** `*` for every table, or a comma-separated list of `schema.table` / `table`. */
  readonly tables: string;
  /**
   * Told every {@link SLOT_WAIT_REPORT_MS} while creating the slot waits, with
   * the transactions it may be waiting for (start-up logs them).
   */
  readonly onSlotWait?: (wait: SlotWait) => void;
}

/** What a slot being created waits for, as start-up reports it. */
export interface SlotWait {
  readonly seconds: number;
  /** Transactions holding an xid now, oldest first (at most five). */
  readonly transactions: ReadonlyArray<{ pid: number; database: string | null; state: string | null; seconds: number; application: string | null }>;
}

/**
 * How often a slot creation that has not returned is reported. Postgres
 * makes a logical slot only once the transactions that held an xid when it
 * began have ended, as seen in a snapshot of running transactions that the
 * server logs every 15 s: on a busy server that is tens of seconds, and one
 * transaction left open anywhere on the server holds it until it ends.
 */
export const SLOT_WAIT_REPORT_MS = 10_000;

/**
 * How often, while a slot is being created, a snapshot of running
 * transactions is written (`pg_log_standby_snapshot()`, Postgres 16+, for a
 * superuser), so that creating the slot waits only for the transactions it
 * must, not for Postgres's own snapshot every 15 s.
 */
const SLOT_NUDGE_MS = 1000;

/** What start-up learnt while making sure the slot and publication exist. */
export interface SlotState {
  /** Where the slot will resume: its `confirmed_flush_lsn`. */
  readonly confirmedFlushLsn: Lsn;
  /** Whether the slot was created now. */
  readonly created: boolean;
  /** Published tables whose updates and deletes Postgres will refuse (no replica identity). */
  readonly tablesWithoutIdentity: readonly string[];
}

const ROWCAST_TABLES = ['rowcast.table_policies', 'rowcast.topics', 'rowcast.messages'];

/**
 * Creates the publication and the persistent pgoutput slot when missing, and
 * brings an existing publication in line with `tables`.
 *
 * `*` publishes every table (`FOR ALL TABLES`, which needs a superuser to
 * create); a list publishes those tables plus rowcast's own.
 */
export async function ensureSlotAndPublication(db: Database, options: SlotAndPublicationOptions): Promise<SlotState> {
  await ensurePublication(db, options);
  const slot = await ensureSlot(db, options.slotName, options.onSlotWait ?? (() => {}));
  const { rows } = await sql<{ name: string }>`
    SELECT format('%I.%I', n.nspname, c.relname) AS name
      FROM pg_publication_tables p
      JOIN pg_namespace n ON n.nspname = p.schemaname
      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
     WHERE p.pubname = ${options.publicationName}
       AND (c.relreplident = 'n'
            OR (c.relreplident = 'd' AND NOT EXISTS (
                  SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
     ORDER BY 1`.execute(db);
  return { ...slot, tablesWithoutIdentity: rows.map((r) => r.name) };
}

async function ensurePublication(db: Database, options: SlotAndPublicationOptions): Promise<void> {
  const name = sql.id(options.publicationName);
  const { rows } = await sql<{ puballtables: boolean }>`
    SELECT puballtables FROM pg_publication WHERE pubname = ${options.publicationName}`.execute(db);
  const existing = rows[0];
  try {
    if (options.tables.trim() === '*') {
      if (existing?.puballtables) return;
      if (existing) await sql`DROP PUBLICATION ${name}`.execute(db);
      await sql`CREATE PUBLICATION ${name} FOR ALL TABLES`.execute(db);
      return;
    }
    const tables = [...parseTableList(options.tables), ...ROWCAST_TABLES].map((t) => {
      const [schema, table] = t.split('.') as [string, string];
      return sql`${sql.id(schema, table)}`;
    });
    const list = sql.join(tables);
    if (existing && !existing.puballtables) await sql`ALTER PUBLICATION ${name} SET TABLE ${list}`.execute(db);
    else {
      if (existing) await sql`DROP PUBLICATION ${name}`.execute(db);
      await sql`CREATE PUBLICATION ${name} FOR TABLE ${list}`.execute(db);
    }
  } catch (error) {
    const pgError = error as { code?: string; message?: string };
    if (pgError.code === '42710') return; // another node created it at the same moment
    if (pgError.code === '42501') {
      throw new StartupError(
        `cannot create publication ${options.publicationName}: ${pgError.message}. ` +
          `Create it as a superuser (CREATE PUBLICATION ${options.publicationName} FOR ALL TABLES;) ` +
          `or set PUBLICATION_TABLES to a list of tables this role owns`,
        { cause: error },
      );
    }
    throw error;
  }
}

async function ensureSlot(db: Database, slotName: string, onWait: (wait: SlotWait) => void): Promise<{ confirmedFlushLsn: Lsn; created: boolean }> {
  const { rows } = await sql<{ plugin: string; database: string; confirmed_flush_lsn: string | null }>`
    SELECT plugin, database, confirmed_flush_lsn::text
      FROM pg_replication_slots WHERE slot_name = ${slotName}`.execute(db);
  const slot = rows[0];
  if (slot) {
    const { rows: here } = await sql<{ db: string }>`SELECT current_database() AS db`.execute(db);
    if (slot.plugin !== 'pgoutput' || slot.database !== here[0]!.db) {
      throw new StartupError(
        `replication slot ${slotName} belongs to database ${slot.database} with plugin ${slot.plugin}; ` +
          `set SLOT_NAME to another name or drop it: SELECT pg_drop_replication_slot('${slotName}');`,
      );
    }
    return { confirmedFlushLsn: parseLsn(slot.confirmed_flush_lsn ?? '0/0'), created: false };
  }
  const began = Date.now();
  let nudging = true;
  let ticks = 0;
  const report = setInterval(() => {
    // Each snapshot of running transactions lets the slot's creation move on as soon as those it waits for ended,
    // rather than at the next one Postgres logs by itself (every 15 s). Postgres 16+ for a superuser; else it stops.
    if (nudging) sql`SELECT pg_log_standby_snapshot()`.execute(db).catch(() => void (nudging = false));
    if (++ticks % (SLOT_WAIT_REPORT_MS / SLOT_NUDGE_MS) !== 0) return;
    runningTransactions(db).then(
      (transactions) => onWait({ seconds: Math.round((Date.now() - began) / 1000), transactions }),
      () => {},
    );
  }, SLOT_NUDGE_MS);
  try {
    const { rows: made } = await sql<{ lsn: string }>`
      SELECT lsn::text FROM pg_create_logical_replication_slot(${slotName}, 'pgoutput')`.execute(db);
    return { confirmedFlushLsn: parseLsn(made[0]!.lsn), created: true };
  } catch (error) {
    if ((error as { code?: string }).code === '42710') return ensureSlot(db, slotName, onWait);
    throw error;
  } finally {
    clearInterval(report);
  }
}

/** Transactions of the whole server that hold an xid, oldest first: what a logical slot being created waits for. */
async function runningTransactions(db: Database): Promise<SlotWait['transactions']> {
  const { rows } = await sql<{ pid: number; database: string | null; state: string | null; seconds: number; application: string | null }>`
    SELECT pid, datname AS database, state, extract(epoch FROM now() - xact_start)::int AS seconds, application_name AS application
      FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
     ORDER BY xact_start
     LIMIT 5`.execute(db);
  return rows;
}

/** `a, app.b` → `['public.a', 'app.b']`. */
export function parseTableList(list: string): string[] {
  return list
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
    .map((t) => (t.includes('.') ? t : `public.${t}`));
}
