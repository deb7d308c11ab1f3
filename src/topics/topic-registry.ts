import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { TopicAccess, TopicColumn } from '../protocol/index.js';
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
  readonly columns: readonly TableColumn[];
  /** Whether updates and deletes carry the whole old row (`REPLICA IDENTITY FULL`). */
  readonly fullIdentity: boolean;
  readonly policy: ReadPolicy;
}


/** A column of a table topic: `get-topic`'s name and declared type, and Postgres's type name (`pg_type.typname`: `int8`, `_text`, …). */
export interface TableColumn extends TopicColumn {
  readonly typname: string;
}

/** A custom topic (chat room, notification channel): a row of `rowcast.topics`. */
export interface CustomTopic {
  readonly kind: 'custom';
  readonly name: string;
  readonly description: string;
  /** Messages kept; 0: ephemeral (never stored). */
  readonly history: number;
  readonly maxSubscribers: number | null;
  readonly readers: TopicAccess;
  readonly writers: TopicAccess;
  /** Whether its readers may track presence (always, on open channels). */
  readonly presence: boolean;
  readonly createdBy: string | null;
  /** ISO-8601. */
  readonly createdAt: string;
}

/** What the registry reads from. */
export interface TopicRegistryOptions {
  readonly db: Database;
  readonly publicationName: string;
  /** Whether open channels exist (`OPEN_CHANNELS`, default on): see {@link OPEN_CHANNEL_PREFIX}. */
  readonly openChannels?: boolean;
}

/**
 * Names starting with this are open channels: ephemeral topics that exist
 * for whoever names them (Supabase's channels that are no custom topic), read
 * and written by every connection. `~` is not allowed in a custom topic's
 * name, so the two never meet.
 */
export const OPEN_CHANNEL_PREFIX = '~';

/** The open channel called `name` (which starts with {@link OPEN_CHANNEL_PREFIX}). */
function openChannel(name: string): CustomTopic {
  return { kind: 'custom', name, description: 'open channel', history: 0, maxSubscribers: null, readers: 'anyone', writers: 'anyone', presence: true, createdBy: null, createdAt: OPEN_CHANNEL_EPOCH };
}
const OPEN_CHANNEL_EPOCH = new Date(0).toISOString();

/** The topic name of `schema.table`. */
export function tableTopicName(schema: string, table: string): string {
  return schema === 'public' ? table : `${schema}.${table}`;
}

type TableInfo = Omit<TableTopic, 'policy' | 'kind' | 'name'>;

/**
 * The topics a client can name: every published table outside the `rowcast`
 * schema, with its read policy.
 *
 * Tables (columns, keys, identity) are read from the catalog at start-up and
 * again when an unknown table shows up. Policies are read once at start-up
 * and from then on follow the replication stream: a change to
 * `rowcast.table_policies` is applied with {@link applyPolicy} at its place in
 * the stream, so every event after it is routed by the new policy and none
 * before it is.
 */
export class TopicRegistry {
  readonly #options: TopicRegistryOptions;
  #tables = new Map<string, TableInfo>();
  #policies = new Map<string, ReadPolicy>();
  #byName = new Map<string, TableTopic>();
  #custom = new Map<string, CustomTopic>();
  #refreshing: Promise<void> | null = null;
  #again = false;
  #changeListeners: Array<() => void> = [];
  #policyListeners: Array<(topic: string) => void> = [];

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

