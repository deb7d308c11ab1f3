import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { loadConfig } from '../src/config/config.js';
import { StartupError } from '../src/errors.js';
import { startServer } from '../src/server/start-server.js';
import { createTestDatabase } from './helpers/database.js';
import { ServerProcess } from './helpers/server-process.js';
import { TEST_SECRET } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

test('an invalid configuration value stops start-up naming the key and the expected form', (t) => {
  const error = t.throws(() => loadConfig({ PORT: 'http', LOG_LEVEL: 'loud', MAX_CONNECTIONS: '10' }), { instanceOf: StartupError });
  t.regex(error!.message, /PORT="http"/);
  t.regex(error!.message, /LOG_LEVEL="loud"/);
  t.notRegex(error!.message, /MAX_CONNECTIONS/);
});

test('a JSON config file gives the same keys; the environment wins; its unknown keys and bad values are named', (t) => {
  const config = loadConfig({ PORT: '7000' }, { PORT: 8000, LOG_LEVEL: 'debug', ALLOW_ANONYMOUS: true, JWT_ALGORITHMS: 'RS256, ES256' });
  t.like(config, { PORT: 7000, LOG_LEVEL: 'debug', ALLOW_ANONYMOUS: true, JWT_ALGORITHMS: ['RS256', 'ES256'] });
  t.regex(t.throws(() => loadConfig({}, { PORT: 8000, PROT: 1 }))!.message, /unknown key PROT/);
  t.regex(t.throws(() => loadConfig({}, { MAX_CONNECTIONS: -1 }))!.message, /MAX_CONNECTIONS="-1"/);
  t.regex(t.throws(() => loadConfig({}, { HOST: ['a'] }))!.message, /HOST must be a string, number or boolean/);
  t.regex(t.throws(() => loadConfig({ JWT_ALGORITHMS: 'HS256,none' }))!.message, /JWT_ALGORITHMS="HS256,none": .*never none/);
});

test('rowcast serve --config with a bad value exits 1 naming the key; a missing file is named too', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rowcast-config-'));
  const file = path.join(dir, 'rowcast.json');
  writeFileSync(file, JSON.stringify({ PORT: 'http' }));
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['dist/src/cli/main.js', 'serve', ...args], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
  const bad = await run(['--config', file]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /PORT="http"/);
  const missing = await run(['--config', path.join(dir, 'nope.json')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /nope\.json: cannot read it/);
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

test('a transaction left open holds slot creation: start-up names it every 10 s, and starts once it ends', withServerProcess, { sql: 'CREATE TABLE held (id int)', privatePostgres: true }, async (t, { db }) => {
  // On a Postgres of the test's own: the open transaction would hold every other test's slot creation too.
  const holder = await db.client();
  t.teardown(() => holder.end());
  await holder.query(`SET application_name = 'held-open'`);
  await holder.query('BEGIN');
  await holder.query('INSERT INTO held VALUES (1)');
  const server = ServerProcess.spawn(db);
  t.teardown(() => server.kill('SIGKILL'));
  const wait = await server.waitForLog((l) => l['msg']?.startsWith('creating the replication slot is waiting'), 30_000);
  t.like(wait, { level: 40, slot: db.name });
  t.true(wait['seconds'] >= 10);
  t.like(wait['transactions'][0], { application: 'held-open', database: db.name, state: 'idle in transaction' });
  t.false(server.logs.some((l) => l['msg'] === 'rowcast started'));
  await holder.query('COMMIT');
  // A checkpoint logs the snapshot of running transactions the slot waits for (else the next comes within 15 s).
  await db.query('CHECKPOINT');
  await server.listening();
});
