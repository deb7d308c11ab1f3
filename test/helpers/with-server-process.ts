import test, { type ExecutionContext } from 'ava';
import type { RunningPostgres } from '../../src/db/embedded-postgres.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { startPrivatePostgres } from './private-postgres.js';
import { ServerProcess } from './server-process.js';

/** What a test gets from {@link withServerProcess}. */
export interface ProcessFixture {
  readonly db: TestDatabase;
  /**
   * Starts `rowcast serve` on `db` (with `env` over the test configuration
   * of `serverEnv`) and waits until it listens. Every server started here is
   * killed (SIGKILL) when the test ends, however it ends; one the test has
   * killed already is left alone.
   */
  start(env?: Record<string, string>): Promise<ServerProcess>;
  /** The test's own Postgres, to stop and restart (only with `privatePostgres`: otherwise reading it throws). */
  readonly postgres: RunningPostgres;
}

/** Options of a {@link withServerProcess} test. */
export interface ProcessSetup {
  /** SQL run after the rowcast migrations; without it the database is left empty (not migrated). */
  readonly sql?: string;
  /** Make the database on a Postgres of the test's own instead of the shared test server. */
  readonly privatePostgres?: boolean;
}

/**
 * An ava macro for tests that run the server as a separate process (to kill
 * it, restart it, or measure it): a database of the test's own, a `start`
 * for servers on it, and, when the test ends, every server killed and the
 * database dropped (or the private Postgres destroyed). The clean-up is
 * registered with `t.teardown` before the test body runs, so it runs after
 * the body's own teardowns (its clients close first), whether the body
 * passed, failed or threw.
 *
 * @example
 * test('resumes after SIGKILL', withServerProcess, { sql: NOTES }, async (t, { db, start }) => {
 *   let server = await start();
 *   await server.kill('SIGKILL');
 *   server = await start();
 * });
 */
export const withServerProcess = test.macro(
  async (t: ExecutionContext, setup: ProcessSetup, body: (t: ExecutionContext, fixture: ProcessFixture) => Promise<void>) => {
    const postgres = setup.privatePostgres ? await startPrivatePostgres() : null;
    const servers: ServerProcess[] = [];
    // A private Postgres goes whole, with the database in it; on the shared server the database is dropped.
    let removeDatabase = async (): Promise<void> => {
      await postgres?.destroy();
    };
    t.teardown(async () => {
      await Promise.all(servers.map((server) => server.kill('SIGKILL')));
      await removeDatabase();
    });
    const db = await createTestDatabase(setup.sql, postgres?.url);
    if (!postgres) removeDatabase = () => db.drop();
    await body(t, {
      db,
      get postgres() {
        if (!postgres) throw new Error('fixture.postgres: only with privatePostgres: true');
        return postgres.server;
      },
      start: async (env = {}) => {
        const server = await ServerProcess.start(db, env);
        servers.push(server);
        return server;
      },
    });
  },
);
