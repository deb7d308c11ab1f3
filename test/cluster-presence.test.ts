/**
 * Presence over a cluster (docs/presence.md, "Cluster"): three nodes on one
 * Redis see each other's members; a node killed with SIGKILL has its members
 * leave everywhere within the heartbeat bound; Redis restarted empty
 * converges to exactly the live members, with no ghost.
 */
import type { ChildProcess } from 'node:child_process';
import test from 'ava';
import { Redis } from 'ioredis';
import { clusterNodes, REDIS_URL, startRedisServer } from './helpers/cluster-nodes.js';
import { freePort } from './helpers/free-port.js';
import { LiveClient } from './helpers/live-client.js';
import { presenceView } from './helpers/presence-view.js';
import type { ServerProcess } from './helpers/server-process.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

const ADMIN = signToken({ sub: 'admin', role: 'admin' });

/** A member: a /live client on `node` subscribed to `room` and present with meta `{name}`; `ref` is its meta's. */
async function member(node: ServerProcess, name: string): Promise<LiveClient & { ref: string }> {
  const client = await LiveClient.connect(`${node.liveUrl}?token=${signToken({ sub: name })}`);
  await client.subscribe('room');
  const { ref } = await client.call('track', { topicName: 'room', meta: { name } });
  return Object.assign(client, { ref });
}

/** The keys `client` sees present on room, sorted. */
function present(client: LiveClient): string {
  return [...(presenceView(client.frames, 'room')?.keys() ?? [])].sort().join(',');
}

/** The metas `client` sees on room, as sorted `key/phx_ref`: a ghost (a meta of a connection that is gone) shows. */
function metas(client: LiveClient): string {
  return [...(presenceView(client.frames, 'room') ?? new Map())].flatMap(([key, held]) => [...held.keys()].map((ref) => `${key}/${ref}`)).sort().join(',');
}

async function createRoom(node: ServerProcess): Promise<void> {
  const admin = await LiveClient.connect(`${node.liveUrl}?token=${ADMIN}`);
  await admin.call('create-topic', { name: 'room', history: 0, presence: true });
  admin.close();
}

test('three nodes (CLUSTER_SECRET): members on every node see each other, a member forged in Redis is ignored; kill -9 of a node makes its members leave everywhere within the bound', withServerProcess, {}, async (t, fixture) => {
  // Signed: every batch, announcement and stored entry carries CLUSTER_SECRET's signature.
  const nodes = await clusterNodes(t, fixture, 3, REDIS_URL, { CLUSTER_SECRET: 'presence-secret-0123456789' });
  await createRoom(nodes[0]!);
  const names = ['a0', 'a1', 'b0', 'b1', 'c0', 'c1'];
  const clients = await Promise.all(names.map((name, i) => waitFor(`${name} joins`, () => member(nodes[Math.floor(i / 2)]!, name).catch(() => null))));
  t.teardown(() => clients.forEach((client) => client.close()));
  await waitFor('every member everywhere', () => clients.every((client) => present(client) === names.join(',')));
  t.like(await nodes[0]!.status(), { presence: { topics: 1, presences: 6, own: 2, nodes: 3 } });

  // Whoever can write to Redis forges a node holding a member, without the secret: each node reads its hash
  // (its heartbeat is ahead of what they applied), ignores the unsigned entry, and says so.
  const prefix = `rowcast:${fixture.db.name}:presence`;
  const redis = new Redis(REDIS_URL);
  t.teardown(() => redis.disconnect());
  const ghost = { t: 'room', k: 'ghost', r: 'forged-1', m: JSON.stringify({ sub: 'ghost', phx_ref: 'forged-1' }) };
  await redis.multi().hset(`${prefix}:members:forger`, { 'room\u0000forged-1': JSON.stringify(ghost), '~seq': '5' }).set(`${prefix}:node:forger`, '5', 'PX', 60_000).sadd(`${prefix}:nodes`, 'forger').exec();
  await waitFor('every node to ignore the forged entry', () => nodes.every((node) => node.logs.some((l) => String(l['msg']).includes("forger's hash without a valid CLUSTER_SECRET signature was ignored"))));
  t.true(clients.every((client) => present(client) === names.join(',')));
  t.like(await nodes[0]!.status(), { presence: { presences: 6, nodes: 3 } });
  await redis.del(`${prefix}:members:forger`, `${prefix}:node:forger`);

  // An update on one node reaches the others as an update (a join with phx_ref_prev and a leave).
  await clients[0]!.call('track', { topicName: 'room', meta: { name: 'a0', typing: true } });
  await waitFor('the update on node 3', () => presenceView(clients[5]!.frames, 'room')?.get('a0')?.values().next().value?.['typing'] === true);
  t.is(presenceView(clients[5]!.frames, 'room')!.get('a0')!.size, 1);

  const killedAt = Date.now();
  await nodes[2]!.kill('SIGKILL');
  const survivors = clients.slice(0, 4);
  await waitFor("node 3's members gone on nodes 1 and 2", () => survivors.every((client) => present(client) === 'a0,a1,b0,b1'), 20_000);
  const seconds = (Date.now() - killedAt) / 1000;
  t.log(`members of the killed node left everywhere after ${seconds.toFixed(1)} s (PRESENCE_NODE_TTL_MS 3000)`);
  // The bound is the TTL, one heartbeat check (TTL/3) and one batch: about 4 s; more slack for a loaded machine.
  t.true(seconds < 8, `${seconds} s`);

  // A member joining afterwards on node 2 gets the state without ghosts.
  const late = await member(nodes[1]!, 'late');
  t.teardown(() => late.close());
  await waitFor('the late member sees exactly the live ones', () => present(late) === 'a0,a1,b0,b1,late');
  await waitFor('node 1 sees it too', () => present(clients[0]!) === 'a0,a1,b0,b1,late');
});

