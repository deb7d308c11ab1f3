import { sql, type Kysely } from 'kysely';

/**
 * A stored message remembers the connection that sent it (its session id),
 * so that a subscriber that asked not to get its own messages back
 * (Supabase's `broadcast.self: false`) is skipped when the message comes
 * through the replication stream.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rowcast.messages ADD COLUMN origin text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rowcast.messages DROP COLUMN origin`.execute(db);
}
