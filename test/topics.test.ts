import test from 'ava';
import type { Method } from '../src/protocol/index.js';
import { attributesOf, errorOf, isEvent, isOk, LiveClient } from './helpers/live-client.js';
import { signToken, withServer } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

const TABLES = `
  CREATE TABLE orders (id int PRIMARY KEY);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('orders', 'public');`;

const ADMIN = { sub: 'admin-1', role: 'admin' };

function ok<M extends Method>(client: LiveClient, method: M, attributes: Record<string, unknown> = {}) {
  return client.call(method, attributes);
}

test('an admin creates a topic, two users subscribe, one publishes, both receive it with sender and time', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  const created = await ok(admin, 'create-topic', { name: 'chat-room-1', description: 'general chat' });
  t.like(created, { name: 'chat-room-1', kind: 'custom', description: 'general chat', history: 100, readers: 'authenticated', writers: 'authenticated', createdBy: 'admin-1' });

  const alice = await connect({ sub: 'alice' });
  const bob = await connect({ sub: 'bob' });
  await alice.subscribe('chat-room-1');
  await bob.subscribe('chat-room-1');
  const sent = await ok(alice, 'new-message', { topicName: 'chat-room-1', message: { text: 'Hello everyone!' } });
  t.regex(sent.id, /^\d+$/);
  t.regex(sent.seq ?? '', /^[0-9A-F]{16}-[0-9A-F]{8}$/);

  for (const client of [alice, bob]) {
    const event = await client.next(isEvent);
    t.like(event, { topic: 'chat-room-1', event: 'new-message', seq: sent.seq, data: { type: 'message', id: sent.id, attributes: { message: { text: 'Hello everyone!' }, sender: 'alice' } } });
    t.false(Number.isNaN(Date.parse(String(attributesOf(event)['createdAt']))));
  }
});

