import test from 'ava';
import type { NodeStatus } from '../src/http/node-status.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { operatorHeaders } from './helpers/tokens.js';
import { withServer } from './helpers/with-server.js';

const SCHEMA = `
  CREATE TABLE "order" (id int PRIMARY KEY, owner_id int, team text, status text, amount numeric, tags text[]);
  CREATE TABLE secret (id int PRIMARY KEY, body text);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('order', 'owner', 'owner_id');`;

type Change = { eventType: string; schema: string; table: string; commit_timestamp: string; new: Record<string, unknown>; old: Record<string, unknown>; errors: unknown };

for (const vsn of ['2.0.0', '1.0.0'] as const) {
  test(`realtime-js (vsn ${vsn}): each user gets exactly their rows, a row moving away is a DELETE, and an unreadable binding gets a system error while the others work`, withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
    const alice = realtimeClient(server.port, token({ sub: '1' }), vsn);
    const bob = realtimeClient(server.port, token({ sub: '2' }), vsn);
    t.teardown(() => {
      void alice.disconnect();
      void bob.disconnect();
    });
    const aliceChanges = new Inbox<Change>();
    const aliceSystem = new Inbox<Record<string, unknown>>();
    const aliceChannel = alice
      .channel('orders')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'order' }, aliceChanges.add)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'secret' }, () => t.fail('alice may not read secret'))
      .on('system', {}, aliceSystem.add);
    const bobInserts = new Inbox<Change>();
    const bobChannel = bob
      .channel('orders')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'order', filter: 'status=in.(paid,"on hold"),amount=gte.10' }, bobInserts.add);
    await subscribed(aliceChannel);
    await subscribed(bobChannel);
    const system = await aliceSystem.atLeast(2);
    t.like(system.find((m) => m['status'] === 'ok'), { extension: 'postgres_changes', message: 'Subscribed to PostgreSQL', channel: 'orders' });
    t.regex(String(system.find((m) => m['status'] === 'error')?.['message']), /^INSERT on public\.secret: (TOPIC_NOT_FOUND|FORBIDDEN): /);
    const status = (await (await fetch(`http://127.0.0.1:${server.port}/status`, { headers: operatorHeaders() })).json()) as NodeStatus;
    t.deepEqual(status.connectionsByDoor, { supabase: 2 });

    await db.query(`INSERT INTO secret VALUES (1, 'x')`);
    await db.query(`INSERT INTO "order" VALUES (1, 1, 'a', 'paid', 20, '{x}'), (2, 2, 'b', 'open', 50, '{}'), (3, 2, 'b', 'on hold', 12, '{}'), (4, 2, 'b', 'paid', 5, '{}')`);
    await db.query(`UPDATE "order" SET owner_id = 2 WHERE id = 1`);
    const a = await aliceChanges.atLeast(2);
    t.deepEqual(a.map((c) => `${c.eventType} ${String(c.new['id'] ?? c.old['id'])}`), ['INSERT 1', 'DELETE 1']);
    t.like(a[0]!, { schema: 'public', table: 'order', errors: null, new: { id: 1, owner_id: 1, status: 'paid', tags: ['x'] } });
    t.regex(a[0]!.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Bob's filter (status in (paid, "on hold") and amount >= 10) takes 3, then 1 as it moves to him (an INSERT for him).
    const b = await bobInserts.atLeast(2);
    t.deepEqual(b.map((c) => c.new['id']), [3, 1]);
  });
}

for (const vsn of ['2.0.0', '1.0.0'] as const) {
  test(`realtime-js (vsn ${vsn}): broadcast on an open channel honours self and ack`, withServer, { sql: SCHEMA }, async (t, { server, token }) => {
    const alice = realtimeClient(server.port, token({ sub: '1' }), vsn);
    const bob = realtimeClient(server.port, token({ sub: '2' }), vsn);
    t.teardown(() => {
      void alice.disconnect();
      void bob.disconnect();
    });
    const aliceGot = new Inbox<{ event: string; payload: unknown }>();
    const bobGot = new Inbox<{ event: string; payload: unknown }>();
    const aliceRoom = alice.channel('room1', { config: { broadcast: { self: false, ack: true } } }).on('broadcast', { event: '*' }, aliceGot.add);
    const bobRoom = bob.channel('room1', { config: { broadcast: { self: true } } }).on('broadcast', { event: 'cursor' }, bobGot.add);
    await subscribed(aliceRoom);
    await subscribed(bobRoom);

    t.is(await aliceRoom.send({ type: 'broadcast', event: 'cursor', payload: { x: 1 } }), 'ok'); // ack: the server answered
    t.is(await bobRoom.send({ type: 'broadcast', event: 'cursor', payload: { x: 2 } }), 'ok');
    // Bob (self: true) gets both, his own included; Alice (self: false) only Bob's, and hers would have come first.
    t.deepEqual((await bobGot.atLeast(2)).map((m) => m.payload), [{ x: 1 }, { x: 2 }]);
    const got = await aliceGot.atLeast(1);
    t.like(got[0], { type: 'broadcast', event: 'cursor', payload: { x: 2 } });
  });
}

