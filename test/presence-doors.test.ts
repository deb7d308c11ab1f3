/**
 * Presence through the other doors with their real clients: phoenix.js's
 * `Presence` class on `topic:<name>`, and realtime-js's `presenceState()`
 * and `presence` events on Supabase channels; all three doors see each
 * other's members on one topic.
 */
import test from 'ava';
import { Presence } from 'phoenix';
import { join, phoenixSocket, pushAndWait } from './helpers/phoenix-client.js';
import { presenceView, summary } from './helpers/presence-view.js';
import { realtimeClient, subscribed } from './helpers/supabase-client.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';

const ADMIN = { sub: 'admin-1', role: 'admin' };

/** key → sorted `tab`s, keys sorted: what a test compares. */
function tabs(state: Record<string, { metas: ReadonlyArray<Record<string, unknown>> }>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(state).sort(([a], [b]) => a.localeCompare(b)).map(([key, { metas }]) => [key, metas.map((m) => m['tab']).sort()])));
}

test('phoenix.js Presence: sync, onJoin and onLeave on topic:<name>; two tabs of one user are one key with two metas', withServer, {}, async (t, { connect, server, token }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'room', history: 0, presence: true });
  const sockets = ['watcher', 'alice', 'alice'].map((sub) => phoenixSocket(server.port, token({ sub })));
  t.teardown(() => sockets.forEach((socket) => socket.disconnect()));
  const [watcherChannel, tab1, tab2] = sockets.map((socket) => socket.channel('topic:room', {}));
  const presence = new Presence(watcherChannel!);
  const joined: string[] = [];
  const left: string[] = [];
  let syncs = 0;
  presence.onJoin((key, current) => {
    if (!current) joined.push(key!);
  });
  presence.onLeave((key, current) => {
    if (current.metas.length === 0) left.push(key!);
  });
  presence.onSync(() => void syncs++);
  await join(watcherChannel!);
  await waitFor('the first sync (presence_state)', () => syncs > 0);
  for (const tab of [tab1!, tab2!]) await join(tab);
  const tracked = await pushAndWait(tab1!, 'track', { meta: { tab: 1 } });
  t.like(tracked, { topic: 'room', key: 'alice' });
  await pushAndWait(tab2!, 'track', { meta: { tab: 2 } });
  const list = () => tabs(Object.fromEntries(presence.list((key, value) => [key!, value])));
  await waitFor('alice with two tabs', () => list() === tabs({ alice: { metas: [{ tab: 1 }, { tab: 2 }] } }));
  t.deepEqual(joined, ['alice']);

  await pushAndWait(tab1!, 'track', { meta: { tab: 11 } });
  await waitFor('tab 1 updated', () => list() === tabs({ alice: { metas: [{ tab: 11 }, { tab: 2 }] } }));
  sockets[2]!.disconnect();
  await waitFor('one tab left', () => list() === tabs({ alice: { metas: [{ tab: 11 }] } }));
  t.deepEqual(left, []);
  await pushAndWait(tab1!, 'untrack', {});
  await waitFor('alice gone', () => list() === '{}');
  t.deepEqual(left, ['alice']);
});

for (const vsn of ['2.0.0', '1.0.0'] as const) {
  test(`realtime-js (vsn ${vsn}): presenceState() and presence sync/join/leave on an open channel; /live and Phoenix members of ~<name> are seen too`, withServer, {}, async (t, { connect, server, token }) => {
    const clients = ['alice', 'bob'].map((sub) => realtimeClient(server.port, token({ sub }), vsn));
    t.teardown(() => clients.forEach((client) => client.disconnect()));
    const [alice, bob] = clients.map((client, i) => client.channel('lobby', { config: { presence: { key: i === 0 ? 'alice-key' : '' } } }));
    const events: string[] = [];
    let syncs = 0;
    alice!.on('presence', { event: 'sync' }, () => syncs++);
    alice!.on('presence', { event: 'join' }, ({ key }) => events.push(`join ${key}`));
    alice!.on('presence', { event: 'leave' }, ({ key }) => events.push(`leave ${key}`));
    await subscribed(alice!);
    await waitFor('the first sync', () => syncs > 0);
    t.is(await alice!.track({ tab: 'a' }), 'ok');
    await subscribed(bob!);
    t.is(await bob!.track({ tab: 'b' }), 'ok');

    // A /live client on ~lobby and a Phoenix one on topic:~lobby are members of the same channel.
    const live = await connect({ sub: 'carol' });
    await live.subscribe('~lobby');
    await live.call('track', { topicName: '~lobby', meta: { tab: 'c' } });
    const phoenix = phoenixSocket(server.port, token({ sub: 'dave' }));
    t.teardown(() => phoenix.disconnect());
    const phoenixChannel = phoenix.channel('topic:~lobby', {});
    await join(phoenixChannel);
    await pushAndWait(phoenixChannel, 'track', { meta: { tab: 'd' } });

    const seen = () => alice!.presenceState() as unknown as Record<string, Array<Record<string, unknown>>>;
    await waitFor('four members', () => Object.keys(seen()).length === 4);
    const state = seen();
    t.like(state['alice-key']![0], { tab: 'a', sub: 'alice' });
    const bobKey = Object.keys(state).find((key) => state[key]![0]!['tab'] === 'b')!;
    t.regex(bobKey, /^[0-9a-f-]{36}$/, 'an empty key is a generated id');
    t.like(state[bobKey]![0], { sub: 'bob' });
    t.like(state['carol']![0], { tab: 'c', sub: 'carol' });
    t.like(state['dave']![0], { tab: 'd', sub: 'dave' });
    // The /live client sees the Supabase members the same way.
    await waitFor('/live sees four', () => presenceView(live.frames, '~lobby')?.size === 4);
    t.deepEqual(summary(presenceView(live.frames, '~lobby'), 'tab'), { 'alice-key': ['a'], [bobKey]: ['b'], carol: ['c'], dave: ['d'] });

    t.is(await bob!.untrack(), 'ok');
    await waitFor('bob left', () => !(bobKey in seen()));
    t.true(events.includes('join alice-key') && events.includes(`leave ${bobKey}`), events.join());
    // A later join gets the state first: presenceState() is whole at once.
    await clients[1]!.removeChannel(bob!);
    const late = clients[1]!.channel('lobby');
    await subscribed(late);
    await waitFor('the late channel has everyone', () => Object.keys(late.presenceState()).length === 3);
  });
}

test('realtime-js: a custom topic without presence refuses track; with presence its readers track', withServer, {}, async (t, { connect, server, token }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'news', history: 0 });
  await admin.call('create-topic', { name: 'team', history: 0, presence: true });
  const client = realtimeClient(server.port, token({ sub: 'u1' }));
  t.teardown(() => client.disconnect());
  const news = client.channel('news');
  await subscribed(news);
  t.is(await news.track({ tab: 1 }), 'error');
  const team = client.channel('team');
  await subscribed(team);
  t.is(await team.track({ tab: 1 }), 'ok');
  const { state } = await admin.call('presence', { topicName: 'team' });
  await waitFor('the admin API sees u1', async () => Object.keys((await admin.call('presence', { topicName: 'team' })).state).length === 1);
  t.truthy(state);
});
