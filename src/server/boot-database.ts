import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { checkReplicationReady } from '../db/check-replication-ready.js';
import { createDatabase, type Database } from '../db/database.js';
import type { WindowFloorState } from '../log/replay-window.js';
import { WindowFloors } from '../log/window-floors.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../db/embedded-postgres.js';
import { migrateToLatest } from '../db/migrate.js';
import { StartupError } from '../errors.js';
import { ensureFullIdentity } from '../policies/ensure-full-identity.js';
import type { Lsn } from '../replication/lsn.js';
import { ensureSlotAndPublication } from '../replication/slot-and-publication.js';
import { TopicRegistry } from '../topics/topic-registry.js';

/** A database ready to stream from: connected, checked, migrated, with its slot, publication and topics. */
export interface BootedDatabase {
  readonly url: string;
  readonly db: Database;
  /** The embedded Postgres when `DATABASE_URL` was unset. */
  readonly embedded: RunningPostgres | null;
  /** The slot's confirmed position at start-up: the stream starts there. */
  readonly startLsn: Lsn;
  /** The replay window's floors the last process kept for this slot (`null`: none, or the slot is new). */
  readonly restoredFloors: WindowFloorState | null;
  readonly registry: TopicRegistry;
  /** Closes the pool and stops the embedded Postgres. */
  close(): Promise<void>;
}

/**
 * The database stage of start-up: the embedded Postgres (when `DATABASE_URL`
 * is unset) or the URL, the pre-flight checks (logical replication, a role
 * that may use it), the migrations, the slot and publication, the topic
 * registry, and `REPLICA IDENTITY FULL` on tables with policies. Whatever
 * fails stops start-up with a message that says what to change, and leaves
 * nothing running.
 */
export async function bootDatabase(config: Config, logger: Logger): Promise<BootedDatabase> {
  let embedded: RunningPostgres | null = null;
  let db: Database | null = null;
  try {
    let url = config.DATABASE_URL;
    if (url === undefined) {
      embedded = await startEmbeddedPostgres({
        dataDir: path.join(config.DATA_DIR, 'pgdata'),
        port: config.EMBEDDED_PG_PORT,
        onLog: (line) => logger.debug({ postgres: line.trim() }, 'embedded postgres'),
      });
      url = embedded.url;
    }
    db = createDatabase(url);
    await checkReplicationReady(db);
    await migrateToLatest(db);
    const slot = await ensureSlotAndPublication(db, {
      slotName: config.SLOT_NAME,
      publicationName: config.PUBLICATION_NAME,
      tables: config.PUBLICATION_TABLES,
      onSlotWait: ({ seconds, transactions }) =>
        logger.warn(
          { slot: config.SLOT_NAME, seconds, transactions },
          'creating the replication slot is waiting for transactions that were running when it began to end ' +
            '(Postgres needs them gone before a logical slot is usable); an idle-in-transaction session listed here holds start-up until it ends',
        ),
    });
    if (slot.tablesWithoutIdentity.length > 0) {
      logger.warn(
        { tables: slot.tablesWithoutIdentity },
        'published tables without a primary key or replica identity: Postgres refuses UPDATE/DELETE on them; ' +
          'add a primary key or ALTER TABLE … REPLICA IDENTITY FULL',
      );
    }
    if (slot.created) await WindowFloors.forget(db, config.SLOT_NAME);
    const restoredFloors = slot.created ? null : await WindowFloors.load(db, config.SLOT_NAME);
    const registry = new TopicRegistry({ db, publicationName: config.PUBLICATION_NAME, openChannels: config.OPEN_CHANNELS });
    await registry.load();
    await ensureIdentities(db, registry, logger);
    const database = db;
    const postgres = embedded;
    return {
      url,
      db,
      embedded,
      startLsn: slot.confirmedFlushLsn,
      restoredFloors,
      registry,
      close: async () => {
        await database.destroy();
        await postgres?.stop();
      },
    };
  } catch (error) {
    await db?.destroy().catch(() => {});
    await embedded?.stop().catch(() => {});
    throw error;
  }
}

/**
 * Tables with a policy should carry the whole old row. For `owner` and
 * `group` it is required (moves and deletes are routed by the old row):
 * start-up fails naming the table and the fix when it cannot be set.
 */
async function ensureIdentities(db: Database, registry: TopicRegistry, logger: Logger): Promise<void> {
  const partial = registry.list().filter((t) => t.policy.read !== 'admin' && !t.fullIdentity);
  if (partial.length === 0) return;
  const failed = await ensureFullIdentity(db, partial);
  const required: string[] = [];
  for (const { table, reason } of failed) {
    const topic = partial.find((t) => `${t.schema}.${t.table}` === table)!;
    if (topic.policy.read === 'owner' || topic.policy.read === 'group') required.push(`${table} (${reason})`);
    else logger.warn({ table, reason }, 'cannot set REPLICA IDENTITY FULL: updates will lack data.old');
  }
  if (required.length > 0) {
    throw new StartupError(
      `tables with owner/group policies must give the old row on update and delete, and these cannot: ${required.join('; ')}. ` +
        `As their owner run ALTER TABLE <table> REPLICA IDENTITY FULL;`,
    );
  }
  await registry.refreshTables();
}
