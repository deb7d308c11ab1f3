import { sql, type Kysely } from 'kysely';

/**
 * Setting a policy sets `REPLICA IDENTITY FULL` on its table in the same
 * transaction, so no update between the two can lack the old row. For
 * `owner` and `group`, which cannot route moves and deletes without it, a
 * table that cannot be altered (not its owner, no such table) makes the
 * policy write fail; for `public` and `admin` it is a warning.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION rowcast.table_policy_identity() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      target regclass := to_regclass(format('%I.%I', NEW.table_schema, NEW.table_name));
    BEGIN
      IF target IS NULL THEN
        IF NEW.read IN ('owner', 'group') THEN
          RAISE EXCEPTION 'rowcast: no table %.% for a % policy', NEW.table_schema, NEW.table_name, NEW.read;
        END IF;
        RETURN NEW;
      END IF;
      IF (SELECT relreplident FROM pg_class WHERE oid = target) = 'f' THEN
        RETURN NEW;
      END IF;
      IF NEW.read IN ('owner', 'group') THEN
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', target);
      ELSE
        BEGIN
          EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', target);
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE WARNING 'rowcast: cannot set REPLICA IDENTITY FULL on %: updates will lack data.old', target;
        END;
      END IF;
      RETURN NEW;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER table_policy_identity BEFORE INSERT OR UPDATE ON rowcast.table_policies
      FOR EACH ROW EXECUTE FUNCTION rowcast.table_policy_identity()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TRIGGER table_policy_identity ON rowcast.table_policies`.execute(db);
  await sql`DROP FUNCTION rowcast.table_policy_identity()`.execute(db);
}
