import test from 'ava';
import { Socket } from 'phoenix';
import WebSocket from 'ws';
import { Collected, join, phoenixSocket, pushAndWait } from './helpers/phoenix-client.js';
import { RawPhoenix, upgradeStatus } from './helpers/raw-phoenix.js';
import type { NodeStatus } from '../src/http/node-status.js';
import { operatorHeaders } from './helpers/tokens.js';
import { withServer } from './helpers/with-server.js';

const SCHEMA = `
  CREATE TABLE "order" (id int PRIMARY KEY, owner_id int, status text);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('order', 'owner', 'owner_id');`;

for (const vsn of ['2.0.0', '1.0.0'] as const) {
  test(`phoenix.js (vsn ${vsn}): each user gets exactly their rows on table:order, a row moving away is a delete, and the join reply carries seq`, withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
    const alice = phoenixSocket(server.port, token({ sub: '1' }), vsn);
    const bob = phoenixSocket(server.port, token({ sub: '2' }), vsn);
    t.teardown(() => {
      alice.disconnect();
      bob.disconnect();
    });
    const aliceOrders = alice.channel('table:order', {});
    const bobOrders = bob.channel('table:order', { filter: { status: { eq: 'paid' } } });
    const aliceSeen = new Collected(aliceOrders, ['create', 'update', 'delete']);
    const bobSeen = new Collected(bobOrders, ['create', 'update', 'delete']);
    const reply = await join(aliceOrders);
    t.regex(String(reply['seq']), /^[0-9A-F]{16}-[0-9A-F]{8}$/);
    await join(bobOrders);
    const status = (await (await fetch(`http://127.0.0.1:${server.port}/status`, { headers: operatorHeaders() })).json()) as NodeStatus;
    t.deepEqual(status.connectionsByDoor, { phoenix: 2 });

    await db.query(`INSERT INTO "order" VALUES (1, 1, 'paid'), (2, 2, 'open'), (3, 2, 'paid')`);
    await db.query(`UPDATE "order" SET owner_id = 2 WHERE id = 1`);
    const a = await aliceSeen.atLeast(2);
    t.deepEqual(a.map((e) => `${e.event} ${e.payload.id}`), ['create 1', 'delete 1']);
    t.like(a[0]!.payload, { type: 'order', id: '1', attributes: { id: 1, owner_id: 1, status: 'paid' } });
    t.regex(a[0]!.payload['seq'], /^[0-9A-F]{16}-[0-9A-F]{8}$/);
    // Bob's filter keeps paid orders: 3, then 1 as it moves to him.
    const b = await bobSeen.atLeast(2);
    t.deepEqual(b.map((e) => `${e.event} ${e.payload.id}`), ['create 3', 'create 1']);
  });
}

test('phoenix.js: custom topics through the rowcast channel and topic:<name>, with new-message, history and coded errors', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
  const admin = phoenixSocket(server.port, token({ sub: 'a', role: 'admin' }));
  const user = phoenixSocket(server.port, token({ sub: '7' }));
  t.teardown(() => {
    admin.disconnect();
    user.disconnect();
  });
  const control = admin.channel('rowcast', {});
  await join(control);
  await pushAndWait(control, 'create-topic', { name: 'lobby', readers: 'authenticated', writers: 'authenticated', history: 10 });
  const listed = await pushAndWait(control, 'list-topic', {});
  t.true((listed['topics'] as Array<{ name: string }>).some((topic) => topic.name === 'lobby'));

  const lobby = user.channel('topic:lobby', {});
  const messages = new Collected(lobby, ['message']);
  await join(lobby);
  const sent = await pushAndWait(lobby, 'new-message', { message: { text: 'hi' } });
  t.truthy(sent['id']);
  const [first] = await messages.atLeast(1);
  t.like(first!.payload, { type: 'message', attributes: { message: { text: 'hi' }, sender: '7' } });
  const history = await pushAndWait(lobby, 'history', { limit: 5 });
  t.is((history['messages'] as unknown[]).length, 1);

  // The kind is in the name: table:lobby is no table; a table is no topic:.
  const wrong = user.channel('table:lobby', {});
  const error = await join(wrong).catch((e: { reply: { reason: string } }) => e.reply);
  t.regex((error as { reason: string }).reason, /^TOPIC_NOT_FOUND: /);
  const notAdmin = user.channel('rowcast', {});
  await join(notAdmin);
  const refused = await pushAndWait(notAdmin, 'create-topic', { name: 'x' }).catch((e: { reply: { reason: string } }) => e.reply);
  t.regex((refused as { reason: string }).reason, /^FORBIDDEN: /);
  // lobby was created without presence.
  const presence = await pushAndWait(lobby, 'track', { meta: {} }).catch((e: { reply: { reason: string } }) => e.reply);
  t.regex((presence as { reason: string }).reason, /^INVALID_ATTRIBUTES: .*no presence/);
  const unknown = await pushAndWait(lobby, 'shout', {}).catch((e: { reply: { reason: string } }) => e.reply);
  t.regex((unknown as { reason: string }).reason, /^UNKNOWN_METHOD: /);
});