test('realtime-js: a custom topic governs its channel: readers join, writers broadcast (stored in its history), other messages arrive as the broadcast `message`, and private channels need one', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
  const admin = realtimeClient(server.port, token({ sub: 'a', role: 'admin' }));
  const user = realtimeClient(server.port, token({ sub: '7' }));
  t.teardown(() => {
    void admin.disconnect();
    void user.disconnect();
  });
  const created = await fetch(`http://127.0.0.1:${server.port}/admin/topics`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token({ sub: 'a', role: 'admin' })}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'news', readers: 'authenticated', writers: 'admin', history: 10 }),
  });
  t.is(created.status, 201);
  const userGot = new Inbox<{ event: string; payload: unknown }>();
  const userSystem = new Inbox<{ status: string; message: string }>();
  const userNews = user.channel('news', { config: { broadcast: { ack: true }, private: true } }).on('broadcast', { event: '*' }, userGot.add).on('system', {}, userSystem.add);
  const adminNews = admin.channel('news', { config: { private: true, broadcast: { ack: true } } });
  await subscribed(userNews);
  await subscribed(adminNews);

  t.is(await userNews.send({ type: 'broadcast', event: 'post', payload: { text: 'mine' } }), 'error'); // not a writer
  t.is(await adminNews.send({ type: 'broadcast', event: 'post', payload: { text: 'hello' } }), 'ok');
  const [first] = await userGot.atLeast(1);
  t.like(first, { event: 'post', payload: { text: 'hello' } });
  const history = (await (await fetch(`http://127.0.0.1:${server.port}/admin/topics/news/history`, { headers: { authorization: `Bearer ${token({ sub: 'a', role: 'admin' })}` } })).json()) as {
    messages: Array<{ message: unknown }>;
  };
  t.deepEqual(history.messages.map((m) => m.message), [{ event: 'post', payload: { text: 'hello' } }]);
  // Any other message of the topic arrives as the broadcast `message`.
  await fetch(`http://127.0.0.1:${server.port}/admin/topics/news/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token({ sub: 'a', role: 'admin' })}`, 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'plain text' }),
  });
  const got = await userGot.atLeast(2);
  t.like(got[1], { event: 'message', payload: 'plain text' });

  const nowhere = user.channel('no-such-topic', { config: { private: true } });
  const error = await subscribed(nowhere).catch((e: Error) => e);
  t.regex(String(error), /CHANNEL_ERROR.*FORBIDDEN: a private channel needs a custom topic/);
});

test('realtime-js: send() on a channel not joined falls back to POST /realtime/v1/api/broadcast, with the same rules', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
  const listener = realtimeClient(server.port, token({ sub: '1' }));
  const sender = realtimeClient(server.port, token({ sub: '2' }));
  t.teardown(() => {
    void listener.disconnect();
    void sender.disconnect();
  });
  const got = new Inbox<{ event: string; payload: unknown }>();
  const room = listener.channel('lobby').on('broadcast', { event: 'wave' }, got.add);
  await subscribed(room);
  const warn = console.warn;
  console.warn = () => {}; // realtime-js warns that the REST fallback is deprecated
  try {
    t.is(await sender.channel('lobby').send({ type: 'broadcast', event: 'wave', payload: { from: 2 } }), 'ok');
    t.is(await sender.channel('not-here', { config: { private: true } }).send({ type: 'broadcast', event: 'wave', payload: {} }), 'error');
  } finally {
    console.warn = warn;
  }
  const [message] = await got.atLeast(1);
  t.like(message, { event: 'wave', payload: { from: 2 } });
  const refused = await fetch(`http://127.0.0.1:${server.port}/realtime/v1/api/broadcast`, { method: 'POST', headers: { apikey: 'garbage' }, body: '{}' });
  t.is(refused.status, 401);
  t.like(await refused.json(), { error: { code: 'TOKEN_INVALID' } });
});