test('who may create, write and read: FORBIDDEN, READ_ONLY_TOPIC, TOPIC_NOT_FOUND', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  const user = await connect({ sub: 'u1' });
  t.like(await user.request('create-topic', { name: 'mine' }), { ok: false, error: { code: 'FORBIDDEN' } });
  await ok(admin, 'create-topic', { name: 'announcements', writers: 'admin' });
  await ok(admin, 'create-topic', { name: 'staff', readers: 'admin', writers: 'admin' });

  await user.subscribe('announcements');
  t.like(await user.request('new-message', { topicName: 'announcements', message: 'hi' }), { ok: false, error: { code: 'FORBIDDEN' } });
  t.like(await user.request('new-message', { topicName: 'orders', message: 'hi' }), { ok: false, error: { code: 'READ_ONLY_TOPIC' } });
  t.like(await user.request('subscribe', { topicName: 'staff' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  t.like(await user.request('new-message', { topicName: 'staff', message: 'hi' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  t.like(await user.request('history', { topicName: 'staff' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });

  const list = await ok(user, 'list-topic');
  t.deepEqual(list.topics.map((x) => x.name), ['announcements', 'orders']);
  t.like(await ok(user, 'get-topic', { topicName: 'announcements' }), { name: 'announcements', kind: 'custom', writers: 'admin', subscribers: 1 });

  await ok(admin, 'new-message', { topicName: 'announcements', message: 'from the admin' });
  t.like(await user.next(isEvent), { event: 'new-message', data: { attributes: { message: 'from the admin', sender: 'admin-1' } } });
});

test('names: duplicates and table names are TOPIC_EXISTS, malformed names INVALID_ATTRIBUTES', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await ok(admin, 'create-topic', { name: 'room.1:a_b-c' });
  t.like(await admin.request('create-topic', { name: 'room.1:a_b-c' }), { ok: false, error: { code: 'TOPIC_EXISTS' } });
  t.like(await admin.request('create-topic', { name: 'orders' }), { ok: false, error: { code: 'TOPIC_EXISTS' } });
  for (const name of ['', '-starts-with-dash', 'has space', 'x'.repeat(129), 'ünïcode', 'a/b']) {
    t.like(await admin.request('create-topic', { name }), { ok: false, error: { code: 'INVALID_ATTRIBUTES' } }, name);
  }
  t.like(await admin.request('create-topic', { name: 'x'.repeat(128) }), { ok: true });
});

test('maxSubscribers holds under concurrent subscribes', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await ok(admin, 'create-topic', { name: 'small', maxSubscribers: 3 });
  const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => connect({ sub: `u${i}` })));
  const responses = await Promise.all(clients.map((c) => c.request('subscribe', { topicName: 'small' })));
  t.is(responses.filter(isOk).length, 3);
  t.true(responses.filter((r) => !isOk(r)).every((r) => errorOf(r).code === 'TOPIC_FULL'));
});

test('a message over the size limit is LIMIT_EXCEEDED and the connection stays up', withServer, { sql: TABLES, env: { MAX_CHAT_MESSAGE_BYTES: '1000' } }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await ok(admin, 'create-topic', { name: 'room' });
  await admin.subscribe('room');
  t.like(await admin.request('new-message', { topicName: 'room', message: 'x'.repeat(2000) }), { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  await ok(admin, 'new-message', { topicName: 'room', message: 'small' });
  t.like(await admin.next(isEvent), { data: { attributes: { message: 'small' } } });
  t.is(admin.closeCode, null);
});

test('1,000 messages from 10 connections reach every subscriber once each, in the same order', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await ok(admin, 'create-topic', { name: 'busy', history: 2000 });
  const subscribers = await Promise.all(Array.from({ length: 3 }, (_, i) => connect({ sub: `reader${i}` })));
  for (const s of subscribers) await s.subscribe('busy');
  const writers = await Promise.all(Array.from({ length: 10 }, (_, i) => connect({ sub: `writer${i}` })));
  const sent = await Promise.all(
    writers.flatMap((w, i) => Array.from({ length: 100 }, (_, j) => ok(w, 'new-message', { topicName: 'busy', message: { from: i, n: j } }))),
  );
  t.is(new Set(sent.map((s) => s.id)).size, 1000);
  const orders = [];
  for (const s of subscribers) {
    const events = await s.events(1000, 20_000);
    t.is(new Set(events.map((e) => e.data.id)).size, 1000);
    orders.push(events.map((e) => e.seq).join(','));
    t.deepEqual(events.map((e) => e.seq), [...events.map((e) => e.seq)].sort());
  }
  t.is(new Set(orders).size, 1);
});

test('ephemeral topics deliver at once and keep nothing', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await ok(admin, 'create-topic', { name: 'typing', history: 0, readers: 'authenticated', writers: 'authenticated' });
  const a = await connect({ sub: 'a' });
  await a.subscribe('typing');
  const first = await ok(a, 'new-message', { topicName: 'typing', message: { typing: true } });
  const second = await ok(a, 'new-message', { topicName: 'typing', message: { typing: false } });
  t.true(first.seq !== null && second.seq !== null && first.seq < second.seq);
  const events = await a.events(2);
  t.deepEqual(events.map((e) => attributesOf(e)['message']), [{ typing: true }, { typing: false }]);
  t.deepEqual(events.map((e) => e.seq), [first.seq, second.seq]);
  t.deepEqual((await ok(a, 'history', { topicName: 'typing' })).messages, []);
});

test('history is newest first, pages with before, and is pruned to the topic history size', withServer, { sql: TABLES }, async (t, { connect, db }) => {
  const admin = await connect(ADMIN);
  await ok(admin, 'create-topic', { name: 'log', history: 5 });
  const ids = [];
  for (let i = 0; i < 8; i++) ids.push((await ok(admin, 'new-message', { topicName: 'log', message: i })).id);
  const page = await ok(admin, 'history', { topicName: 'log', limit: 3 });
  t.deepEqual(page.messages.map((m) => m.message), [7, 6, 5]);
  const next = await ok(admin, 'history', { topicName: 'log', limit: 3, before: page.messages[2]!.id });
  t.deepEqual(next.messages.map((m) => m.message), [4, 3]);
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM rowcast.messages WHERE topic = 'log'`);
  t.is(rows[0]!['n'], 5);
  t.like(await admin.request('history', { topicName: 'log', limit: 101 }), { ok: false, error: { code: 'INVALID_ATTRIBUTES' } });
});

test('destroy-topic removes the topic and its messages and tells its subscribers', withServer, { sql: TABLES }, async (t, { connect, db }) => {
  const admin = await connect(ADMIN);
  const user = await connect({ sub: 'u' });
  await ok(admin, 'create-topic', { name: 'doomed' });
  await user.subscribe('doomed');
  await ok(user, 'new-message', { topicName: 'doomed', message: 'last words' });
  t.like(await user.request('destroy-topic', { name: 'doomed' }), { ok: false, error: { code: 'FORBIDDEN' } });
  await ok(admin, 'destroy-topic', { name: 'doomed' });
  t.like(await user.next((f) => f.type === 'subscription'), { topic: 'doomed', status: 'revoked', reason: 'the topic was destroyed' });
  t.like(await user.request('subscribe', { topicName: 'doomed' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  t.like(await admin.request('destroy-topic', { name: 'doomed' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM rowcast.messages WHERE topic = 'doomed'`);
  t.is(rows[0]!['n'], 0);
});