test('Redis restarted empty: nodes announce their members again, and every view converges to exactly the live members', withServerProcess, {}, async (t, fixture) => {
  const port = await freePort();
  const startRedis = (): ChildProcess => startRedisServer(port);
  let redis = startRedis();
  t.teardown(() => void redis.kill('SIGKILL'));
  const redisUrl = `redis://127.0.0.1:${port}`;
  const nodes = await waitFor('the nodes to start on the new Redis', () => clusterNodes(t, fixture, 2, redisUrl).catch(() => null));
  await createRoom(nodes[0]!);
  const names = ['a0', 'a1', 'b0', 'b1'];
  let clients: Array<LiveClient & { ref: string }> = await Promise.all(names.map((name, i) => waitFor(`${name} joins`, () => member(nodes[i % 2]!, name).catch(() => null))));
  t.teardown(() => clients.forEach((client) => client.close()));
  await waitFor('every member everywhere', () => clients.every((client) => present(client) === names.join(',')));

  redis.kill('SIGKILL');
  await new Promise((resolve) => redis.once('exit', resolve));
  // While Redis is away, a1 leaves for good.
  clients[1]!.close();
  redis = startRedis();
  // The cluster stream's gap closes every connection (docs/cluster.md); the members that are still here come back.
  await waitFor('every connection closed by the gap', () => [0, 2, 3].every((i) => clients[i]!.closeCode !== null), 30_000);
  const back = ['a0', 'b0', 'b1'];
  clients = await Promise.all(back.map((name, i) => waitFor(`${name} back`, () => member(nodes[i % 2]!, name).catch(() => null), 30_000)));
  const live = clients.map((client, i) => `${back[i]}/${client.ref}`).sort().join(',');
  await waitFor('every view is exactly the live metas', () => clients.every((client) => metas(client) === live), 30_000);
  // And stays so: the nodes' announcements after the restart bring no ghost back.
  const admin = await LiveClient.connect(`${nodes[1]!.liveUrl}?token=${ADMIN}`);
  t.teardown(() => admin.close());
  const adminView = async () => Object.keys((await admin.call('presence', { topicName: 'room' })).state).sort().join(',');
  await waitFor('the admin view agrees', async () => (await adminView()) === back.join(','));
  // Both nodes have announced on the new Redis, and what they hold there is exactly the live members: no later read brings a1 back.
  const stored = new Redis(redisUrl);
  t.teardown(() => stored.disconnect());
  const prefix = `rowcast:${fixture.db.name}:presence`;
  await waitFor('both nodes announced, holding exactly the live members', async () => {
    const beats = await stored.keys(`${prefix}:node:*`);
    const hashes = await Promise.all((await stored.keys(`${prefix}:members:*`)).map((key) => stored.hvals(key)));
    const keys = hashes.flat().filter((value) => value.startsWith('{')).map((value) => (JSON.parse(value) as { k: string }).k);
    return beats.length === 2 && keys.sort().join(',') === back.join(',');
  });
  t.is(await adminView(), back.join(','));
  for (const client of clients) t.is(metas(client), live);
});
