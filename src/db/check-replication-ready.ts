import { sql } from 'kysely';
import { StartupError } from '../errors.js';
import type { Database } from './database.js';

/**
 * Stops start-up with one clear message when the database cannot feed
 * rowcast: `wal_level` is not `logical`, or the role may not replicate.
 *
 * @throws StartupError saying what to change.
 */
export async function checkReplicationReady(db: Database): Promise<void> {
  const { rows } = await sql<{ wal_level: string; role: string; can_replicate: boolean; slots: string }>`
    SELECT current_setting('wal_level') AS wal_level,
           current_user AS role,
           (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_replicate,
           current_setting('max_replication_slots') AS slots`.execute(db);
  const state = rows[0]!;
  const problems: string[] = [];
  if (state.wal_level !== 'logical') {
    problems.push(
      `wal_level is '${state.wal_level}', rowcast needs 'logical': run ALTER SYSTEM SET wal_level = logical; ` +
        `then restart Postgres (or start it with -c wal_level=logical)`,
    );
  }
  if (!state.can_replicate) {
    problems.push(`role '${state.role}' may not replicate: run ALTER ROLE "${state.role}" WITH REPLICATION;`);
  }
  if (Number(state.slots) < 1) {
    problems.push(`max_replication_slots is 0: set it to at least 1 and restart Postgres`);
  }
  if (problems.length > 0) {
    throw new StartupError(`the database in DATABASE_URL cannot stream changes to rowcast:\n  - ${problems.join('\n  - ')}`);
  }
}
