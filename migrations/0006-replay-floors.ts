import { sql, type Kysely } from 'kysely';

/**
 * Where each slot's replay window starts, kept across restarts
 * (src/log/window-floors.ts): a client resumes with `since` after a restart
 * whenever the events it missed are still in the stream, even one that saw
 * no event before it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE rowcast.replay_floors (
      slot_name text PRIMARY KEY,
      floor text NOT NULL,
      topic_floors jsonb NOT NULL DEFAULT '{}',
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE rowcast.replay_floors`.execute(db);
}
