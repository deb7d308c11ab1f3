import { sql, type Kysely } from 'kysely';

/**
 * `rowcast.table_policies.hidden_columns`: columns never sent to non-admins
 * (docs/protocol.md, "Hidden columns"). A trigger refuses a column the
 * table does not have and a primary key column (it is every event's `id`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rowcast.table_policies ADD COLUMN hidden_columns text[] NOT NULL DEFAULT '{}'`.execute(db);
  await sql`
    CREATE FUNCTION rowcast.table_policy_hidden_columns() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      target regclass := to_regclass(format('%I.%I', NEW.table_schema, NEW.table_name));
      hidden text;
    BEGIN
      IF cardinality(NEW.hidden_columns) = 0 THEN
        RETURN NEW;
      END IF;
      IF target IS NULL THEN
        RAISE EXCEPTION 'rowcast: no table %.% to hide columns of', NEW.table_schema, NEW.table_name;
      END IF;
      FOREACH hidden IN ARRAY NEW.hidden_columns LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = target AND attname = hidden AND attnum > 0 AND NOT attisdropped) THEN
          RAISE EXCEPTION 'rowcast: hidden column % is not a column of %', hidden, target;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                    WHERE i.indrelid = target AND i.indisprimary AND a.attname = hidden) THEN
          RAISE EXCEPTION 'rowcast: % is part of the primary key of %: it is every event''s id and cannot be hidden', hidden, target;
        END IF;
      END LOOP;
      RETURN NEW;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER table_policy_hidden_columns BEFORE INSERT OR UPDATE ON rowcast.table_policies
      FOR EACH ROW EXECUTE FUNCTION rowcast.table_policy_hidden_columns()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TRIGGER table_policy_hidden_columns ON rowcast.table_policies`.execute(db);
  await sql`DROP FUNCTION rowcast.table_policy_hidden_columns()`.execute(db);
  await sql`ALTER TABLE rowcast.table_policies DROP COLUMN hidden_columns`.execute(db);
}
