import { sql, type Kysely } from 'kysely';

/**
 * Direct messages: each user's inbox is the custom topic `@me`, whose rows
 * in `rowcast.messages` carry their `recipient` (a `sub`). A user reads and
 * resumes only their own; the indexes serve `history`, replay with `since`
 * and pruning per recipient without a scan.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rowcast.messages ADD COLUMN recipient text`.execute(db);
  await sql`CREATE INDEX messages_recipient_id ON rowcast.messages (recipient, id DESC) WHERE recipient IS NOT NULL`.execute(db);
  await sql`CREATE INDEX messages_recipient_seq ON rowcast.messages (recipient, seq) WHERE recipient IS NOT NULL`.execute(db);
  await sql`
    INSERT INTO rowcast.topics (name, description, history, readers, writers)
    VALUES ('@me', 'your direct messages', 100, 'authenticated', 'admin')
    ON CONFLICT (name) DO NOTHING`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM rowcast.topics WHERE name = '@me'`.execute(db);
  await sql`DROP INDEX rowcast.messages_recipient_seq`.execute(db);
  await sql`DROP INDEX rowcast.messages_recipient_id`.execute(db);
  await sql`ALTER TABLE rowcast.messages DROP COLUMN recipient`.execute(db);
}
