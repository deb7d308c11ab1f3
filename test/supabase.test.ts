import { createClient } from '@supabase/supabase-js';
import test from 'ava';
import WebSocket from 'ws';
import type { NodeStatus } from '../src/http/node-status.js';
import { LiveClient } from './helpers/live-client.js';
import { RawPhoenix, upgradeStatus } from './helpers/raw-phoenix.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { operatorHeaders } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
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
    const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: operatorHeaders() })).text();
    t.regex(metrics, /^rowcast_door_connections\{door="supabase"\} 2$/m);

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

test('realtime-js: send() on a channel not joined falls back to POST /realtime/v1/api/broadcast, and httpSend() posts to its per-event route, with the same rules', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
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
  // httpSend() posts to /realtime/v1/api/broadcast/<topic>/events/<event>.
  t.deepEqual(await sender.channel('lobby').httpSend('wave', { from: 3 }), { success: true });
  t.like((await got.atLeast(2))[1], { event: 'wave', payload: { from: 3 } });
  await t.throwsAsync(sender.channel('not-here', { config: { private: true } }).httpSend('wave', {}), { message: /private channel needs a custom topic/ });
  const refused = await fetch(`http://127.0.0.1:${server.port}/realtime/v1/api/broadcast`, { method: 'POST', headers: { apikey: 'garbage' }, body: '{}' });
  t.is(refused.status, 401);
  t.like(await refused.json(), { code: 'TOKEN_INVALID' });
});

const TEAMS = `
  CREATE TABLE document (id int PRIMARY KEY, team text, title text);
  INSERT INTO rowcast.table_policies (table_name, read, group_column, group_claim) VALUES ('document', 'group', 'team', 'teams');`;

test('realtime-js: a channel acts for its access_token (group policy); a refresh that reads differently, or is for another user, ends the channel with a system error and phx_close', withServer, { sql: TEAMS }, async (t, { db, server, token }) => {
  // The apikey is one user; the channels act for what setAuth gives them.
  const client = realtimeClient(server.port, token({ sub: 'anon-key' }));
  t.teardown(() => void client.disconnect());
  await client.setAuth(token({ sub: '5', teams: ['red'] }));
  const red = new Inbox<Change>();
  const system = new Inbox<{ extension: string; status: string; message: string }>();
  let closed = false;
  const docs = client
    .channel('docs')
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'document' }, red.add)
    .on('system', {}, system.add);
  await subscribed(docs, 10_000, (status) => {
    closed ||= status === 'CLOSED';
  });
  await db.query(`INSERT INTO document VALUES (1, 'blue', 'b'), (2, 'red', 'r')`);
  t.deepEqual((await red.atLeast(1)).map((c) => c.new['id']), [2]);

  // Same user, same teams: nothing changes. Then a token for other teams: the channel ends.
  await client.setAuth(token({ sub: '5', teams: ['red'], n: 1 }));
  await db.query(`INSERT INTO document VALUES (3, 'red', 'r2')`);
  t.deepEqual((await red.atLeast(2)).map((c) => c.new['id']), [2, 3]);
  await client.setAuth(token({ sub: '5', teams: ['blue'] }));
  const ended = (await system.atLeast(2)).find((m) => m.status === 'error');
  t.like(ended, { extension: 'system' });
  t.regex(ended!.message, /^FORBIDDEN: the new token may not read INSERT on public\.document/);
  await waitFor('the channel to close', () => closed);

  // A channel whose refresh names another user ends too.
  const other = client.channel('docs2').on('system', {}, system.add);
  let otherClosed = false;
  await subscribed(other, 10_000, (status) => {
    otherClosed ||= status === 'CLOSED';
  });
  await client.setAuth(token({ sub: '6', teams: ['blue'] }));
  await waitFor('the second channel to close', () => otherClosed);
  t.true(system.items.some((m) => m.status === 'error' && /^FORBIDDEN: refresh-token must be for the same sub/.test(m.message)));
});

