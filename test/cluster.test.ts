/**
 * Issue 10, cluster mode: rowcast nodes on one Postgres and one Redis
 * (`REDIS_URL`), as separate processes on different ports. Clients spread
 * over the nodes see the same events in the same order; custom topics and
 * ephemeral messages cross nodes; killing the leader under load hands the
 * slot to another node with nothing lost or doubled (also as issue 5's
 * crash run, with every policy kind and clients moving between nodes);
 * losing Redis's data is never a silent gap; Phoenix clients on any node see
 * the same events as /live clients.
 */
import type { ChildProcess } from 'node:child_process';
import test from 'ava';
import { CRASH_SCHEMA, describeCrashRun, runCrashTest } from '../chaos/crash-run.js';
import WebSocket from 'ws';
import { createClient, type ClientOptions, type LiveEvent, type RowcastClient } from '@rowcast/client';
import { CLOSE_CODES } from '../src/protocol/index.js';
import { clusterNodes, dropClusterKeys, REDIS_URL, startRedisServer } from './helpers/cluster-nodes.js';
import { freePort } from './helpers/free-port.js';
import { Collected, join, phoenixSocket } from './helpers/phoenix-client.js';
import { dataOf, eventOn, isEvent, LiveClient, type EventFrame } from './helpers/live-client.js';
import { ServerProcess } from './helpers/server-process.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken } from './helpers/with-server.js';
import { withServerProcess, type ProcessFixture } from './helpers/with-server-process.js';

const TABLES = `
  CREATE TABLE orders (id int PRIMARY KEY, owner_id text NOT NULL, amount int NOT NULL);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('orders', 'owner', 'owner_id');`;
const label = (f: EventFrame) => `${f.event}:${f.data.id}`;

/** `count` nodes on the fixture's database (see clusterNodes). */
function cluster(t: { teardown(fn: () => Promise<void>): void }, fixture: ProcessFixture, count: number, redisUrl = REDIS_URL): Promise<ServerProcess[]> {
  return clusterNodes(t, fixture, count, redisUrl);
}

async function roles(nodes: ServerProcess[]): Promise<string[]> {
  return Promise.all(nodes.map(async (node) => ((await node.status())['cluster'] as { role: string }).role));
}

/** Waits until exactly one of `nodes` leads; returns its index. */
async function leaderOf(nodes: ServerProcess[]): Promise<number> {
  return waitFor('exactly one leader', async () => {
    const all = await roles(nodes);
    return all.filter((role) => role === 'leader').length === 1 ? all.indexOf('leader') + 1 : null;
  }).then((i) => i - 1); // waitFor wants a truthy value: index + 1
}

function sdkClient(t: { teardown(fn: () => void): void }, urls: string[], sub: string, extra: Partial<ClientOptions> = {}): RowcastClient {
  const client = createClient({ url: urls, token: signToken({ sub }), WebSocket: WebSocket as unknown as ClientOptions['WebSocket'], backoff: { initialMs: 50, maxMs: 500 }, ...extra });
  t.teardown(() => client.close());
  return client;
}

