/**
 * Direct messages (docs/protocol.md, "Direct messages"): `direct-message`
 * reaches every connection of its recipient subscribed to their inbox `@me`,
 * on any node, as a `direct` frame; the inbox keeps the newest
 * `DIRECT_HISTORY`, read with `history` and resumed with `since`; who may
 * send is `DIRECT_MESSAGES`; the admin API messages one connection or one
 * user.
 */
import test from 'ava';
import { errorOf, isOk, LiveClient, type ServerFrame } from './helpers/live-client.js';
import { clusterNodes } from './helpers/cluster-nodes.js';
import { Collected, join, phoenixSocket } from './helpers/phoenix-client.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { operatorHeaders } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

type Direct = Extract<ServerFrame, { type: 'direct' }>;
const isDirect = (frame: ServerFrame): frame is Direct => frame.type === 'direct';
const directs = (client: LiveClient): Direct[] => client.frames.filter(isDirect);

test('a direct message reaches every connection of its recipient subscribed to @me, and no one else', withServer, { env: { DIRECT_MESSAGES: 'authenticated' } }, async (t, { connect }) => {
  const alice = [await connect({ sub: 'alice' }), await connect({ sub: 'alice' })];
  const carol = await connect({ sub: 'carol' });
  const bob = await connect({ sub: 'bob' });
  for (const client of [...alice, carol]) t.like(await client.subscribe('@me'), { data: { topics: ['@me'] } });
  const answer = await bob.request('direct-message', { to: 'alice', message: { text: 'hi alice' } });
  t.true(isOk(answer));
  const { id, seq } = (answer as { data: { id: string; seq: string } }).data;
  t.regex(seq, /^[0-9A-F]{16}-[0-9A-F]{8}$/);
  for (const client of alice) {
    const frame = (await client.next(isDirect)) as Direct;
    t.deepEqual(Object.keys(frame).sort(), ['createdAt', 'from', 'id', 'message', 'seq', 'type']);
    t.like(frame, { type: 'direct', from: 'bob', id, seq, message: { text: 'hi alice' } });
  }
  // Carol's own message arrives; Alice's never did.
  await bob.call('direct-message', { to: 'carol', message: 'hi carol' });
  await carol.next(isDirect);
  t.deepEqual(directs(carol).map((f) => f.message), ['hi carol']);
  t.deepEqual(directs(bob), [], 'the sender is not subscribed to its inbox and gets nothing');
});

test('the inbox keeps the newest DIRECT_HISTORY per user; history on @me shows only one’s own; since resumes it', withServer, { env: { DIRECT_MESSAGES: 'authenticated', DIRECT_HISTORY: '3' } }, async (t, { connect }) => {
  const bob = await connect({ sub: 'bob' });
  for (let i = 1; i <= 5; i++) await bob.call('direct-message', { to: 'alice', message: `a${i}` });
  await bob.call('direct-message', { to: 'dave', message: 'd1' });
  const alice = await connect({ sub: 'alice' });
  const history = (await alice.call('history', { topicName: '@me' })) as { messages: Array<{ message: string; seq: string; sender: string }> };
  t.deepEqual(history.messages.map((m) => m.message), ['a5', 'a4', 'a3']);
  t.true(history.messages.every((m) => m.sender === 'bob'));

  // Resume after the oldest kept one: the two after it, then live.
  const from = history.messages[2]!.seq;
  const resumed = await alice.subscribe('@me', { since: from });
  t.like(resumed, { data: { resumed: true } });
  await waitFor('the replayed messages', () => directs(alice).length >= 2);
  t.deepEqual(directs(alice).map((f) => f.message), ['a4', 'a5']);
  await bob.call('direct-message', { to: 'alice', message: 'a6' });
  await waitFor('the live message', () => directs(alice).length === 3);
  t.deepEqual(directs(alice).map((f) => f.message), ['a4', 'a5', 'a6']);

  // Further back than the inbox keeps: not resumed.
  const dave = await connect({ sub: 'dave' });
  const daveHistory = (await dave.call('history', { topicName: '@me' })) as { messages: Array<{ message: string }> };
  t.deepEqual(daveHistory.messages.map((m) => m.message), ['d1']);
});

test('who may send: DIRECT_MESSAGES admin (the default) and off; @me is no ordinary topic', withServer, {}, async (t, { connect }) => {
  const bob = await connect({ sub: 'bob' });
  const refused = await bob.request('direct-message', { to: 'alice', message: 'hi' });
  t.is(errorOf(refused).code, 'FORBIDDEN');
  const admin = await connect({ sub: 'root', role: 'admin' });
  const alice = await connect({ sub: 'alice' });
  await alice.subscribe('@me');
  await admin.call('direct-message', { to: 'alice', message: 'from the admins' });
  t.like(await alice.next(isDirect), { from: 'root', message: 'from the admins' });

  t.is(errorOf(await alice.request('new-message', { topicName: '@me', message: 'x' })).code, 'READ_ONLY_TOPIC');
  t.is(errorOf(await admin.request('destroy-topic', { name: '@me' })).code, 'FORBIDDEN');
  t.is(errorOf(await bob.request('direct-message', { to: '', message: 'x' })).code, 'INVALID_ATTRIBUTES');
  t.is(errorOf(await admin.request('direct-message', { to: 'alice', message: 'x'.repeat(70_000) })).code, 'LIMIT_EXCEEDED');
});

