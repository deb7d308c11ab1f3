/**
 * Issue 6, limits: origins, connection and subscription caps, frame size,
 * binary frames and the per-connection rate limit. Each offender is told
 * what it did; everyone else keeps working.
 */
import test from 'ava';
import { CLOSE_CODES } from '../src/protocol/index.js';
import { errorOf, idOf, isEvent, LiveClient, upgradeStatus } from './helpers/live-client.js';
import { signToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

const NOTES = `
  CREATE TABLE notes (id int PRIMARY KEY, body text);
  CREATE TABLE more (id int PRIMARY KEY);
  CREATE TABLE most (id int PRIMARY KEY);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public'), ('more', 'public'), ('most', 'public');`;

test('ALLOWED_ORIGINS: another origin is 403 at the upgrade; listed origins and non-browser clients pass', withServer, {
  sql: NOTES,
  env: { ALLOWED_ORIGINS: 'https://app.example.com, https://admin.example.com' },
}, async (t, { liveUrl }) => {
  const url = `${liveUrl}?token=${signToken({ sub: '1' })}`;
  const evil = await upgradeStatus(url, undefined, { origin: 'https://evil.example.com' });
  t.is(evil.status, 403);
  t.like(JSON.parse(evil.body), { error: { code: 'FORBIDDEN' } });
  // Every refusal names the setting to change (docs/security.md).
  t.regex(JSON.parse(evil.body).error.message, /ALLOWED_ORIGINS/);
  t.is((await upgradeStatus(url, undefined, { origin: 'https://admin.example.com' })).status, 101);
  t.is((await upgradeStatus(url, undefined, { origin: 'HTTPS://APP.EXAMPLE.COM' })).status, 101);
  t.is((await upgradeStatus(url)).status, 101);
});

test('MAX_CONNECTIONS: the next upgrade is 503; a slot frees when a connection closes', withServer, { sql: NOTES, env: { MAX_CONNECTIONS: '2' } }, async (t, { liveUrl, connect, server }) => {
  const first = await connect({ sub: '1' });
  await connect({ sub: '2' });
  const refused = await upgradeStatus(`${liveUrl}?token=${signToken({ sub: '3' })}`);
  t.is(refused.status, 503);
  t.like(JSON.parse(refused.body), { error: { code: 'LIMIT_EXCEEDED' } });
  first.close();
  await waitFor('the server to see the close', () => server.status().connections === 1);
  const again = await LiveClient.connect(`${liveUrl}?token=${signToken({ sub: '3' })}`);
  t.like(again.frames[0], { type: 'session' });
  again.close();
});

test('MAX_SUBSCRIPTIONS: one topic too many is LIMIT_EXCEEDED and the others stay', withServer, { sql: NOTES, env: { MAX_SUBSCRIPTIONS: '2' } }, async (t, { connect, db }) => {
  const client = await connect({ sub: '1' });
  await client.subscribe('notes');
  await client.subscribe('more');
  t.like(await client.request('subscribe', { topicName: 'most' }), { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  // Subscribing again to a held topic is not one more.
  t.like(await client.request('subscribe', { topicName: 'notes' }), { ok: true });
  await db.query(`INSERT INTO notes VALUES (1, 'x')`);
  t.like(await client.next(isEvent), { topic: 'notes' });
});

test('a frame over MAX_MESSAGE_BYTES closes that connection with 1009; binary frames get INVALID_MESSAGE', withServer, { sql: NOTES, env: { MAX_MESSAGE_BYTES: '2048' } }, async (t, { connect, db }) => {
  const bystander = await connect({ sub: 'b' });
  await bystander.subscribe('notes');
  const binary = await connect({ sub: 'bin' });
  binary.socket.send(Buffer.from('{"method":"ping"}'), { binary: true });
  t.like(await binary.next((f) => f.type === 'error'), { error: { code: 'INVALID_MESSAGE' } });
  t.like(await binary.request('ping'), { type: 'pong' });

  const big = await connect({ sub: 'big' });
  big.sendRaw(JSON.stringify({ id: 1, method: 'ping', attributes: { pad: 'x'.repeat(4000) } }));
  t.is(await big.closed(), CLOSE_CODES.MESSAGE_TOO_BIG);
  await db.query(`INSERT INTO notes VALUES (1, 'still flowing')`);
  t.like(await bystander.next(isEvent), { data: { id: '1' } });
});

test('over the rate limit: RATE_LIMIT_EXCEEDED with retryAfter, the request is not run; flooding on closes with 1008', withServer, {
  sql: NOTES,
  env: { RATE_LIMIT_PER_SECOND: '5', RATE_LIMIT_BURST: '5' },
}, async (t, { connect, db }) => {
  const admin = await connect({ sub: 'a', role: 'admin' });
  for (let i = 1; i <= 5; i++) admin.sendRaw(JSON.stringify({ id: i, method: 'ping' }));
  admin.sendRaw(JSON.stringify({ id: 6, method: 'create-topic', attributes: { name: 'not-made' } }));
  for (let i = 1; i <= 5; i++) t.like(await admin.next((f) => idOf(f) === i), { type: 'pong' });
  const refused = await admin.next((f) => idOf(f) === 6);
  t.like(refused, { type: 'response', method: 'create-topic', ok: false, error: { code: 'RATE_LIMIT_EXCEEDED' } });
  const { retryAfter } = errorOf(refused);
  t.true(retryAfter !== undefined && retryAfter > 0 && retryAfter <= 200, `retryAfter ${retryAfter}`);
  const { rows } = await db.query(`SELECT 1 FROM rowcast.topics WHERE name = 'not-made'`);
  t.is(rows.length, 0, 'the refused request did not run');
  const other = await connect({ sub: 'o' });
  t.like(await other.request('ping'), { type: 'pong' }, 'other connections are not limited');

  for (let i = 0; i < 50; i++) admin.sendRaw(JSON.stringify({ id: 100 + i, method: 'ping' }));
  t.is(await admin.closed(), CLOSE_CODES.POLICY_VIOLATION);
  t.like(await other.request('ping'), { type: 'pong' });
});

test('a handler that fails on its dependency answers INTERNAL with a correlation id that is in the log; the connection and the server go on', withServerProcess, { sql: NOTES }, async (t, { db, start }) => {
  const server = await start();
  const admin = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'a', role: 'admin' })}`);
  await admin.call('create-topic', { name: 'room' });
  await db.query(`ALTER TABLE rowcast.messages RENAME TO messages_away`);
  const failed = await admin.request('history', { topicName: 'room' });
  t.like(failed, { ok: false, error: { code: 'INTERNAL' } });
  const correlationId = /correlation id ([0-9a-f-]{36})/.exec(errorOf(failed).message)?.[1];
  t.truthy(correlationId);
  const line = await server.waitForLog((l) => l['correlationId'] === correlationId);
  t.is(line['method'], 'history');
  await db.query(`ALTER TABLE rowcast.messages_away RENAME TO messages`);
  t.like(await admin.request('history', { topicName: 'room' }), { ok: true });
  t.is(admin.closeCode, null);
});
