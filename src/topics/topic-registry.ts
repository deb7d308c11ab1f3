import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { Logger } from 'pino';
import { ensureFullIdentity } from '../policies/ensure-full-identity.js';
import { ADMIN_ONLY, type ReadPolicy } from '../policies/read-policy.js';

/** A published table, as a topic. */
export interface TableTopic {
  readonly kind: 'table';
  /** `order` for `public.order`, `app.items` for other schemas. */
  readonly name: string;
  readonly schema: string;
  readonly table: string;
  /** Primary key columns, in key order (empty when the table has none). */
  readonly primaryKey: readonly string[];
  readonly policy: ReadPolicy;
}

/** What the registry reads from. */
export interface TopicRegistryOptions {
  readonly db: Database;
  readonly publicationName: string;
  readonly logger: Logger;
}

/** The topic name of `schema.table`. */
export function tableTopicName(schema: string, table: string): string {
  return schema === 'public' ? table : `${schema}.${table}`;
}

/**
 * The topics a client can name: every published table outside the `rowcast`
 * schema, with its read policy from `rowcast.table_policies`. Loaded at
 * start-up and reloaded when a table appears or a policy row changes; a
 * reload swaps the whole map at once.
 */
export class TopicRegistry {
  readonly #options: TopicRegistryOptions;
  #byName = new Map<string, TableTopic>();
  #reloading: Promise<void> | null = null;
  #again = false;
  #listeners: Array<() => void> = [];

  constructor(options: TopicRegistryOptions) {
    this.#options = options;
  }

  /** The topic called `name`, if there is one. */
  get(name: string): TableTopic | undefined {
    return this.#byName.get(name);
  }

  /** The table topic of `schema.table`, if published. */
  byTable(schema: string, table: string): TableTopic | undefined {
    return this.#byName.get(tableTopicName(schema, table));
  }

  /** Every topic. */
  list(): TableTopic[] {
    return [...this.#byName.values()];
  }

  /** Calls `listener` after every reload. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Reads tables and policies again. Concurrent calls share one reload, and a
   * call made while one runs causes exactly one more afterwards.
   */
  reload(): Promise<void> {
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      try {
        do {
          this.#again = false;
          this.#byName = await this.#load();
          for (const listener of this.#listeners) listener();
        } while (this.#again);
      } finally {
        this.#reloading = null;
      }
    })();
    return this.#reloading;
  }

  async #load(): Promise<Map<string, TableTopic>> {
    const { db, publicationName } = this.#options;
    const { rows } = await sql<{
      schema: string;
      table: string;
      primary_key: string[] | null;
      read: ReadPolicy['read'] | null;
      owner_column: string | null;
      group_column: string | null;
      group_claim: string | null;
      identity: string;
    }>`
      SELECT p.schemaname AS schema, p.tablename AS table,
             (SELECT array_agg(a.attname::text ORDER BY k.ord)
                FROM pg_index i
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = format('%I.%I', p.schemaname, p.tablename)::regclass
                 AND i.indisprimary) AS primary_key,
             tp.read, tp.owner_column, tp.group_column, tp.group_claim,
             (SELECT c.relreplident::text FROM pg_class c
               WHERE c.oid = format('%I.%I', p.schemaname, p.tablename)::regclass) AS identity
        FROM pg_publication_tables p
        LEFT JOIN rowcast.table_policies tp
          ON tp.table_schema = p.schemaname AND tp.table_name = p.tablename
       WHERE p.pubname = ${publicationName} AND p.schemaname <> 'rowcast'`.execute(db);
    // Tables rowcast manages (those with a policy row) carry the whole old row.
    const partial = rows.filter((row) => row.read !== null && row.identity !== 'f');
    for (const { table, reason } of await ensureFullIdentity(db, partial)) {
      this.#options.logger.warn({ table, reason }, 'cannot set REPLICA IDENTITY FULL: updates will lack data.old');
    }
    const topics = new Map<string, TableTopic>();
    for (const row of rows) {
      const name = tableTopicName(row.schema, row.table);
      topics.set(name, {
        kind: 'table',
        name,
        schema: row.schema,
        table: row.table,
        primaryKey: row.primary_key ?? [],
        policy: toPolicy(row),
      });
    }
    return topics;
  }
}

function toPolicy(row: {
  read: ReadPolicy['read'] | null;
  owner_column: string | null;
  group_column: string | null;
  group_claim: string | null;
}): ReadPolicy {
  switch (row.read) {
    case 'public':
      return { read: 'public' };
    case 'owner':
      return { read: 'owner', ownerColumn: row.owner_column! };
    case 'group':
      return { read: 'group', groupColumn: row.group_column!, groupClaim: row.group_claim ?? 'groups' };
    case 'admin':
    case null:
      return ADMIN_ONLY;
  }
}