test('Supabase rules on the wire: heartbeat, unmatched topic, duplicate join closes the old one, stale join_ref ignored, leave, bad frames and bad binary broadcasts', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  const ws = await RawPhoenix.connect(`ws://127.0.0.1:${server.port}/realtime/v1/websocket?vsn=2.0.0&apikey=${token({ sub: '1' })}`);
  t.teardown(() => ws.close());
  ws.send([null, '1', 'phoenix', 'heartbeat', {}]);
  t.deepEqual(await ws.next((m) => m[1] === '1'), [null, '1', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
  ws.send([null, '2', 'realtime:x', 'broadcast', {}]);
  t.deepEqual((await ws.next((m) => m[1] === '2'))[4], { status: 'error', response: { reason: 'unmatched topic' } });
  ws.send(['3', '3', 'elsewhere', 'phx_join', {}]);
  t.deepEqual((await ws.next((m) => m[1] === '3'))[4], { status: 'error', response: { reason: 'unmatched topic' } });

  const config = { config: { postgres_changes: [{ event: '*', schema: 'public', table: 'order' }] } };
  ws.send(['4', '4', 'realtime:o', 'phx_join', config]);
  const joined = (await ws.next((m) => m[1] === '4'))[4] as { status: string; response: { postgres_changes: Array<{ id: number }> } };
  t.is(joined.status, 'ok');
  const id = joined.response.postgres_changes[0]!.id;
  t.true(Number.isInteger(id) && id > 0);
  ws.send(['5', '5', 'realtime:o', 'phx_join', config]);
  t.deepEqual(await ws.next((m) => m[3] === 'phx_close'), ['4', '4', 'realtime:o', 'phx_close', {}]);
  t.like((await ws.next((m) => m[1] === '5'))[4], { status: 'ok', response: { postgres_changes: [{ event: '*', schema: 'public', table: 'order', id }] } });
  ws.send(['4', '6', 'realtime:o', 'bogus', {}]);
  ws.send(['5', '7', 'realtime:o', 'bogus', {}]);
  const answered = await ws.next((m) => m[1] === '6' || m[1] === '7');
  t.is(answered[1], '7');
  t.regex(String((answered[4] as { response: { reason: string } }).response.reason), /^UNKNOWN_METHOD: /);
  // realtime:o is an open channel, with presence: a track is answered ok, a presence push of another event is refused.
  ws.send(['5', '8', 'realtime:o', 'presence', { type: 'presence', event: 'track', payload: {} }]);
  t.like((await ws.next((m) => m[1] === '8'))[4], { status: 'ok' });
  ws.send(['5', '9', 'realtime:o', 'presence', { type: 'presence', event: 'wave' }]);
  t.regex(String(((await ws.next((m) => m[1] === '9'))[4] as { response: { reason: string } }).response.reason), /^INVALID_MESSAGE: /);

  // Garbage gets an error on the phoenix topic and the connection goes on.
  for (const bad of ['not json', '[1,2,3]', '[null,null,"","e",{}]']) ws.sendText(bad);
  const broadcast = (lengths: number[], encoding: number, rest: string) => Buffer.concat([Buffer.from([3, ...lengths, encoding]), Buffer.from(rest)]);
  ws.sendBinary(broadcast([0, 1, 10, 1, 0], 1, '9realtime:oe')); // no payload: not JSON
  ws.sendBinary(broadcast([0, 1, 99, 1, 0], 1, '9realtime:oe{}')); // lengths past the end
  ws.sendBinary(broadcast([0, 1, 10, 1, 0], 0, '9realtime:oe{}')); // raw bytes
  ws.sendBinary(Buffer.from([3, 1]));
  for (let i = 0; i < 7; i++) t.regex(String(((await ws.next((m) => m[2] === 'phoenix' && m[1] === null))[4] as { response: { reason: string } }).response.reason), /^INVALID_MESSAGE: /);
  await db.query(`INSERT INTO "order" (id, owner_id) VALUES (1, 1)`);
  t.like(await ws.next((m) => m[3] === 'postgres_changes'), [null, null, 'realtime:o', 'postgres_changes', { ids: [id], data: { type: 'INSERT', record: { id: 1 } } }]);

  ws.send(['5', '9', 'realtime:o', 'phx_leave', {}]);
  t.like((await ws.next((m) => m[1] === '9'))[4], { status: 'ok' });
  t.deepEqual(await ws.next((m) => m[3] === 'phx_close'), ['5', '5', 'realtime:o', 'phx_close', {}]);
});

test('a Supabase socket that sends nothing for 60 s is closed; one that heartbeats stays; the door refuses an unknown vsn and a bad apikey', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
  const base = `ws://127.0.0.1:${server.port}/realtime/v1/websocket`;
  t.is(await upgradeStatus(`${base}?vsn=3.0.0&apikey=${token({ sub: '1' })}`), 403);
  t.is(await upgradeStatus(`${base}?apikey=garbage`), 401);
  t.is(await upgradeStatus(`${base}?vsn=1.0.0`), 401);
  const silent = await RawPhoenix.connect(`${base}?vsn=2.0.0&apikey=${token({ sub: '1' })}`);
  const beating = await RawPhoenix.connect(`${base}?vsn=2.0.0&apikey=${token({ sub: '1' })}`);
  t.teardown(() => {
    silent.close();
    beating.close();
  });
  const opened = Date.now();
  let ref = 0;
  const timer = setInterval(() => beating.send([null, `hb${ref++}`, 'phoenix', 'heartbeat', {}]), 20_000);
  t.teardown(() => clearInterval(timer));
  await silent.closed(90_000);
  const seconds = (Date.now() - opened) / 1000;
  t.true(seconds >= 55 && seconds <= 75, `closed after ${seconds.toFixed(1)} s`);
  t.false(beating.isClosed());
});

