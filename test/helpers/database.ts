import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';

/** A database of its own for one test (and its slot, named after it). */
export interface TestDatabase {
  /** Also the slot and publication name the test's server uses. */
  readonly name: string;
  readonly url: string;
  /** Runs SQL in this database. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** A new client on this database (the caller ends it). */
  client(): Promise<pg.Client>;
  /** Drops the slot and the database. */
  drop(): Promise<void>;
}

const PREFIX = 'rowcast_t_';

function baseUrl(): string {
  const url = process.env['DATABASE_URL'];
  if (!url) throw new Error('DATABASE_URL is not set: run the suite with `npm test`');
  return url;
}

function urlOf(database: string, server = baseUrl()): string {
  const url = new URL(server);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>, server = baseUrl()): Promise<T> {
  const client = new pg.Client({ connectionString: server });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates a fresh database on the test server (or on `server`, a URL of
 * another Postgres). With `setupSql`, the rowcast migrations run first (so
 * the SQL can write policies), then the SQL.
 */
export async function createTestDatabase(setupSql?: string, server = baseUrl()): Promise<TestDatabase> {
  const name = `${PREFIX}${randomBytes(5).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`), server);
  const url = urlOf(name, server);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  if (setupSql !== undefined) {
    const kysely = createDatabase(url, { max: 1 });
    await migrateToLatest(kysely).finally(() => kysely.destroy());
    await pool.query(setupSql);
  }
  return {
    name,
    url,
    query: (text, values) => pool.query(text, values),
    client: async () => {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {});
      await client.connect();
      return client;
    },
    drop: async () => {
      await pool.end();
      await dropDatabase(name, server);
    },
  };
}

async function dropDatabase(name: string, server = baseUrl()): Promise<void> {
  await withAdmin(async (admin) => {
    // A terminated walsender takes a moment to release its slot: retry until the slot is gone.
    for (let attempt = 0; ; attempt++) {
      const { rows } = await admin.query<{ slot_name: string; active_pid: number | null }>(
        `SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1`,
        [name],
      );
      if (rows.length === 0) break;
      for (const slot of rows) {
        if (slot.active_pid !== null) await admin.query(`SELECT pg_terminate_backend($1)`, [slot.active_pid]);
        else await admin.query(`SELECT pg_drop_replication_slot($1)`, [slot.slot_name]).catch(() => {});
      }
      if (attempt > 200) throw new Error(`cannot drop the replication slots of ${name}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }, server);
}

/** The configuration of a test server on `db`: its own slot and publication, an ephemeral port. */
export function serverEnv(db: TestDatabase, secret: string): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: secret,
    SLOT_NAME: db.name,
    PUBLICATION_NAME: db.name,
  };
}

/** Removes what killed test runs left on a shared server: inactive test slots and their databases. */
export async function dropStaleTestDatabases(url: string): Promise<void> {
  process.env['DATABASE_URL'] ??= url;
  const names = await withAdmin(async (admin) => {
    const { rows } = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database d
        WHERE datname LIKE '${PREFIX}%'
          AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.database = d.datname AND s.active)`,
    );
    return rows.map((r) => r.datname);
  });
  for (const name of names) await dropDatabase(name).catch(() => {});
}
