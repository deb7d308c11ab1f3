import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

/** The tables of the `rowcast` schema, as kysely sees them. */
export interface RowcastTables {
  'rowcast.table_policies': {
    table_schema: string;
    table_name: string;
    read: 'public' | 'owner' | 'group' | 'admin';
    owner_column: string | null;
    group_column: string | null;
    group_claim: string;
    /** Columns never sent to non-admins. */
    hidden_columns: string[];
  };
  'rowcast.topics': {
    name: string;
    description: string;
    history: number;
    max_subscribers: number | null;
    readers: 'anyone' | 'authenticated' | 'admin';
    writers: 'anyone' | 'authenticated' | 'admin';
    created_by: string | null;
    created_at: Date;
    /** Whether its readers may track presence on it. */
    presence: boolean;
  };
  'rowcast.replay_floors': {
    slot_name: string;
    /** The replay window's floor: every event with a `seq` above it is in the stream from the slot on. */
    floor: string;
    /** Topic → the last `seq` before its read rule changed. */
    topic_floors: Record<string, string>;
    updated_at: Date;
  };
  'rowcast.messages': {
    id: string;
    topic: string;
    sender: string | null;
    message: unknown;
    created_at: Date;
    /** Written back once the stream has delivered the message; `null` until then. */
    seq: string | null;
    committed_at: Date | null;
    /** The session id of the connection that sent it (`null` for messages from the admin API). */
    origin: string | null;
    /** The `sub` whose inbox (`@me`) holds a direct message; `null` for a topic's message. */
    recipient: string | null;
  };
}

/** The query builder over the rowcast schema. */
export type Database = Kysely<RowcastTables>;

/**
 * Opens a pooled kysely instance on `url`. Timestamps and int8 come back as
 * strings from this pool's parsers only where a query asks for them.
 *
 * @example
 * const db = createDatabase('postgres://localhost/app');
 * await db.destroy();
 */
export function createDatabase(url: string, options: { max?: number } = {}): Database {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10 });
  pool.on('error', () => {}); // an idle client's error surfaces on its next query
  return new Kysely<RowcastTables>({ dialect: new PostgresDialect({ pool }) });
}