test('phoenix.js: after a lost connection the channel rejoins with since (its params function) and misses nothing', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  const socket = phoenixSocket(server.port, token({ sub: '1' }));
  t.teardown(() => socket.disconnect());
  let lastSeq: string | undefined;
  const orders = socket.channel('table:order', () => (lastSeq ? { since: lastSeq } : {}));
  const seen = new Collected(orders, ['create']);
  orders.on('create', (payload: { seq: string }) => {
    lastSeq = payload.seq;
  });
  const joins: Array<Record<string, unknown>> = [];
  orders.join().receive('ok', (reply) => joins.push(reply as Record<string, unknown>));
  await waitUntil(() => joins.length === 1);
  await db.query(`INSERT INTO "order" VALUES (1, 1, 'a')`);
  await seen.atLeast(1);

  socket.disconnect();
  await db.query(`INSERT INTO "order" VALUES (2, 1, 'b')`);
  socket.connect();
  await waitUntil(() => joins.length === 2);
  t.like(joins[1], { resumed: true });
  await db.query(`INSERT INTO "order" VALUES (3, 1, 'c')`);
  const all = await seen.atLeast(3);
  t.deepEqual(all.map((e) => e.payload.id), ['1', '2', '3']);
});

test('phoenix.js with authToken (the token as subprotocol): a read rule that stops covering the user ends the channel with revoked, then phx_close', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  const socket = new Socket(`ws://127.0.0.1:${server.port}/socket`, { transport: WebSocket, authToken: token({ sub: '1' }), reconnectAfterMs: () => 100 } as ConstructorParameters<typeof Socket>[1]);
  socket.connect();
  t.teardown(() => socket.disconnect());
  const orders = socket.channel('table:order', {});
  const revoked = new Collected(orders, ['revoked']);
  let closed = false;
  orders.onClose(() => {
    closed = true;
  });
  await join(orders);
  await db.query(`UPDATE rowcast.table_policies SET read = 'admin' WHERE table_name = 'order'`);
  const [push] = await revoked.atLeast(1);
  t.true(typeof push!.payload['reason'] === 'string' && push!.payload['reason'].length > 0);
  await waitUntil(() => closed);
  t.is(orders.state, 'closed');
});

test('Phoenix rules on the wire: heartbeat, unmatched topic, duplicate join closes the old one, stale join_ref ignored, leave, bad frames', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  const ws = await RawPhoenix.connect(`ws://127.0.0.1:${server.port}/socket/websocket?vsn=2.0.0&token=${token({ sub: '1' })}`);
  t.teardown(() => ws.close());
  ws.send([null, '1', 'phoenix', 'heartbeat', {}]);
  t.deepEqual(await ws.next((m) => m[1] === '1'), [null, '1', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);

  ws.send([null, '2', 'table:order', 'new-message', {}]);
  t.deepEqual((await ws.next((m) => m[1] === '2'))[4], { status: 'error', response: { reason: 'unmatched topic' } });
  ws.send(['3', '3', 'elsewhere', 'phx_join', {}]);
  t.deepEqual((await ws.next((m) => m[1] === '3'))[4], { status: 'error', response: { reason: 'unmatched topic' } });

  ws.send(['4', '4', 'table:order', 'phx_join', {}]);
  t.like((await ws.next((m) => m[1] === '4'))[4], { status: 'ok' });
  ws.send(['5', '5', 'table:order', 'phx_join', {}]);
  t.deepEqual(await ws.next((m) => m[3] === 'phx_close'), ['4', '4', 'table:order', 'phx_close', {}]);
  t.like((await ws.next((m) => m[1] === '5'))[4], { status: 'ok' });
  // A push with the old join_ref is ignored; with the current one it is answered.
  ws.send(['4', '6', 'table:order', 'bogus', {}]);
  ws.send(['5', '7', 'table:order', 'bogus', {}]);
  const answered = await ws.next((m) => m[1] === '6' || m[1] === '7');
  t.is(answered[1], '7');
  t.regex(String((answered[4] as { response: { reason: string } }).response.reason), /^UNKNOWN_METHOD: /);

  // Garbage gets an error on the phoenix topic and the connection goes on.
  for (const bad of ['not json', '{"topic":"x"}', '[1,2,3]', '[null,null,"",  "e",{}]']) ws.sendText(bad);
  ws.sendBinary(Buffer.from([0, 9, 9, 9, 9, 1]));
  for (let i = 0; i < 5; i++) t.regex(String(((await ws.next((m) => m[2] === 'phoenix' && m[1] === null))[4] as { response: { reason: string } }).response.reason), /^INVALID_MESSAGE: /);
  await db.query(`INSERT INTO "order" VALUES (1, 1, 'x')`);
  t.like(await ws.next((m) => m[3] === 'create'), [null, null, 'table:order', 'create', { id: '1' }]);

  ws.send(['5', '8', 'table:order', 'phx_leave', {}]);
  t.like((await ws.next((m) => m[1] === '8'))[4], { status: 'ok' });
  t.deepEqual(await ws.next((m) => m[3] === 'phx_close'), ['5', '5', 'table:order', 'phx_close', {}]);
});

test('a Phoenix socket that sends nothing for 60 s is closed, as Phoenix does; heartbeats keep one open', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
  const url = `ws://127.0.0.1:${server.port}/socket/websocket?vsn=2.0.0&token=${token({ sub: '1' })}`;
  const silent = await RawPhoenix.connect(url);
  const beating = await RawPhoenix.connect(url);
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

test('the Phoenix door refuses an unknown vsn and a bad token at the upgrade', withServer, { sql: SCHEMA }, async (t, { server, token }) => {
  const base = `ws://127.0.0.1:${server.port}/socket/websocket`;
  t.is(await upgradeStatus(`${base}?vsn=3.0.0&token=${token({ sub: '1' })}`), 403);
  t.is(await upgradeStatus(`${base}?token=garbage`), 401);
  t.is(await upgradeStatus(`${base}?token=${token({ sub: '1' })}`), 101);
});

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
