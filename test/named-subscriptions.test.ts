/**
 * Several subscriptions to one table topic on one connection (`as`,
 * docs/protocol.md "Several subscriptions to one topic"): each with its own
 * filter, events, snapshot or aggregate, each frame naming the subscription
 * it belongs to, unsubscribed and revoked by name.
 */
import test from 'ava';
import { errorOf, isOk, type ServerFrame } from './helpers/live-client.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';

const SCHEMA = `
  CREATE TABLE item (id int PRIMARY KEY, owner_id text, status text, n int);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('item', 'owner', 'owner_id');
  CREATE TABLE other (id int PRIMARY KEY);`;

type Framed = ServerFrame & { as?: string };
const on = (frames: readonly ServerFrame[], as: string | undefined) => frames.filter((f) => (f as Framed).as === as);
const label = (f: ServerFrame) => (f.type === 'event' ? `${f.event}:${f.data.id}` : f.type);

test('two subscriptions to one topic with other filters each get exactly their frames, named; unsubscribing one leaves the other', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  const alice = await connect({ sub: 'alice' });
  t.like(await alice.request('subscribe', { topicName: 'item' }), { ok: true });
  t.like(await alice.request('subscribe', { topicName: 'item', as: 'paid', filter: { status: { eq: 'paid' } } }), { ok: true, data: { topics: ['item'], as: 'paid' } });
  t.like(await alice.request('subscribe', { topicName: 'item', as: 'deletes', events: ['delete'] }), { ok: true, data: { as: 'deletes' } });
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'open', 1), (2, 'alice', 'paid', 2), (3, 'bob', 'paid', 3)`);
  await db.query(`UPDATE item SET status = 'paid' WHERE id = 1`);
  await db.query(`DELETE FROM item WHERE id = 2`);
  await waitFor('every frame', () => alice.frames.filter((f) => f.type === 'event').length >= 8);
  const events = alice.frames.filter((f) => f.type === 'event');
  t.deepEqual(on(events, undefined).map(label), ['create:1', 'create:2', 'update:1', 'delete:2']);
  t.deepEqual(on(events, 'paid').map(label), ['create:2', 'create:1', 'delete:2'], 'row 1 enters the filter as a create');
  t.deepEqual(on(events, 'deletes').map(label), ['delete:2']);
  t.true(events.every((f) => f.topic === 'item'));

  t.like(await alice.request('unsubscribe', { topicName: 'item', as: 'paid' }), { ok: true, data: { topics: ['item'] } });
  await db.query(`INSERT INTO item VALUES (4, 'alice', 'paid', 4)`);
  await waitFor('the next event', () => on(alice.frames.filter((f) => f.type === 'event'), undefined).length === 5);
  t.is(on(alice.frames, 'paid').filter((f) => f.type === 'event').length, 3, 'nothing more for the unsubscribed one');

  // The same name again replaces that named subscription, not the unnamed one.
  t.like(await alice.request('subscribe', { topicName: 'item', as: 'deletes', events: ['create'] }), { ok: true });
  await db.query(`INSERT INTO item VALUES (5, 'alice', 'x', 5)`);
  await waitFor('both', () => on(alice.frames, 'deletes').some((f) => label(f) === 'create:5') && on(alice.frames, undefined).some((f) => label(f) === 'create:5'));
  t.is(on(alice.frames, 'deletes').filter((f) => f.type === 'event').length, 2);
});

test('named snapshots and aggregates carry their name; a policy change revokes each by name; names are for one table topic', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'open', 1), (2, 'alice', 'paid', 2)`);
  const alice = await connect({ sub: 'alice' });
  await alice.request('subscribe', { topicName: 'item', as: 'rows', snapshot: true, filter: { status: { eq: 'paid' } } });
  const page = (await alice.next((f) => f.type === 'snapshot' && f.done)) as Framed & { data: Array<{ id: string }> };
  t.is(page.as, 'rows');
  t.deepEqual(page.data.map((row) => row.id), ['2']);
  await alice.request('subscribe', { topicName: 'item', as: 'counts', aggregate: { count: true, groupBy: 'status' } });
  const counts = (await alice.next((f) => f.type === 'aggregate')) as Framed;
  t.is(counts.as, 'counts');

  await db.query(`UPDATE rowcast.table_policies SET read = 'public' WHERE table_name = 'item'`);
  await waitFor('both revoked', () => alice.frames.filter((f) => f.type === 'subscription').length === 2);
  t.deepEqual(alice.frames.filter((f) => f.type === 'subscription').map((f) => (f as Framed).as).sort(), ['counts', 'rows']);

  t.is(errorOf(await alice.request('subscribe', { topicName: 'item,other', as: 'x' })).code, 'INVALID_ATTRIBUTES');
  t.is(errorOf(await alice.request('subscribe', { topicName: 'item', as: 'no spaces' })).code, 'INVALID_ATTRIBUTES');
  t.true(isOk(await alice.request('subscribe', { topicName: 'item', as: 'ok.name-1:x' })));
});