test('DIRECT_MESSAGES=off refuses everyone, admins too; an anonymous connection has no inbox', withServer, { env: { DIRECT_MESSAGES: 'off', ALLOW_ANONYMOUS: 'true' } }, async (t, { connect, liveUrl }) => {
  const admin = await connect({ sub: 'root', role: 'admin' });
  const refused = await admin.request('direct-message', { to: 'alice', message: 'hi' });
  t.is(errorOf(refused).code, 'FORBIDDEN');
  t.regex(errorOf(refused).message, /off/);
  const anonymous = await LiveClient.connect(liveUrl);
  try {
    t.is(errorOf(await anonymous.request('subscribe', { topicName: '@me' })).code, 'TOPIC_NOT_FOUND');
  } finally {
    anonymous.close();
  }
});

test('a Phoenix client gets its direct messages on the channel topic:@me', withServer, {}, async (t, { connect, server }) => {
  const socket = phoenixSocket(server.port, signToken({ sub: 'alice' }));
  try {
    const inbox = socket.channel('topic:@me', {});
    const seen = new Collected(inbox, ['message']);
    await join(inbox);
    const admin = await connect({ sub: 'root', role: 'admin' });
    await admin.call('direct-message', { to: 'alice', message: 'hi from /live' });
    await admin.call('direct-message', { to: 'bob', message: 'not for alice' });
    await admin.call('direct-message', { to: 'alice', message: 'again' });
    const messages = await seen.atLeast(2);
    t.deepEqual(messages.map((m) => (m.payload['attributes'] as { message: string }).message), ['hi from /live', 'again']);
  } finally {
    socket.disconnect();
  }
});

test('a realtime-js client gets its direct messages as broadcasts on the private channel @me, and cannot send on it', withServer, {}, async (t, { connect, server, token }) => {
  const alice = realtimeClient(server.port, token({ sub: 'alice' }));
  t.teardown(() => void alice.disconnect());
  const got = new Inbox<{ event: string; payload: unknown }>();
  const inbox = alice.channel('@me', { config: { private: true, broadcast: { ack: true } } }).on('broadcast', { event: '*' }, got.add);
  await subscribed(inbox);
  const admin = await connect({ sub: 'root', role: 'admin' });
  await admin.call('direct-message', { to: 'bob', message: 'not for alice' });
  await admin.call('direct-message', { to: 'alice', message: { event: 'ping', payload: { n: 1 } } });
  await admin.call('direct-message', { to: 'alice', message: 'plain' });
  const [first, second] = await got.atLeast(2);
  t.like(first, { event: 'ping', payload: { n: 1 } });
  t.like(second, { event: 'message', payload: 'plain' });
  t.is(got.items.length, 2);
  t.is(await inbox.send({ type: 'broadcast', event: 'x', payload: {} }), 'error');
});

test('the admin API: a direct frame to one connection (kept nowhere), and a direct message to a user', withServer, {}, async (t, { connect, server }) => {
  const alice = await connect({ sub: 'alice' });
  const other = await connect({ sub: 'alice' });
  await other.subscribe('@me');
  const post = (path: string, body: unknown) =>
    fetch(`http://127.0.0.1:${server.port}${path}`, { method: 'POST', headers: { ...operatorHeaders(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const one = await post(`/admin/connections/${alice.session.connectionId}/message`, { message: { notice: 'only you' } });
  t.is(one.status, 200);
  t.like(await alice.next(isDirect), { type: 'direct', seq: null, message: { notice: 'only you' } });
  t.is((await post('/admin/connections/nope/message', { message: 1 })).status, 404);
  t.is((await post(`/admin/connections/${alice.session.connectionId}/message`, {})).status, 400);

  const stored = await post('/admin/users/alice/message', { message: 'kept' });
  t.is(stored.status, 200);
  t.regex(((await stored.json()) as { seq: string }).seq, /^[0-9A-F]{16}-/);
  t.like(await other.next(isDirect), { message: 'kept' });
  t.deepEqual(directs(other).map((f) => f.message), ['kept'], 'the frame to one connection reached that one only');
});

test('across a three-node cluster: a direct message reaches the recipient on every node, and a reconnect resumes with since', withServerProcess, {}, async (t, fixture) => {
  const nodes = await clusterNodes(t, fixture, 3, undefined, { DIRECT_MESSAGES: 'authenticated' });
  const connect = (i: number, sub: string) => LiveClient.connect(`${nodes[i]!.liveUrl}?token=${signToken({ sub })}`);
  const alice = [await connect(0, 'alice'), await connect(1, 'alice')];
  const bob = await connect(2, 'bob');
  t.teardown(() => [...alice, bob].forEach((client) => client.close()));
  for (const client of alice) await client.subscribe('@me');
  await bob.call('direct-message', { to: 'alice', message: 'm1' });
  for (const client of alice) t.like(await client.next(isDirect), { from: 'bob', message: 'm1' });

  // Alice's first connection goes away; two messages are sent meanwhile; she comes back on another node with since.
  const last = directs(alice[0]!)[0]!.seq!;
  alice[0]!.close();
  await bob.call('direct-message', { to: 'alice', message: 'm2' });
  await bob.call('direct-message', { to: 'alice', message: 'm3' });
  const back = await connect(2, 'alice');
  t.teardown(() => back.close());
  t.like(await back.subscribe('@me', { since: last }), { data: { resumed: true } });
  await waitFor('the missed messages', () => directs(back).length >= 2);
  await bob.call('direct-message', { to: 'alice', message: 'm4' });
  await waitFor('the live one', () => directs(back).length >= 3);
  t.deepEqual(directs(back).map((f) => f.message), ['m2', 'm3', 'm4']);
  await waitFor('every message on the connection that stayed', () => directs(alice[1]!).length >= 4);
  t.deepEqual(directs(alice[1]!).map((f) => f.message), ['m1', 'm2', 'm3', 'm4']);
});
