import { randomBytes } from 'node:crypto';
import test from 'ava';
import { pino } from 'pino';
import { loadConfig } from '../src/config/config.js';
import { StartupError } from '../src/errors.js';
import { startServer } from '../src/server.js';
import { createTestDatabase } from './helpers/database.js';
import { TEST_SECRET } from './helpers/with-server.js';

test('an invalid configuration value stops start-up naming the key and the expected form', (t) => {
  const error = t.throws(() => loadConfig({ PORT: 'http', LOG_LEVEL: 'loud', MAX_CONNECTIONS: '10' }), { instanceOf: StartupError });
  t.regex(error!.message, /PORT="http"/);
  t.regex(error!.message, /LOG_LEVEL="loud"/);
  t.notRegex(error!.message, /MAX_CONNECTIONS/);
});

test('defaults are those of DESIGN.md §6 and the result is frozen', (t) => {
  const config = loadConfig({});
  t.like(config, { PORT: 6336, HOST: '0.0.0.0', SLOT_NAME: 'rowcast', PUBLICATION_NAME: 'rowcast', MAX_SUBSCRIPTIONS: 100, ALLOW_ANONYMOUS: false });
  t.true(Object.isFrozen(config));
});

test('a role without replication rights stops start-up with one message saying what to change', async (t) => {
  const db = await createTestDatabase();
  const role = `rowcast_norepl_${randomBytes(4).toString('hex')}`;
  try {
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw' NOREPLICATION NOSUPERUSER`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw';
    const config = loadConfig({ DATABASE_URL: url.toString(), JWT_SECRET: TEST_SECRET, PORT: '0', SLOT_NAME: db.name, PUBLICATION_NAME: db.name });
    const error = await t.throwsAsync(startServer(config, pino({ level: 'silent' })), { instanceOf: StartupError });
    t.regex(error!.message, new RegExp(`ALTER ROLE "${role}" WITH REPLICATION`));
  } finally {
    await db.query(`DROP ROLE IF EXISTS ${role}`);
    await db.drop();
  }
});

test('with DATABASE_URL set, a missing JWT_SECRET stops start-up', async (t) => {
  const db = await createTestDatabase();
  try {
    const config = loadConfig({ DATABASE_URL: db.url, PORT: '0' });
    const error = await t.throwsAsync(startServer(config, pino({ level: 'silent' })), { instanceOf: StartupError });
    t.regex(error!.message, /JWT_SECRET/);
  } finally {
    await db.drop();
  }
});