test('three nodes: clients spread over them get every event they may read, once, in the same order; topics cross nodes', withServerProcess, { sql: TABLES }, async (t, fixture) => {
  const { db } = fixture;
  const nodes = await cluster(t, fixture, 3);
  await leaderOf(nodes);
  const connect = (node: ServerProcess, claims: Record<string, unknown>) => LiveClient.connect(`${node.liveUrl}?token=${signToken(claims)}`);
  const alice = await Promise.all(nodes.map((node) => connect(node, { sub: 'alice' })));
  const bob = await connect(nodes[1]!, { sub: 'bob' });
  const admin = await connect(nodes[2]!, { sub: 'ops', role: 'admin' });
  for (const client of [...alice, bob, admin]) await client.subscribe('orders');

  for (let i = 1; i <= 60; i++) await db.query(`INSERT INTO orders VALUES ($1, $2, $1)`, [i, i % 2 === 1 ? 'alice' : 'bob']);
  await db.query(`UPDATE orders SET amount = amount + 1 WHERE id <= 10`);
  await db.query(`DELETE FROM orders WHERE id > 50`);
  const model = (owner: (id: number) => boolean) => [
    ...Array.from({ length: 60 }, (_, i) => i + 1).filter(owner).map((id) => `create:${id}`),
    ...Array.from({ length: 10 }, (_, i) => i + 1).filter(owner).map((id) => `update:${id}`),
    ...Array.from({ length: 10 }, (_, i) => i + 51).filter(owner).map((id) => `delete:${id}`),
  ];
  const seen = await Promise.all(alice.map((client) => client.events(40)));
  t.deepEqual(seen[0]!.map(label), model((id) => id % 2 === 1));
  t.deepEqual(seen[1], seen[0], 'node B sent alice the same frames as node A');
  t.deepEqual(seen[2], seen[0], 'node C sent alice the same frames as node A');
  const seqs = seen[0]!.map((f) => f.seq);
  t.deepEqual([...seqs].sort(), seqs);
  t.deepEqual((await bob.events(40)).map(label), model((id) => id % 2 === 0));
  t.deepEqual((await admin.events(80)).map(label), model(() => true));
  // Nothing doubled after them: the next frame each gets is the next row.
  await db.query(`INSERT INTO orders VALUES (1001, 'alice', 1)`);
  for (const client of alice) {
    t.is(label(await client.next(isEvent)), 'create:1001');
    t.is(client.frames.filter(isEvent).length, 41);
  }

  // A custom topic created on A is usable on C; an ephemeral message published on B reaches A and C.
  const adminA = await connect(nodes[0]!, { sub: 'ops', role: 'admin' });
  await adminA.call('create-topic', { name: 'room', history: 100 });
  await adminA.call('create-topic', { name: 'pings', history: 0 });
  const onC = await connect(nodes[2]!, { sub: 'carol' });
  await onC.subscribe('room');
  await onC.subscribe('pings');
  const onA = await connect(nodes[0]!, { sub: 'dave' });
  await onA.subscribe('pings');
  const fromC = await onC.call('new-message', { topicName: 'room', message: { text: 'stored, from C' } });
  t.like(await onC.next(isEvent), { topic: 'room', seq: fromC.seq, data: { id: fromC.id } });
  const onB = await connect(nodes[1]!, { sub: 'erin' });
  // B learns the topics from the stream a moment after A made them.
  const ping = await waitFor('B to know the ephemeral topic', async () => {
    const answer = await onB.request('new-message', { topicName: 'pings', message: { text: 'ephemeral, from B' } });
    return dataOf(answer, 'new-message');
  });
  const [atA, atC] = await Promise.all([onA.next(isEvent), onC.next(eventOn('pings'))]);
  t.like(atA, { topic: 'pings', seq: ping.seq, data: { id: ping.id, attributes: { message: { text: 'ephemeral, from B' }, sender: 'erin' } } });
  t.deepEqual(atC, atA);
});

test('doors in a cluster: phoenix.js clients on two nodes and a /live client on a third see the same rows, each only their own; messages cross nodes', withServerProcess, { sql: TABLES }, async (t, fixture) => {
  const nodes = await cluster(t, fixture, 3);
  await leaderOf(nodes);
  const alice = phoenixSocket(nodes[0]!.port, signToken({ sub: 'alice' }));
  const bob = phoenixSocket(nodes[1]!.port, signToken({ sub: 'bob' }));
  t.teardown(() => {
    alice.disconnect();
    bob.disconnect();
  });
  const aliceOrders = alice.channel('table:orders', {});
  const bobOrders = bob.channel('table:orders', {});
  const aliceSeen = new Collected(aliceOrders, ['create']);
  const bobSeen = new Collected(bobOrders, ['create']);
  await join(aliceOrders);
  await join(bobOrders);
  const admin = await LiveClient.connect(`${nodes[2]!.liveUrl}?token=${signToken({ sub: 'admin', role: 'admin' })}`);
  t.teardown(() => admin.close());
  await admin.subscribe('orders');
  await admin.call('create-topic', { name: 'crossing', history: 10 });
  const bobLobby = bob.channel('topic:crossing', {});
  const bobMessages = new Collected(bobLobby, ['message']);
  await join(bobLobby);

  await fixture.db.query(`INSERT INTO orders VALUES (1, 'alice', 10), (2, 'bob', 20), (3, 'alice', 30)`);
  t.deepEqual((await aliceSeen.atLeast(2)).map((e) => e.payload.id), ['1', '3']);
  t.deepEqual((await bobSeen.atLeast(1)).map((e) => e.payload.id), ['2']);
  t.is((await admin.events(3)).length, 3);
  await admin.call('new-message', { topicName: 'crossing', message: 'from node 3' });
  t.like((await bobMessages.atLeast(1))[0]!.payload, { attributes: { message: 'from node 3', sender: 'admin' } });
  // Nothing more arrives for Alice: Bob's row was never hers.
  await fixture.db.query(`INSERT INTO orders VALUES (4, 'alice', 40)`);
  t.deepEqual((await aliceSeen.atLeast(3)).map((e) => e.payload.id), ['1', '3', '4']);
});

