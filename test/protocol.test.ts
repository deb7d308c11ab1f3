import test from 'ava';
import { signToken, withServer } from './helpers/with-server.js';
import { attributesOf, errorOf, idOf, upgradeStatus } from './helpers/live-client.js';

const NOTES = `
  CREATE TABLE notes (id int PRIMARY KEY, text text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;

test('a missing, malformed, wrongly signed or expired token is refused with 401 at the upgrade', withServer, { sql: NOTES }, async (t, { liveUrl }) => {
  const cases = {
    missing: '',
    malformed: 'not-a-jwt',
    'wrong secret': signToken({ sub: '1' }, 'another-secret-of-enough-length'),
    expired: signToken({ sub: '1', exp: Math.floor(Date.now() / 1000) - 60 }),
  };
  for (const [name, token] of Object.entries(cases)) {
    const { status, body } = await upgradeStatus(`${liveUrl}?token=${token}`);
    t.is(status, 401, name);
    t.is(JSON.parse(body).error.code, 'TOKEN_INVALID', name);
  }
});

test('the session frame names the connection, the user and the limits', withServer, { sql: NOTES }, async (t, { connect }) => {
  const client = await connect({ sub: 42, role: 'user' }, '&client=my app!');
  t.like(client.frames[0], { type: 'session', status: 'open', data: { user: { sub: '42', role: 'user' } } });
  t.regex(client.session.connectionId, /^myapp-[0-9a-f]{12}$/);
  t.deepEqual(client.session.limits, {
    maxMessageBytes: 1_048_576,
    messagesPerSecond: 100,
    maxSubscriptions: 100,
    maxSubscriptionsPerUser: 1000,
    maxFrameDepth: 32,
    maxPendingRequests: 1000,
    maxFilterValues: 100,
    maxFilterValueLength: 256,
    maxFilterKeyBytes: 4096,
    maxFilterGroupsPerConnection: 32,
    maxPresenceMetaBytes: 1024,
    presenceTracksPerSecond: 10,
  });
});

test('bad frames get coded errors and the connection keeps working', withServer, { sql: NOTES }, async (t, { db, connect }) => {
  const client = await connect({ sub: '1' });

  client.sendRaw('this is not json');
  t.like(await client.next(), { type: 'error', error: { code: 'INVALID_MESSAGE' } });

  client.sendRaw('[1, 2, 3]');
  t.like(await client.next(), { type: 'error', error: { code: 'INVALID_MESSAGE' } });

  // Whatever else is wrong, a frame with a valid id is answered with that id.
  client.sendRaw('{"id": 5, "attributes": {}}');
  t.like(await client.next(), { type: 'response', id: 5, ok: false, error: { code: 'INVALID_MESSAGE' } });
  client.sendRaw('{"id": "x", "method": 7}');
  t.like(await client.next(), { type: 'response', id: 'x', ok: false, error: { code: 'INVALID_MESSAGE' } });

  t.like(await client.request('explode'), { type: 'response', method: 'explode', ok: false, error: { code: 'UNKNOWN_METHOD' } });

  const missing = await client.request('subscribe', {});
  t.like(missing, { ok: false, method: 'subscribe', error: { code: 'INVALID_ATTRIBUTES' } });
  t.regex(errorOf(missing).message, /topicName/);

  t.like(await client.request('subscribe', { topicName: 42 }), { ok: false, error: { code: 'INVALID_ATTRIBUTES' } });
  t.like(await client.request('subscribe', { topicName: ' , ' }), { ok: false, error: { code: 'INVALID_ATTRIBUTES' } });

  // Text Postgres cannot store (U+0000, lone surrogates) is refused before it reaches a query.
  const nul = await client.request('get-topic', { topicName: 'notes\u0000' });
  t.like(nul, { ok: false, error: { code: 'INVALID_ATTRIBUTES' } });
  t.regex(errorOf(nul).message, /attributes\.topicName/);
  t.like(await client.request('get-topic', { topicName: 'notes\ud800' }), { ok: false, error: { code: 'INVALID_ATTRIBUTES' } });

  client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
  t.like(await client.next(), { type: 'error', error: { code: 'INVALID_MESSAGE' } });

  // Still the same connection, still working.
  client.sendRaw('{"id": 77, "method": "ping"}');
  t.deepEqual(await client.next(), { type: 'pong', id: 77 });
  await client.subscribe('notes');
  await db.query(`INSERT INTO notes VALUES (1, 'still here')`);
  const [event] = await client.events(1);
  t.is(attributesOf(event!)['text'], 'still here');
  t.is(client.closeCode, null);
});

test('responses echo string and number ids, and ping answers pong', withServer, { sql: NOTES }, async (t, { connect }) => {
  const client = await connect({ sub: '1' });
  client.sendRaw(JSON.stringify({ id: 'abc', method: 'subscribe', attributes: { topicName: 'notes' } }));
  t.like(await client.next((f) => f.type === 'response'), { id: 'abc', method: 'subscribe', ok: true, data: { topics: ['notes'] } });
  client.sendRaw(JSON.stringify({ method: 'ping' }));
  t.deepEqual(await client.next(), { type: 'pong' });
  client.sendRaw(JSON.stringify({ id: 9, method: 'ping' }));
  t.deepEqual(await client.next(), { type: 'pong', id: 9 });
});

test('list-topic and get-topic describe readable tables', withServer, { sql: NOTES }, async (t, { connect }) => {
  const client = await connect({ sub: '1' });
  const list = await client.call('list-topic');
  t.deepEqual(list.topics, [{ name: 'notes', kind: 'table', schema: 'public', table: 'notes', read: 'public' }]);
  t.like(await client.request('get-topic', { topicName: 'notes' }), { ok: true, data: { name: 'notes', read: 'public' } });
});

test('subscribe with since says plainly that it did not resume', withServer, { sql: NOTES }, async (t, { connect }) => {
  const client = await connect({ sub: '1' });
  const response = await client.subscribe('notes', { since: '0000000001000000-00000000' });
  t.is(response.data.resumed, false);
});

test('pipelined requests are answered in the order they were sent, slow ones too', withServer, { sql: NOTES }, async (t, { connect }) => {
  const admin = await connect({ sub: 'ops', role: 'admin' });
  await admin.call('create-topic', { name: 'chat' });
  // A stored message answers only once the stream has delivered it: the two after the first wait in the queue.
  for (const id of ['a', 'b', 'c']) admin.sendRaw(JSON.stringify({ id, method: 'new-message', attributes: { topicName: 'chat', message: id } }));
  await admin.next((f) => idOf(f) === 'a');
  // Sent while b runs and c waits: it must not overtake c.
  admin.sendRaw(JSON.stringify({ id: 'x', method: 'ping' }));
  for (let i = 0; i < 10; i++) admin.sendRaw(JSON.stringify({ id: `l${i}`, method: i % 2 === 0 ? 'list-topic' : 'ping' }));
  await admin.next((f) => idOf(f) === 'l9');
  const order = admin.frames.map(idOf).filter((id) => id !== undefined && id !== 1 && id !== 2);
  t.deepEqual(order, ['a', 'b', 'c', 'x', ...Array.from({ length: 10 }, (_, i) => `l${i}`)]);
});