test('realtime-js reconnects and rejoins after the server drops its socket, and the channel works again', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  const client = realtimeClient(server.port, token({ sub: '1' }), '2.0.0', { params: { apikey: token({ sub: '1' }) } });
  t.teardown(() => void client.disconnect());
  const changes = new Inbox<Change>();
  const orders = client.channel('mine').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'order' }, changes.add);
  await subscribed(orders);
  await db.query(`INSERT INTO "order" (id, owner_id) VALUES (1, 1)`);
  await changes.atLeast(1);
  const admin = { authorization: `Bearer ${token({ sub: 'a', role: 'admin' })}` };
  const [connection] = (await (await fetch(`http://127.0.0.1:${server.port}/admin/connections`, { headers: admin })).json()) as Array<{ id: string; door: string; subscriptions: string[] }>;
  t.is(connection!.door, 'supabase');
  t.deepEqual(connection!.subscriptions.sort(), ['order', '~mine']); // the channel's table, and its open channel for broadcast
  t.is((await fetch(`http://127.0.0.1:${server.port}/admin/connections/${connection!.id}`, { method: 'DELETE', headers: admin })).status, 200);
  // Rejoined on a new connection: a later row arrives.
  await waitFor('a new connection with the rejoined channel', async () => {
    const list = (await (await fetch(`http://127.0.0.1:${server.port}/admin/connections`, { headers: admin })).json()) as Array<{ id: string; subscriptions: string[] }>;
    return list.some((c) => c.id !== connection!.id && c.subscriptions.includes('order'));
  });
  await db.query(`INSERT INTO "order" (id, owner_id) VALUES (2, 1)`);
  t.deepEqual((await changes.atLeast(2)).map((c) => c.new['id']), [1, 2]);
});

test('supabase-js createClient pointed at rowcast: postgres_changes and broadcast through supabase.channel()', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  const supabase = createClient(`http://127.0.0.1:${server.port}`, token({ sub: '1' }), {
    realtime: { transport: WebSocket as never, params: { vsn: '2.0.0' } } as never,
    auth: { persistSession: false, autoRefreshToken: false },
  });
  t.teardown(() => void supabase.removeAllChannels());
  const changes = new Inbox<Change>();
  const waves = new Inbox<{ payload: unknown }>();
  const channel = supabase
    .channel('app', { config: { broadcast: { self: true } } })
    .on('postgres_changes', { event: '*', schema: 'public', table: 'order', filter: 'owner_id=eq.1' }, changes.add)
    .on('broadcast', { event: 'wave' }, waves.add);
  await subscribed(channel);
  await db.query(`INSERT INTO "order" (id, owner_id, status) VALUES (1, 1, 'new')`);
  await db.query(`UPDATE "order" SET status = 'paid' WHERE id = 1`);
  await db.query(`DELETE FROM "order" WHERE id = 1`);
  const seen = await changes.atLeast(3);
  t.deepEqual(seen.map((c) => c.eventType), ['INSERT', 'UPDATE', 'DELETE']);
  t.like(seen[1], { new: { id: 1, status: 'paid' }, old: { id: 1 } });
  t.like(seen[2], { old: { id: 1 } });
  await channel.send({ type: 'broadcast', event: 'wave', payload: { hi: true } });
  t.like((await waves.atLeast(1))[0], { payload: { hi: true } });
});


