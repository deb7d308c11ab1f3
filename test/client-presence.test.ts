/**
 * Presence in the client SDK (`client.presence(topic)`) and in React
 * (`usePresence`), against the real server: one user's two clients are one
 * key with two metas, the state kept by Phoenix's syncState/syncDiff rules,
 * the app's own subscription shared, a reconnect's state replacing what was
 * held and the client tracking itself again, and a component that renders
 * the members and re-renders only when they change.
 */
import { GlobalRegistrator } from '@happy-dom/global-registrator';
import test from 'ava';
import { createElement as h, StrictMode, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient, type ClientOptions, type ConnectionState, type LiveEvent, type Presence, type PresenceMetaInput, type PresenceMetas, type RowcastClient } from '@rowcast/client';
import { RowcastProvider, usePresence } from '@rowcast/react';
import { recordingWebSocket, rejection } from './helpers/sdk-client.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';

/** Node's fetch: happy-dom's, registered below for React, applies browser CORS rules to the admin API. */
const nodeFetch = fetch;
GlobalRegistrator.register();
// Updates come from the network, as in a browser: the tests wait for what the DOM shows instead of wrapping them in act().
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false;

const ADMIN = { sub: 'admin-1', role: 'admin' };

/** The few DOM parts used here (the project compiles without the DOM lib). */
interface ElementLike {
  readonly textContent: string | null;
  remove(): void;
}
const document = (globalThis as unknown as { document: { createElement(tag: string): ElementLike; body: { append(node: ElementLike): void } } }).document;

/** An SDK client on `url` (Node 20 has no global WebSocket: `ws` stands in), closed after the test. */
function open(t: { teardown(fn: () => void): void }, options: Omit<ClientOptions, 'WebSocket'>, sent: string[] = []): RowcastClient {
  const client = createClient({ ...options, WebSocket: recordingWebSocket(sent) });
  t.teardown(() => client.close());
  return client;
}

/** A presence state as sorted `key: [field of each meta]`, for comparing. */
function summary(state: ReturnType<Presence['state']>, field: string): Record<string, unknown[]> {
  const entries = Object.entries(state).sort(([a], [b]) => a.localeCompare(b));
  return Object.fromEntries(entries.map(([key, { metas }]) => [key, metas.map((meta) => meta[field]).sort()]));
}

/** Waits until `presence` holds `expected` (key → sorted `field` values of its metas). */
function sees(presence: Presence, expected: Record<string, unknown[]>, field = 'name') {
  const want = JSON.stringify(Object.fromEntries(Object.entries(expected).sort(([a], [b]) => a.localeCompare(b))));
  return waitFor(`${presence.topic}'s presence to be ${want}`, () => JSON.stringify(summary(presence.state(), field)) === want, 10_000);
}

const tracks = (sent: string[]) => sent.filter((frame) => JSON.parse(frame).method === 'track').length;

test('two clients of one user are one key with two metas; closing one leaves one; onSync, onJoin and onLeave follow', withServer, {}, async (t, { liveUrl, connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'room', history: 0, presence: true });
  const watcher = open(t, { url: liveUrl, token: signToken({ sub: 'watcher' }) }).presence('room');
  let syncs = 0;
  const joins: Array<[string, number | undefined, number]> = [];
  const leaves: Array<[string, number, number]> = [];
  watcher.onSync(() => syncs++);
  watcher.onJoin((key, current, joined) => joins.push([key, current?.metas.length, joined.metas.length]));
  watcher.onLeave((key, current, left) => leaves.push([key, current.metas.length, left.metas.length]));
  await watcher.ready;
  await waitFor('the state after subscribing', () => syncs === 1);
  t.deepEqual(watcher.state(), {});

  const tab1 = open(t, { url: liveUrl, token: signToken({ sub: 'alice' }) }).presence('room');
  const tab2Client = open(t, { url: liveUrl, token: signToken({ sub: 'alice' }) });
  const tab2 = tab2Client.presence('room');
  const first = await tab1.track({ name: 'tab 1' });
  t.like(first, { topic: 'room', key: 'alice' });
  await tab2.track({ name: 'tab 2' });
  await sees(watcher, { alice: ['tab 1', 'tab 2'] });
  // The server sets sub and phx_ref.
  t.like(watcher.state()['alice']!.metas.find((meta) => meta.phx_ref === first.ref), { name: 'tab 1', sub: 'alice' });
  await sees(tab1, { alice: ['tab 1', 'tab 2'] });
  t.deepEqual(joins[0]?.slice(0, 2), ['alice', undefined]);

  tab2Client.close();
  await sees(watcher, { alice: ['tab 1'] });
  t.deepEqual(leaves.at(-1), ['alice', 1, 1]);

  // An update: a join with phx_ref_prev and a leave of the old meta, one meta still.
  const updated = await tab1.track({ name: 'tab 1, away' });
  await sees(watcher, { alice: ['tab 1, away'] });
  t.is(watcher.state()['alice']!.metas[0]!.phx_ref_prev, first.ref);
  t.not(updated.ref, first.ref);

  t.like(await tab1.untrack(), { topic: 'room', untracked: true });
  await sees(watcher, {});
  t.deepEqual(leaves.at(-1), ['alice', 0, 1]);
  t.true(syncs >= 5, `${syncs} syncs`);
});

