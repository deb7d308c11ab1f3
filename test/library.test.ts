/**
 * Library mode (docs/library.md): `createRowcast(options)` runs the server
 * inside the host's process, on `databaseUrl` or an embedded Postgres, and
 * gives the host publish, connections, topics and status.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { StartupError } from '../src/errors.js';
import { createRowcast } from '../src/library/index.js';
import { createTestDatabase } from './helpers/database.js';
import { freePort } from './helpers/free-port.js';
import { LiveClient } from './helpers/live-client.js';
import { signToken, TEST_SECRET } from './helpers/tokens.js';

test('createRowcast on DATABASE_URL: start, a client connects, the host publishes, lists and closes connections, stop closes the rest', async (t) => {
  const db = await createTestDatabase();
  const rowcast = createRowcast({
    databaseUrl: db.url,
    jwtSecret: TEST_SECRET,
    port: 0,
    host: '127.0.0.1',
    slotName: db.name,
    publicationName: db.name,
    logLevel: 'silent',
  });
  try {
    const started = await rowcast.start();
    t.false(started.embedded);
    const url = `ws://127.0.0.1:${started.port}/live`;
    const admin = await LiveClient.connect(`${url}?token=${signToken({ sub: 'admin', role: 'admin' })}`);
    await admin.call('create-topic', { name: 'news', history: 10 });
    const reader = await LiveClient.connect(`${url}?token=${signToken({ sub: 'reader' })}&client=reader-app`);
    await reader.subscribe('news');

    const published = await rowcast.publish('news', { text: 'from the host' });
    t.regex(published.id, /^\d+$/);
    const message = await reader.next((f) => f.type === 'event' && f.topic === 'news');
    t.like(message, { event: 'new-message', data: { attributes: { message: { text: 'from the host' }, sender: null } } });

    t.true((await rowcast.topics()).topics.some((topic) => topic.name === 'news'));
    const connections = rowcast.connections();
    t.is(connections.length, 2);
    const readerInfo = connections.find((c) => c.client === 'reader-app')!;
    t.like(readerInfo, { door: 'live', user: { sub: 'reader' }, subscriptions: ['news'] });
    t.is(rowcast.status().connections, 2);

    t.true(rowcast.closeConnection(readerInfo.id, 'bye'));
    t.is(await reader.closed(), 1008);
    await rowcast.stop();
    t.is(await admin.closed(), 1001);
    t.throws(() => rowcast.connections(), { message: /not started/ });
  } finally {
    await rowcast.stop();
    await db.drop();
  }
});

test('createRowcast checks its options like the configuration, naming the key', (t) => {
  const error = t.throws(() => createRowcast({ maxSubscriptions: 0 }), { instanceOf: StartupError });
  t.regex(error!.message, /MAX_SUBSCRIPTIONS/);
  t.throws(() => createRowcast({ nope: 1 } as never), { instanceOf: StartupError, message: /unknown key NOPE/ });
});

test('createRowcast without databaseUrl runs the embedded Postgres', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'rowcast-library-'));
  const rowcast = createRowcast({ dataDir, embeddedPgPort: await freePort(), jwtSecret: TEST_SECRET, port: 0, host: '127.0.0.1', logLevel: 'silent' });
  try {
    const started = await rowcast.start();
    t.true(started.embedded);
    const client = await LiveClient.connect(`ws://127.0.0.1:${started.port}/live?token=${signToken({ sub: 'admin', role: 'admin' })}`);
    t.like(await client.call('create-topic', { name: 'embedded' }), { name: 'embedded' });
    client.close();
  } finally {
    await rowcast.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("the package's main export is createRowcast (import { createRowcast } from 'rowcast', from the build)", async (t) => {
  const name = 'rowcast';
  const library = (await import(name)) as Record<string, unknown>;
  t.is(typeof library['createRowcast'], 'function');
});