test('realtime-js: table "*" binds every table of the schema the user may read under one id; schema "*" is refused by name; a read rule that stops covering the user gives a system error', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  const client = realtimeClient(server.port, token({ sub: '1' }));
  t.teardown(() => void client.disconnect());
  const all = new Inbox<Change>();
  const system = new Inbox<{ extension: string; status: string; message: string }>();
  const channel = client
    .channel('everything')
    .on('postgres_changes', { event: '*', schema: 'public', table: '*' }, all.add)
    .on('postgres_changes', { event: '*', schema: '*' }, () => t.fail('schema "*" is refused'))
    .on('system', {}, system.add);
  await subscribed(channel);
  t.regex((await system.atLeast(2)).find((m) => m.status === 'error')!.message, /schema "\*" is not supported/);
  await db.query(`INSERT INTO secret VALUES (1, 'no')`);
  await db.query(`INSERT INTO "order" (id, owner_id) VALUES (1, 1), (2, 2)`);
  t.deepEqual((await all.atLeast(1)).map((c) => `${c.table} ${String(c.new['id'])}`), ['order 1']);

  await db.query(`UPDATE rowcast.table_policies SET read = 'admin' WHERE table_name = 'order'`);
  const revoked = await waitFor('a system error for the revoked binding', () => system.items.find((m) => m.message.startsWith('REVOKED: ')));
  t.like(revoked, { extension: 'postgres_changes', status: 'error' });
  t.regex(revoked.message, /^REVOKED: \* on public\.\*: /);
  t.is(all.items.length, 1);
});

test('tokens expire per channel: a channel whose access_token expires ends with a system error; when the apikey and a channel expire in the same second the socket closes with 4001 and the server goes on', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
  const soon = () => Math.floor(Date.now() / 1000) + 2;
  // The channels' token expires; the socket (a long-lived apikey) stays, and takes new channels.
  const client = realtimeClient(server.port, token({ sub: '1' }));
  t.teardown(() => void client.disconnect());
  await client.setAuth(token({ sub: '1', exp: soon() }));
  const system = new Inbox<{ status: string; message: string }>();
  let closed = false;
  const short = client.channel('short').on('system', {}, system.add);
  await subscribed(short, 10_000, (status) => {
    closed ||= status === 'CLOSED';
  });
  const socketsBefore = (await (await fetch(`http://127.0.0.1:${server.port}/status`, { headers: operatorHeaders() })).json()) as NodeStatus;
  await waitFor('the channel to be ended at its token expiry', () => closed, 10_000);
  t.true(system.items.some((m) => m.status === 'error' && m.message.startsWith('TOKEN_EXPIRED: ')));
  t.true(client.isConnected());
  await client.setAuth(token({ sub: '1' }));
  await subscribed(client.channel('later'));
  const socketsAfter = (await (await fetch(`http://127.0.0.1:${server.port}/status`, { headers: operatorHeaders() })).json()) as NodeStatus;
  t.deepEqual(socketsAfter.connectionsByDoor, socketsBefore.connectionsByDoor);

  // The apikey and a channel's token, the same one: both fall due in one sweep.
  const expiring = token({ sub: '2', exp: soon() });
  const ws = await RawPhoenix.connect(`ws://127.0.0.1:${server.port}/realtime/v1/websocket?vsn=2.0.0&apikey=${expiring}`);
  ws.send(['1', '1', 'realtime:a', 'phx_join', { config: {}, access_token: expiring }]);
  t.like((await ws.next((m) => m[1] === '1'))[4], { status: 'ok' });
  t.is(await ws.closed(10_000), 4001);
  t.is((await fetch(`http://127.0.0.1:${server.port}/health`)).status, 200);
});