test('presence shares the app subscription to the topic; close untracks and keeps it', withServer, {}, async (t, { liveUrl, connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'room', history: 10, presence: true });
  const bob = open(t, { url: liveUrl, token: signToken({ sub: 'bob' }) }).presence('room');
  await bob.track({ name: 'bob' });
  // Told to everyone: no diff of bob's join is left to come after alice subscribes.
  await sees(bob, { bob: ['bob'] });

  const sent: string[] = [];
  const alice = open(t, { url: liveUrl, token: signToken({ sub: 'alice' }) }, sent);
  const messages: LiveEvent[] = [];
  await alice.subscribe('room', {}, (event) => messages.push(event)).ready;
  // Subscribed already: the state frame went by before the presence was asked for; it asks for the state.
  const room = alice.presence('room');
  await sees(room, { bob: ['bob'] });
  await room.track({ name: 'alice' });
  await sees(bob, { alice: ['alice'], bob: ['bob'] });
  t.is(sent.filter((frame) => JSON.parse(frame).method === 'subscribe').length, 1);

  room.close();
  await sees(bob, { bob: ['bob'] });
  await admin.call('new-message', { topicName: 'room', message: { text: 'still subscribed' } });
  await waitFor('the message', () => messages.length === 1);
  t.false(sent.some((frame) => JSON.parse(frame).method === 'unsubscribe'));
});

test('refusals are coded: a topic without presence, a missing topic, a meta too large', withServer, { env: { PRESENCE_MAX_META_BYTES: '64' } }, async (t, { liveUrl, connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'plain', history: 0 });
  const client = open(t, { url: liveUrl, token: signToken({ sub: 'alice' }) });
  t.is((await rejection(client.presence('plain').track({ name: 'alice' }))).code, 'INVALID_ATTRIBUTES');
  t.is((await rejection(client.presence('nowhere').ready)).code, 'TOPIC_NOT_FOUND');
  const lobby = client.presence('~lobby');
  t.is((await rejection(lobby.track({ name: 'x'.repeat(100) }))).code, 'LIMIT_EXCEEDED');
  await lobby.track({ name: 'alice' });
  await sees(lobby, { alice: ['alice'] });
});

test('after the server drops the connection, the state on reconnect replaces what was held and the client tracks itself again', withServer, {}, async (t, { liveUrl, connect, server }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'room', history: 0, presence: true });
  // Alice's reconnect waits for this gate: what happens while she is away is settled first.
  let reopen = () => {};
  const gate = new Promise<void>((resolve) => {
    reopen = resolve;
  });
  let connects = 0;
  const aliceClient = open(t, {
    url: liveUrl,
    getToken: async () => {
      if (connects++ > 0) await gate;
      return signToken({ sub: 'alice' });
    },
    backoff: { initialMs: 20, maxMs: 50 },
  });
  const alice = aliceClient.presence('room');
  const left: string[] = [];
  alice.onLeave((key) => left.push(key));
  const bobClient = open(t, { url: liveUrl, token: signToken({ sub: 'bob' }) });
  await bobClient.presence('room').track({ name: 'bob' });
  const watcher = open(t, { url: liveUrl, token: signToken({ sub: 'watcher' }) }).presence('room');
  const before = await alice.track({ name: 'alice' });
  await sees(alice, { alice: ['alice'], bob: ['bob'] });
  await sees(watcher, { alice: ['alice'], bob: ['bob'] });

  const { connectionId } = (aliceClient.state as Extract<ConnectionState, { status: 'open' }>).session;
  const dropped = await nodeFetch(`http://127.0.0.1:${server.port}/admin/connections/${connectionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${signToken(ADMIN)}` } });
  t.is(dropped.status, 200);
  await waitFor('alice to be reconnecting', () => aliceClient.state.status === 'reconnecting');
  // The server forgot her presence; bob leaves while she is away, and she misses the diff.
  await sees(watcher, { bob: ['bob'] });
  bobClient.close();
  await sees(watcher, {});
  t.deepEqual(summary(alice.state(), 'name'), { alice: ['alice'], bob: ['bob'] }, 'held while away');

  reopen();
  // The fresh state replaces everything (bob is gone), and alice is tracked again with a new ref.
  await sees(watcher, { alice: ['alice'] });
  await sees(alice, { alice: ['alice'] });
  t.not(watcher.state()['alice']!.metas[0]!.phx_ref, before.ref);
  t.true(left.includes('bob'));
  t.is(aliceClient.state.status, 'open');
});