  /** Every table topic. */
  list(): TableTopic[] {
    return [...this.#byName.values()];
  }

  /** The custom topic called `name`, if there is one (open channels exist when named, unless `OPEN_CHANNELS` is off). */
  custom(name: string): CustomTopic | undefined {
    if (name.startsWith(OPEN_CHANNEL_PREFIX)) return this.#options.openChannels === false || name.length === 1 ? undefined : openChannel(name);
    return this.#custom.get(name);
  }

  /** Every custom topic. */
  customTopics(): CustomTopic[] {
    return [...this.#custom.values()];
  }

  /**
   * Adds or replaces a custom topic (idempotent: the stream and the creating
   * node both apply it). A change of `readers` revisits its subscriptions.
   */
  applyCustomTopic(topic: CustomTopic): void {
    const before = this.#custom.get(topic.name);
    this.#custom.set(topic.name, topic);
    if (before && before.readers !== topic.readers) for (const listener of this.#policyListeners) listener(topic.name);
  }

  /** Removes a custom topic; its subscriptions are revisited (and so revoked). */
  removeCustomTopic(name: string): void {
    if (!this.#custom.delete(name)) return;
    for (const listener of this.#policyListeners) listener(name);
  }

  /** The claims group policies read groups from (validated at the upgrade). */
  groupClaims(): Set<string> {
    const claims = new Set<string>();
    for (const policy of this.#policies.values()) if (policy.read === 'group') claims.add(policy.groupClaim);
    return claims;
  }

  /** Calls `listener` whenever any topic changes (after the change). */
  onChange(listener: () => void): void {
    this.#changeListeners.push(listener);
  }

  /** Calls `listener` with the name of each topic whose policy changed or that disappeared. */
  onPolicyChange(listener: (topic: string) => void): void {
    this.#policyListeners.push(listener);
  }

  /** Reads tables and policies (start-up). */
  async load(): Promise<void> {
    const [tables, policies, custom] = await Promise.all([this.#loadTables(), this.#loadPolicies(), this.#loadCustomTopics()]);
    this.#policies = policies;
    this.#custom = custom;
    this.#swap(tables);
  }

  /**
   * Reads the tables again (policies stay as the stream left them).
   * Concurrent calls share one refresh, and a call made while one runs causes
   * exactly one more afterwards.
   */
  refreshTables(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      try {
        do {
          this.#again = false;
          this.#swap(await this.#loadTables());
        } while (this.#again);
      } finally {
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }

  /** Sets (or with `null` removes) the policy of `schema.table`, synchronously. */
  applyPolicy(schema: string, table: string, policy: ReadPolicy | null): void {
    const key = `${schema}.${table}`;
    if (policy === null) this.#policies.delete(key);
    else this.#policies.set(key, policy);
    this.#swap(this.#tables);
  }

  /** Rebuilds the topics from tables × policies and tells listeners what changed. */
  #swap(tables: Map<string, TableInfo>): void {
    const before = this.#byName;
    const topics = new Map<string, TableTopic>();
    for (const [name, info] of tables) {
      const policy = this.#policies.get(`${info.schema}.${info.table}`) ?? ADMIN_ONLY;
      const previous = before.get(name);
      const unchanged = previous && previous.policy === policy && sameTable(previous, info);
      topics.set(name, unchanged ? previous : { kind: 'table', name, ...info, policy });
    }
    this.#tables = tables;
    this.#byName = topics;
    for (const listener of this.#changeListeners) listener();
    for (const [name, previous] of before) {
      const now = topics.get(name);
      if (!now || !samePolicy(now.policy, previous.policy)) for (const listener of this.#policyListeners) listener(name);
    }
  }

  async #loadTables(): Promise<Map<string, TableInfo>> {
    const { db, publicationName } = this.#options;
    const { rows } = await sql<{
      schema: string;
      table: string;
      primary_key: string[] | null;
      columns: TableColumn[];
      identity: string;
    }>`
      SELECT p.schemaname AS schema, p.tablename AS table,
             (SELECT array_agg(a.attname::text ORDER BY k.ord)
                FROM pg_index i
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = c.oid AND i.indisprimary) AS primary_key,
             (SELECT coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                         'typname', (SELECT t.typname FROM pg_type t WHERE t.oid = a.atttypid))
                                       ORDER BY a.attnum), '[]')
                FROM pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
             c.relreplident::text AS identity
        FROM pg_publication_tables p
        JOIN pg_class c ON c.oid = format('%I.%I', p.schemaname, p.tablename)::regclass
       WHERE p.pubname = ${publicationName} AND p.schemaname <> 'rowcast'`.execute(db);
    const tables = new Map<string, TableInfo>();
    for (const row of rows) {
      tables.set(tableTopicName(row.schema, row.table), {
        schema: row.schema,
        table: row.table,
        primaryKey: row.primary_key ?? [],
        columns: row.columns,
        fullIdentity: row.identity === 'f',
      });
    }
    return tables;
  }

  async #loadCustomTopics(): Promise<Map<string, CustomTopic>> {
    const rows = await this.#options.db.selectFrom('rowcast.topics').selectAll().execute();
    return new Map(rows.map((row) => [row.name, customTopicFromRow({ ...row, created_at: row.created_at.toISOString() })]));
  }

  async #loadPolicies(): Promise<Map<string, ReadPolicy>> {
    const rows = await this.#options.db.selectFrom('rowcast.table_policies').selectAll().execute();
    return new Map(rows.map((row) => [`${row.table_schema}.${row.table_name}`, policyFromRow(row)]));
  }
}

/** The custom topic a `rowcast.topics` row describes (`created_at` as ISO text). */
export function customTopicFromRow(row: {
  name: string;
  description: string;
  history: number;
  max_subscribers: number | null;
  readers: string;
  writers: string;
  created_by: string | null;
  created_at: string;
  /** Absent in rows written before presence existed (a cluster's stream may still carry them). */
  presence?: boolean | null;
}): CustomTopic {
  return Object.freeze({
    kind: 'custom',
    name: row.name,
    description: row.description,
    history: row.history,
    maxSubscribers: row.max_subscribers,
    readers: row.readers as TopicAccess,
    writers: row.writers as TopicAccess,
    presence: row.presence === true,
    createdBy: row.created_by,
    createdAt: row.created_at,
  });
}

/** The policy a `rowcast.table_policies` row describes. */
export function policyFromRow(row: {
  read: string;
  owner_column: string | null;
  group_column: string | null;
  group_claim: string | null;
  /** Absent in rows written before hidden columns existed (a cluster's stream may still carry them). */
  hidden_columns?: readonly string[] | null;
}): ReadPolicy {
  const hidden = row.hidden_columns ?? [];
  const extra = hidden.length > 0 ? { hiddenColumns: Object.freeze([...hidden]) } : {};
  switch (row.read) {
    case 'public':
      return { read: 'public', ...extra };
    case 'owner':
      return { read: 'owner', ownerColumn: row.owner_column!, ...extra };
    case 'group':
      return { read: 'group', groupColumn: row.group_column!, groupClaim: row.group_claim ?? 'groups', ...extra };
    default:
      return hidden.length > 0 ? { read: 'admin', ...extra } : ADMIN_ONLY;
  }
}

function samePolicy(a: ReadPolicy, b: ReadPolicy): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameTable(topic: TableTopic, info: TableInfo): boolean {
  return (
    topic.fullIdentity === info.fullIdentity &&
    JSON.stringify(topic.primaryKey) === JSON.stringify(info.primaryKey) &&
    JSON.stringify(topic.columns) === JSON.stringify(info.columns)
  );
}