test('a Supabase socket holds at most MAX_SUBSCRIPTIONS channels, counted with their subscriptions; OPEN_CHANNELS=false leaves channels without broadcast', withServer, { sql: SCHEMA, env: { MAX_SUBSCRIPTIONS: '3', OPEN_CHANNELS: 'false' } }, async (t, { server, token }) => {
  const ws = await RawPhoenix.connect(`ws://127.0.0.1:${server.port}/realtime/v1/websocket?vsn=2.0.0&apikey=${token({ sub: '1' })}`);
  t.teardown(() => ws.close());
  const orders = { config: { postgres_changes: [{ event: '*', schema: 'public', table: 'order' }] } };
  ws.send(['1', '1', 'realtime:a', 'phx_join', orders]);
  ws.send(['2', '2', 'realtime:b', 'phx_join', orders]);
  ws.send(['3', '3', 'realtime:c', 'phx_join', { config: {} }]);
  ws.send(['4', '4', 'realtime:d', 'phx_join', { config: {} }]);
  for (const ref of ['1', '2', '3']) t.like((await ws.next((m) => m[1] === ref))[4], { status: 'ok' });
  t.regex(String(((await ws.next((m) => m[1] === '4'))[4] as { response: { reason: string } }).response.reason), /^LIMIT_EXCEEDED: at most 3 channels/);
  // Two bindings held, one more fits; a fourth subscription of the socket does not.
  ws.send(['3', '5', 'realtime:c', 'phx_join', { config: { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'order' }, { event: 'DELETE', schema: 'public', table: 'order' }] } }]);
  t.like((await ws.next((m) => m[1] === '5'))[4], { status: 'ok' });
  const system = await ws.next((m) => m[3] === 'system' && (m[4] as { status: string }).status === 'error');
  t.regex(String((system[4] as { message: string }).message), /^DELETE on public\.order: LIMIT_EXCEEDED: /);
  ws.send(['1', '6', 'realtime:a', 'broadcast', { type: 'broadcast', event: 'e', payload: {} }]);
  t.regex(String(((await ws.next((m) => m[1] === '6'))[4] as { response: { reason: string } }).response.reason), /^TOPIC_NOT_FOUND: .*OPEN_CHANNELS/);
});

test('bindings named like Object.prototype members and kind-3 broadcasts nested too deep get coded answers, not INTERNAL', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
  const ws = await RawPhoenix.connect(`ws://127.0.0.1:${server.port}/realtime/v1/websocket?vsn=2.0.0&apikey=${token({ sub: '1' })}`);
  t.teardown(() => ws.close());
  ws.send(['1', '1', 'realtime:a', 'phx_join', { config: { postgres_changes: [{ event: 'constructor', schema: 'public', table: 'order' }, { event: '__proto__', schema: 7 }] } }]);
  t.like((await ws.next((m) => m[1] === '1'))[4], { status: 'ok' });
  for (const expected of [/^constructor on public\.order: INVALID_ATTRIBUTES: event must be/, /^__proto__ on 7\.\*: INVALID_ATTRIBUTES: /]) {
    const system = await ws.next((m) => m[3] === 'system' && expected.test(String((m[4] as { message: string }).message)));
    t.like(system[4], { extension: 'postgres_changes', status: 'error' });
  }
  const deep = '['.repeat(6000) + ']'.repeat(6000);
  ws.sendBinary(Buffer.concat([Buffer.from([3, 0, 0, 10, 1, 0, 1]), Buffer.from('realtime:ae'), Buffer.from(deep)]));
  const answer = await ws.next((m) => m[2] === 'phoenix');
  t.regex(String((answer[4] as { response: { reason: string } }).response.reason), /^INVALID_MESSAGE: the frame is nested deeper than/);
});

test('an open channel is the topic ~<name> for the other doors: a /live client subscribed to ~room sees a realtime-js broadcast, and its new-message reaches realtime-js', withServer, { sql: SCHEMA }, async (t, { server, token, liveUrl }) => {
  const client = realtimeClient(server.port, token({ sub: '1' }));
  t.teardown(() => void client.disconnect());
  const got = new Inbox<{ event: string; payload: unknown }>();
  const room = client.channel('room', { config: { broadcast: { ack: true } } }).on('broadcast', { event: '*' }, got.add);
  await subscribed(room);
  const live = await LiveClient.connect(`${liveUrl}?token=${token({ sub: '2' })}`);
  t.teardown(() => live.close());
  await live.subscribe('~room');
  t.is(await room.send({ type: 'broadcast', event: 'hello', payload: { from: 1 } }), 'ok');
  const [event] = await live.events(1);
  t.like(event!.data.attributes, { message: { event: 'hello', payload: { from: 1 } }, sender: '1' });
  await live.call('new-message', { topicName: '~room', message: { event: 'reply', payload: { from: 2 } } });
  t.like((await got.atLeast(1))[0], { event: 'reply', payload: { from: 2 } });
});
