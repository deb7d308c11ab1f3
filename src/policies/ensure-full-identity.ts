import { sql } from 'kysely';
import type { Database } from '../db/database.js';

/**
 * Sets `REPLICA IDENTITY FULL` on each table, so that updates carry the old
 * row (`data.old`, and the old audience for moves) and deletes the whole row.
 *
 * @returns the tables it could not change, with the reason (usually: this
 * role does not own the table).
 */
export async function ensureFullIdentity(
  db: Database,
  tables: ReadonlyArray<{ schema: string; table: string }>,
): Promise<Array<{ table: string; reason: string }>> {
  const failed: Array<{ table: string; reason: string }> = [];
  for (const { schema, table } of tables) {
    try {
      await sql`ALTER TABLE ${sql.id(schema, table)} REPLICA IDENTITY FULL`.execute(db);
    } catch (error) {
      failed.push({ table: `${schema}.${table}`, reason: (error as Error).message });
    }
  }
  return failed;
}