test('a topic created through one connection is usable at once from another', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  const other = await connect({ sub: 'o' });
  await ok(admin, 'create-topic', { name: 'fresh' });
  await other.subscribe('fresh');
  await ok(other, 'new-message', { topicName: 'fresh', message: 'first' });
  t.like(await other.next(isEvent), { topic: 'fresh', data: { attributes: { message: 'first' } } });
});

test('after a restart, topics and their history are still there, in order', withServerProcess, { sql: '' }, async (t, { start }) => {
  let server = await start();
  const admin = await LiveClient.connect(`${server.liveUrl}?token=${signToken(ADMIN)}`);
  await ok(admin, 'create-topic', { name: 'durable' });
  const sent = [];
  for (let i = 0; i < 20; i++) sent.push((await ok(admin, 'new-message', { topicName: 'durable', message: i })).id);
  admin.close();
  await server.kill('SIGKILL');

  server = await start();
  const reader = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'r' })}`);
  t.like(await ok(reader, 'get-topic', { topicName: 'durable' }), { name: 'durable', history: 100 });
  const history = await ok(reader, 'history', { topicName: 'durable', limit: 100 });
  t.deepEqual(history.messages.map((m) => m.id), [...sent].reverse());
  t.deepEqual(history.messages.map((m) => m.message), Array.from({ length: 20 }, (_, i) => 19 - i));
  await reader.subscribe('durable');
  const { id } = await ok(reader, 'new-message', { topicName: 'durable', message: 'after restart' });
  // (The restarted server may still be re-reading the unacknowledged tail of the slot: at-least-once.)
  t.like(await reader.next((f) => isEvent(f) && f.data.id === id), { data: { attributes: { message: 'after restart' } } });
  reader.close();
});

test('messages to a topic destroyed while they are being written fail alone; other topics are untouched', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await ok(admin, 'create-topic', { name: 'stays' });
  await ok(admin, 'create-topic', { name: 'goes' });
  const writer = await connect({ sub: 'w' });
  const other = await connect({ sub: 'o' });
  // Many messages to both topics in flight while one topic is destroyed.
  const toGoes = Array.from({ length: 200 }, (_, i) => writer.request('new-message', { topicName: 'goes', message: i }));
  const toStays = Array.from({ length: 200 }, (_, i) => other.request('new-message', { topicName: 'stays', message: i }));
  await ok(admin, 'destroy-topic', { name: 'goes' });
  const stays = await Promise.all(toStays);
  t.true(stays.every(isOk));
  const goes = await Promise.all(toGoes);
  t.true(goes.every((r) => isOk(r) || errorOf(r).code === 'TOPIC_NOT_FOUND'));
  t.is(writer.closeCode, null);
});

test('narrowing a topic\'s readers revokes the subscriptions of users who lost access, and only theirs', withServer, { sql: TABLES }, async (t, { connect, db }) => {
  const admin = await connect(ADMIN);
  const user = await connect({ sub: 'u' });
  await ok(admin, 'create-topic', { name: 'narrowing' });
  await admin.subscribe('narrowing');
  await user.subscribe('narrowing');
  await db.query(`UPDATE rowcast.topics SET readers = 'admin' WHERE name = 'narrowing'`);
  t.like(await user.next((f) => f.type === 'subscription'), { topic: 'narrowing', status: 'revoked' });
  await ok(admin, 'new-message', { topicName: 'narrowing', message: 'admins only now' });
  t.like(await admin.next(isEvent), { data: { attributes: { message: 'admins only now' } } });
  t.false(admin.frames.some((f) => f.type === 'subscription'));
  t.false(user.frames.some((f) => f.type === 'event'));
});