test('Supabase clients in a cluster: realtime-js on two nodes get their own rows, and open-channel broadcasts cross nodes (self: false skips only the sender)', withServerProcess, { sql: TABLES }, async (t, fixture) => {
  const nodes = await cluster(t, fixture, 3);
  await leaderOf(nodes);
  const alice = realtimeClient(nodes[0]!.port, signToken({ sub: 'alice' }));
  const bob = realtimeClient(nodes[1]!.port, signToken({ sub: 'bob' }), '1.0.0');
  t.teardown(() => {
    void alice.disconnect();
    void bob.disconnect();
  });
  const aliceRows = new Inbox<{ new: { id: number } }>();
  const bobRows = new Inbox<{ new: { id: number } }>();
  const aliceWaves = new Inbox<{ payload: unknown }>();
  const bobWaves = new Inbox<{ payload: unknown }>();
  const aliceChannel = alice
    .channel('shop', { config: { broadcast: { self: false, ack: true } } })
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'orders' }, aliceRows.add)
    .on('broadcast', { event: 'wave' }, aliceWaves.add);
  const bobChannel = bob
    .channel('shop', { config: { broadcast: { self: false, ack: true } } })
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'orders' }, bobRows.add)
    .on('broadcast', { event: 'wave' }, bobWaves.add);
  await subscribed(aliceChannel);
  await subscribed(bobChannel);

  await fixture.db.query(`INSERT INTO orders VALUES (1, 'alice', 10), (2, 'bob', 20), (3, 'alice', 30)`);
  t.deepEqual((await aliceRows.atLeast(2)).map((c) => c.new.id), [1, 3]);
  t.deepEqual((await bobRows.atLeast(1)).map((c) => c.new.id), [2]);
  t.is(await aliceChannel.send({ type: 'broadcast', event: 'wave', payload: { from: 'alice' } }), 'ok');
  t.is(await bobChannel.send({ type: 'broadcast', event: 'wave', payload: { from: 'bob' } }), 'ok');
  t.deepEqual((await bobWaves.atLeast(1)).map((m) => m.payload), [{ from: 'alice' }]);
  // Alice's own wave would have reached her before Bob's.
  t.deepEqual((await aliceWaves.atLeast(1)).map((m) => m.payload), [{ from: 'bob' }]);
});

