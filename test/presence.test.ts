/**
 * Presence on `/live` (docs/presence.md): track, untrack, the state after
 * subscribing and the batched diffs, the limits. The other doors' real
 * clients are in phoenix-presence and supabase-presence tests; the cluster
 * in cluster-presence.
 */
import test from 'ava';
import { isOk, type LiveClient } from './helpers/live-client.js';
import { presenceView, summary } from './helpers/presence-view.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';

const ADMIN = { sub: 'admin-1', role: 'admin' };

/** Waits until `client`'s view of `topic` is `expected` (key → sorted `tab` values of its metas). */
function sees(client: LiveClient, topic: string, expected: Record<string, unknown[]>) {
  const want = JSON.stringify(Object.fromEntries(Object.entries(expected).sort(([a], [b]) => a.localeCompare(b))));
  return waitFor(`presence on ${topic}: ${want}`, () => JSON.stringify(summary(presenceView(client.frames, topic), 'tab')) === want, 10_000);
}

test('/live: two tabs of one user are one key with two metas; closing one leaves one; others see joins, updates and leaves', withServer, {}, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  const created = await admin.call('create-topic', { name: 'room', history: 0, presence: true });
  t.true(created.presence);
  const watcher = await connect({ sub: 'watcher' });
  await watcher.subscribe('room');
  await watcher.next((f) => f.type === 'presence' && f.event === 'state');
  t.deepEqual(presenceView(watcher.frames, 'room')?.size, 0);

  const tab1 = await connect({ sub: 'alice' });
  const tab2 = await connect({ sub: 'alice' });
  for (const tab of [tab1, tab2]) await tab.subscribe('room');
  const one = await tab1.call('track', { topicName: 'room', meta: { tab: 1, sub: 'forged', phx_ref: 'forged' } });
  t.like(one, { topic: 'room', key: 'alice' });
  await tab2.call('track', { topicName: 'room', meta: { tab: 2 } });
  await sees(watcher, 'room', { alice: [1, 2] });
  // The server sets sub and phx_ref, whatever the client sent.
  const meta = presenceView(watcher.frames, 'room')!.get('alice')!.get(one.ref)!;
  t.like(meta, { tab: 1, sub: 'alice', phx_ref: one.ref });

  // An update is a join with phx_ref_prev and a leave of the old meta.
  const updated = await tab1.call('track', { topicName: 'room', meta: { tab: 11 } });
  await sees(watcher, 'room', { alice: [11, 2] });
  t.is(presenceView(watcher.frames, 'room')!.get('alice')!.get(updated.ref)!['phx_ref_prev'], one.ref);

  // A late joiner gets the state at once.
  const late = await connect({ sub: 'late' });
  await late.subscribe('room');
  await sees(late, 'room', { alice: [11, 2] });

  tab2.close();
  await sees(watcher, 'room', { alice: [11] });
  t.like(await tab1.call('untrack', { topicName: 'room' }), { untracked: true });
  await sees(watcher, 'room', {});
  await sees(late, 'room', {});
  t.deepEqual((await late.call('presence', { topicName: 'room' })).state, {});
});

test('/live: unsubscribing leaves; subscribing again (since) keeps the presence; diffs are batched', withServer, {}, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'room', history: 10, presence: true });
  const watcher = await connect({ sub: 'watcher' });
  await watcher.subscribe('room');
  const users = await Promise.all(Array.from({ length: 20 }, (_, i) => connect({ sub: `u${i}` })));
  for (const user of users) await user.subscribe('room');
  await Promise.all(users.map((user, i) => user.call('track', { topicName: 'room', meta: { tab: i } })));
  await sees(watcher, 'room', Object.fromEntries(users.map((_, i) => [`u${i}`, [i]])));
  // 20 joins within a few batches, not one diff each.
  const diffs = watcher.frames.filter((f) => f.type === 'presence' && f.event === 'diff').length;
  t.true(diffs < 20, `${diffs} diffs for 20 joins`);

  const first = users[0]!;
  const { seq } = (await first.subscribe('room')).data;
  await first.subscribe('room', { since: seq });
  t.deepEqual((await first.call('presence', { topicName: 'room' })).state['u0']?.metas.length, 1);
  await first.call('unsubscribe', { topicName: 'room' });
  await sees(watcher, 'room', Object.fromEntries(users.slice(1).map((_, i) => [`u${i + 1}`, [i + 1]])));
});