/** A component showing `topic`'s members as `status|key:name+name,…`; counts its renders. */
function roomView(topic: string, counter: { renders: number }) {
  return function Room(props: { readonly meta?: PresenceMetaInput }): ReactNode {
    counter.renders++;
    const { members, status } = usePresence(topic, props.meta);
    const names = (metas: PresenceMetas['metas']) => metas.map((meta) => String(meta['name'])).sort().join('+');
    return h('p', null, `${status}|${members.map((member) => `${member.key}:${names(member.metas)}`).join(',')}`);
  };
}

test.serial('usePresence renders the members, tracks meta while mounted, and re-renders only when they change', withServer, {}, async (t, { liveUrl }) => {
  const sent: string[] = [];
  const client = open(t, { url: liveUrl, token: signToken({ sub: 'alice' }), client: 'react-presence' }, sent);
  const counter = { renders: 0 };
  const Room = roomView('~lobby', counter);
  const container = document.createElement('div');
  document.body.append(container);
  t.teardown(() => container.remove());
  const root = createRoot(container as unknown as Parameters<typeof createRoot>[0]);
  const render = (meta: PresenceMetaInput | undefined) => root.render(h(RowcastProvider, { client }, h(Room, { meta })));
  const text = () => container.textContent ?? '';

  render({ name: 'alice' });
  await waitFor('alice present', () => text() === 'live|alice:alice');
  const bobClient = open(t, { url: liveUrl, token: signToken({ sub: 'bob' }) });
  const bob = bobClient.presence('~lobby');
  const settled = counter.renders;
  await bob.track({ name: 'bob' });
  await waitFor('bob present', () => text() === 'live|alice:alice,bob:bob');
  t.is(counter.renders, settled + 1);

  // A message on the topic is no presence change: no render.
  const messages: LiveEvent[] = [];
  await client.subscribe('~lobby', {}, (event) => messages.push(event)).ready;
  await bobClient.publish('~lobby', { text: 'hello' });
  await waitFor('the message', () => messages.length === 1);
  await bob.track({ name: 'bob, away' });
  await waitFor("bob's update", () => text() === 'live|alice:alice,bob:bob, away');
  t.is(counter.renders, settled + 2);

  // meta is compared by value: an equal object does not track again, a new value updates the presence.
  const before = counter.renders;
  render({ name: 'alice' });
  await waitFor('the render with an equal meta', () => counter.renders > before);
  render({ name: 'alice, busy' });
  await sees(bob, { alice: ['alice, busy'], bob: ['bob, away'] });
  t.is(tracks(sent), 2);
  t.truthy(bob.state()['alice']!.metas[0]!.phx_ref_prev, 'an update, not a leave and a join');

  root.unmount();
  await sees(bob, { bob: ['bob, away'] });
});

test.serial('usePresence in strict mode (mount, unmount, mount) subscribes once and ends with one meta', withServer, {}, async (t, { liveUrl }) => {
  const sent: string[] = [];
  const client = open(t, { url: liveUrl, token: signToken({ sub: 'alice' }) }, sent);
  const Room = roomView('~strict', { renders: 0 });
  const container = document.createElement('div');
  document.body.append(container);
  t.teardown(() => container.remove());
  const root = createRoot(container as unknown as Parameters<typeof createRoot>[0]);
  root.render(h(StrictMode, null, h(RowcastProvider, { client }, h(Room, { meta: { name: 'alice' } }))));
  const watcher = open(t, { url: liveUrl, token: signToken({ sub: 'watcher' }) }).presence('~strict');
  await sees(watcher, { alice: ['alice'] });
  await waitFor('alice present', () => container.textContent === 'live|alice:alice');
  t.is(watcher.state()['alice']!.metas.length, 1);
  t.is(sent.filter((frame) => JSON.parse(frame).method === 'subscribe').length, 1);
  root.unmount();
  await sees(watcher, {});
});
