import { sql, type Kysely } from 'kysely';

/**
 * The rowcast schema (DESIGN.md §5): read policies per table, custom topics,
 * and the messages of custom topics.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE SCHEMA IF NOT EXISTS rowcast`.execute(db);
  await db.schema
    .withSchema('rowcast')
    .createTable('table_policies')
    .addColumn('table_schema', 'text', (c) => c.notNull().defaultTo('public'))
    .addColumn('table_name', 'text', (c) => c.notNull())
    .addColumn('read', 'text', (c) =>
      c.notNull().check(sql`read IN ('public', 'owner', 'group', 'admin')`),
    )
    .addColumn('owner_column', 'text')
    .addColumn('group_column', 'text')
    .addColumn('group_claim', 'text', (c) => c.notNull().defaultTo('groups'))
    .addPrimaryKeyConstraint('table_policies_pkey', ['table_schema', 'table_name'])
    .addCheckConstraint('owner_needs_column', sql`read <> 'owner' OR owner_column IS NOT NULL`)
    .addCheckConstraint('group_needs_column', sql`read <> 'group' OR group_column IS NOT NULL`)
    .execute();
  await db.schema
    .withSchema('rowcast')
    .createTable('topics')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('history', 'integer', (c) => c.notNull().defaultTo(100).check(sql`history >= 0`))
    .addColumn('max_subscribers', 'integer', (c) => c.check(sql`max_subscribers > 0`))
    .addColumn('readers', 'text', (c) =>
      c.notNull().defaultTo('authenticated').check(sql`readers IN ('anyone', 'authenticated', 'admin')`),
    )
    .addColumn('writers', 'text', (c) =>
      c.notNull().defaultTo('authenticated').check(sql`writers IN ('anyone', 'authenticated', 'admin')`),
    )
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .withSchema('rowcast')
    .createTable('messages')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('topic', 'text', (c) => c.notNull().references('rowcast.topics.name').onDelete('cascade'))
    .addColumn('sender', 'text')
    .addColumn('message', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // Newest-first reads and pruning per topic walk this index, never the table.
  await db.schema
    .withSchema('rowcast')
    .createIndex('messages_topic_id')
    .on('messages')
    .columns(['topic', 'id desc'])
    .execute();
  // Deletes of messages and policy rows must carry the whole old row.
  await sql`ALTER TABLE rowcast.messages REPLICA IDENTITY FULL`.execute(db);
  await sql`ALTER TABLE rowcast.table_policies REPLICA IDENTITY FULL`.execute(db);
  await sql`ALTER TABLE rowcast.topics REPLICA IDENTITY FULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP SCHEMA rowcast CASCADE`.execute(db);
}