test('kill -9 of the leader under load: another node takes over, and every client ends with every row once', withServerProcess, { sql: TABLES }, async (t, fixture) => {
  const { db } = fixture;
  const nodes = await cluster(t, fixture, 3);
  const leader = await leaderOf(nodes);
  const urls = nodes.map((node) => node.liveUrl);
  // One client per node (each falls back to the next node's URL when its own goes).
  const received = nodes.map(() => [] as LiveEvent[]);
  const clients = nodes.map((_, i) => sdkClient(t, [...urls.slice(i), ...urls.slice(0, i)], 'alice'));
  await Promise.all(clients.map((client, i) => client.subscribe('orders', {}, (e) => received[i]!.push(e)).ready));

  let written = 0;
  let killed = false;
  const writer = (async () => {
    for (let id = 1; id <= 600; id++) {
      await db.query(`INSERT INTO orders VALUES ($1, $2, $1)`, [id, id % 3 === 0 ? 'bob' : 'alice']);
      written = id;
      if (id === 200) {
        killed = true;
        await nodes[leader]!.kill('SIGKILL');
      }
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
  })();
  await writer;
  t.true(killed);
  const survivors = nodes.filter((_, i) => i !== leader);
  await leaderOf(survivors);
  t.is(written, 600);

  const { rows } = await db.query<{ id: number }>(`SELECT id FROM orders WHERE owner_id = 'alice' ORDER BY id`);
  const expected = rows.map((r) => String(r.id));
  for (const [i, events] of received.entries()) {
    await waitFor(`client ${i} to have every alice row`, () => new Set(events.map((e) => e.data.id)).size === expected.length, 30_000);
    t.deepEqual(events.map((e) => e.data.id), expected, `client ${i}: every row once, in order`);
    t.is(new Set(events.map((e) => e.seq)).size, events.length);
  }
});

test('Redis loses its data: every node reports the gap, every client is told once (resumed: false), and the cluster goes on', withServerProcess, { sql: TABLES }, async (t, fixture) => {
  const { db } = fixture;
  const port = await freePort();
  const startRedis = (): ChildProcess => startRedisServer(port);
  let redis = startRedis();
  t.teardown(() => void redis.kill('SIGKILL'));
  const redisUrl = `redis://127.0.0.1:${port}`;
  const nodes = await waitFor('the nodes to start on the new Redis', () => cluster(t, fixture, 2, redisUrl).catch(() => null));
  await leaderOf(nodes);
  const urls = nodes.map((node) => node.liveUrl);
  const received = nodes.map(() => [] as LiveEvent[]);
  const resyncs = nodes.map(() => 0);
  const clients = nodes.map((_, i) => sdkClient(t, [urls[i]!], 'alice'));
  await Promise.all(clients.map((client, i) => client.subscribe('orders', { onResync: () => resyncs[i]!++ }, (e) => received[i]!.push(e)).ready));

  for (let id = 1; id <= 30; id++) await db.query(`INSERT INTO orders VALUES ($1, 'alice', $1)`, [id]);
  // Redis unreachable for a while, with its data: every node catches up from the stream, no gap, nobody told anything.
  redis.kill('SIGSTOP');
  for (let id = 31; id <= 50; id++) await db.query(`INSERT INTO orders VALUES ($1, 'alice', $1)`, [id]);
  await waitFor('/health to say redis', async () => {
    const response = await fetch(`http://127.0.0.1:${nodes[1]!.port}/health`);
    return response.status === 503 && ((await response.json()) as { failing: string[] }).failing.includes('redis');
  });
  redis.kill('SIGCONT');
  await waitFor('the first rows everywhere', () => received.every((events) => events.length === 50), 30_000);
  t.deepEqual(resyncs, [0, 0]);
  for (const node of nodes) t.like(await node.status(), { cluster: { gaps: 0 } });

  // Redis loses its data. Every node finds the stream's epoch changed: a gap (docs/cluster.md: "Gaps are
  // never silent"). It closes its connections with 1012, and its window answers resumed: false for any
  // since before the gap: a client's last event (row 50 or earlier) is older than the first transaction
  // of the new stream, and until that transaction the window replays nothing at all. So each client is
  // told exactly once, whether or not the rows written meanwhile still reach it.
  const reconnects = clients.map(() => [] as number[]);
  for (const [i, client] of clients.entries()) client.onState((state) => state.status === 'reconnecting' && reconnects[i]!.push(state.closeCode));
  redis.kill('SIGKILL');
  await new Promise((resolve) => redis.once('exit', resolve));
  for (let id = 51; id <= 80; id++) await db.query(`INSERT INTO orders VALUES ($1, 'alice', $1)`, [id]);
  redis = startRedis();
  // Back, empty: a leader reads the slot again into a new stream.
  await leaderOf(nodes);
  for (let id = 81; id <= 100; id++) await db.query(`INSERT INTO orders VALUES ($1, 'alice', $1)`, [id]);
  await waitFor('every client to be told', () => resyncs.every((n) => n > 0), 30_000);
  // And live again on every node.
  await waitFor('every client connected', () => clients.every((client) => client.state.status === 'open'));
  await db.query(`INSERT INTO orders VALUES (101, 'alice', 101)`);
  await waitFor('a row after the recovery everywhere', () => received.every((events) => events.some((e) => e.data.id === '101')), 30_000);
  t.deepEqual(resyncs, [1, 1]);
  t.deepEqual(reconnects.map((codes) => codes[0]), [CLOSE_CODES.STREAM_GAP, CLOSE_CODES.STREAM_GAP]);
  for (const node of nodes) t.like(await node.status(), { cluster: { gaps: 1 } });
  for (const [i, events] of received.entries()) {
    t.log(`client ${i}: ${events.length} rows`);
    t.is(new Set(events.map((e) => `${e.seq}/${e.part ?? 0}`)).size, events.length, `client ${i}: nothing twice`);
  }
});

test('crash run on three nodes: the leader killed twice at 1,000 changes/s; every client, moving between nodes, gets exactly what it may read', withServerProcess, { sql: CRASH_SCHEMA }, async (t, { db, start }) => {
  // (The run kills its nodes before it returns; the fixture drops the database after this.)
  t.teardown(() => dropClusterKeys(REDIS_URL, db.name));
  const result = await runCrashTest(db, {
    rate: 1000,
    seconds: 6,
    nodes: 3,
    disruptions: [
      { at: 2, kind: 'kill-leader' },
      { at: 4, kind: 'kill-leader' },
    ],
    copies: 1,
    reconnectEvery: 400,
    env: { HISTORY_EVENTS: '20000', REDIS_URL, CLUSTER_FAILOVER_MS: '300' },
    log: (line) => t.log(line),
    start,
  });
  t.log(describeCrashRun(result));
  t.deepEqual(result.problems, []);
  t.is(result.changes, 6000);
  t.true(result.readers.every((r) => r.expected > 0 && r.received === r.expected));
});
