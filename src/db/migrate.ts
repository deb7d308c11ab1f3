import { Migrator, type MigrationProvider } from 'kysely';
import { migrations } from '../../migrations/index.js';
import type { Database } from './database.js';

const provider: MigrationProvider = { getMigrations: async () => migrations };

/**
 * Brings the rowcast schema to the latest migration. Safe to run from
 * several processes at once: kysely serialises migrators with an advisory lock.
 *
 * @returns the names of the migrations that ran now.
 */
export async function migrateToLatest(db: Database): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider,
    migrationTableSchema: 'rowcast',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
