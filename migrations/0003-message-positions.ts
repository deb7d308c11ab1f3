import { sql, type Kysely } from 'kysely';

/**
 * Each stored message learns its place in the stream: `seq` and the commit
 * time `committed_at` are written back once the replication stream has
 * delivered it, so `subscribe` with `since` can replay a custom topic from
 * `rowcast.messages` after any restart. The `(topic, seq)` index serves that
 * replay. Messages need no whole old row (their updates and deletes are not
 * events), so their replica identity goes back to the primary key: the
 * write-back and the pruning then log no old rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rowcast.messages ADD COLUMN seq text, ADD COLUMN committed_at timestamptz`.execute(db);
  await sql`CREATE INDEX messages_topic_seq ON rowcast.messages (topic, seq)`.execute(db);
  await sql`ALTER TABLE rowcast.messages REPLICA IDENTITY DEFAULT`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rowcast.messages REPLICA IDENTITY FULL`.execute(db);
  await sql`DROP INDEX rowcast.messages_topic_seq`.execute(db);
  await sql`ALTER TABLE rowcast.messages DROP COLUMN seq, DROP COLUMN committed_at`.execute(db);
}
