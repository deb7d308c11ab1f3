import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { startServer, type RowcastServer, type ServerOptions } from '../../src/server/start-server.js';
import { createTestDatabase, serverEnv, type TestDatabase } from './database.js';
import { LiveClient } from './live-client.js';
import { signToken, TEST_SECRET } from './tokens.js';

export { signToken, TEST_SECRET };

/** What a test gets from {@link withServer}. */
export interface ServerFixture {
  readonly server: RowcastServer;
  readonly db: TestDatabase;
  /** `ws://127.0.0.1:<port>/live` */
  readonly liveUrl: string;
  /** Signs a token with the server's secret. */
  token(claims: Record<string, unknown>): string;
  /** Connects with a token for `claims` (or a raw token string). */
  connect(claims: Record<string, unknown> | string, query?: string): Promise<LiveClient>;
}

/** Options of a {@link withServer} test: SQL run before the server starts, extra config, and further doors. */
export interface ServerSetup {
  readonly sql?: string;
  readonly env?: Record<string, string>;
  readonly doors?: ServerOptions['doors'];
}

/**
 * An ava macro: a database of the test's own (migrated, so `setup.sql` can
 * write policies), the SQL of `setup`, a rowcast
 * server on an ephemeral port, and clean-up of all of it.
 *
 * @example
 * test('delivers inserts', withServer, { sql: 'create table t (id int primary key)' }, async (t, s) => { … });
 */
export const withServer = test.macro(
  async (t: ExecutionContext, setup: ServerSetup, body: (t: ExecutionContext, fixture: ServerFixture) => Promise<void>) => {
    const db = await createTestDatabase(setup.sql ?? '');
    const clients: LiveClient[] = [];
    let server: RowcastServer | null = null;
    try {
      const config = loadConfig({ ...serverEnv(db, TEST_SECRET), LOG_LEVEL: 'silent', ...setup.env });
      server = await startServer(config, pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' }), { doors: setup.doors ?? [] });
      const liveUrl = `ws://127.0.0.1:${server.port}/live`;
      const fixture: ServerFixture = {
        server,
        db,
        liveUrl,
        token: (claims) => signToken(claims),
        connect: async (claims, query = '') => {
          const token = typeof claims === 'string' ? claims : signToken(claims);
          const client = await LiveClient.connect(`${liveUrl}?token=${token}${query}`);
          clients.push(client);
          return client;
        },
      };
      await body(t, fixture);
    } finally {
      for (const client of clients) client.close();
      await server?.close();
      await db.drop();
    }
  },
);
