import { sql, type Kysely } from 'kysely';

/** A custom topic may have presence: its readers track who is there (docs/presence.md). Off for topics made before. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rowcast.topics ADD COLUMN presence boolean NOT NULL DEFAULT false`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rowcast.topics DROP COLUMN presence`.execute(db);
}