test('/live: presence needs a topic with presence and a subscription; limits are coded', withServer, {
  env: { PRESENCE_MAX_META_BYTES: '64', PRESENCE_MAX_MEMBERS: '2', PRESENCE_MAX_METAS_PER_KEY: '2', PRESENCE_TRACK_RATE: '5' },
}, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'plain', history: 0 });
  await admin.call('create-topic', { name: 'room', history: 0, presence: true });
  const user = await connect({ sub: 'u1' });
  const code = async (method: string, attributes: Record<string, unknown>) => {
    const answer = await user.request(method, attributes);
    return isOk(answer) ? 'ok' : answer.type === 'response' ? answer.error.code : 'pong';
  };
  t.is(await code('track', { topicName: 'room', meta: {} }), 'INVALID_ATTRIBUTES'); // not subscribed
  await user.subscribe('plain');
  t.is(await code('track', { topicName: 'plain', meta: {} }), 'INVALID_ATTRIBUTES'); // no presence
  t.is(await code('track', { topicName: 'nowhere', meta: {} }), 'TOPIC_NOT_FOUND');
  t.is(await code('track', { topicName: 'room', meta: [] }), 'INVALID_ATTRIBUTES');
  await user.subscribe('room');
  t.is(await code('track', { topicName: 'room', meta: { text: 'x'.repeat(100) } }), 'LIMIT_EXCEEDED');
  t.is(await code('track', { topicName: 'room', meta: { tab: 1 } }), 'ok');

  // Two members at most; two metas per key at most.
  const others = await Promise.all(['u2', 'u3', 'u1', 'u1'].map((sub) => connect({ sub })));
  for (const other of others) await other.subscribe('room');
  t.true(isOk(await others[0]!.request('track', { topicName: 'room', meta: {} })));
  t.like(await others[1]!.request('track', { topicName: 'room', meta: {} }), { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  t.true(isOk(await others[2]!.request('track', { topicName: 'room', meta: {} })));
  t.like(await others[3]!.request('track', { topicName: 'room', meta: {} }), { ok: false, error: { code: 'LIMIT_EXCEEDED' } });

  // PRESENCE_TRACK_RATE: a burst of 5, then refused, and the connection stays up.
  const answers = [];
  for (let i = 0; i < 8; i++) answers.push(await code('track', { topicName: 'room', meta: { n: i } }));
  t.true(answers.includes('RATE_LIMIT_EXCEEDED'), answers.join());
  t.true(isOk(await user.request('list-topic')));
});

test('/live: a topic\'s presence state stays below half of what a socket may buffer (it goes whole to each joiner)', withServer, { env: { MAX_BACKPRESSURE_BYTES: '8192' } }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'room', history: 0, presence: true });
  const meta = { bio: 'x'.repeat(900) };
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) {
    const user = await connect({ sub: `u${i}` });
    await user.subscribe('room');
    const answer = await user.request('track', { topicName: 'room', meta });
    answers.push(isOk(answer) ? 'ok' : answer.type === 'response' ? answer.error.code : '?');
  }
  // 4,096 bytes of state: four metas of about 950 bytes fit, the fifth does not.
  t.deepEqual(answers, ['ok', 'ok', 'ok', 'ok', 'LIMIT_EXCEEDED', 'LIMIT_EXCEEDED']);
  const joiner = await connect({ sub: 'joiner' });
  await joiner.subscribe('room');
  await sees(joiner, 'room', { u0: [undefined], u1: [undefined], u2: [undefined], u3: [undefined] });
});
