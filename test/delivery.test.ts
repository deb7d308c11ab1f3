import test from 'ava';
import { attributesOf, isEvent } from './helpers/live-client.js';
import { withServer } from './helpers/with-server.js';

const ORDERS = `
  CREATE TABLE "order" (id bigserial PRIMARY KEY, owner_id int, amount numeric(10,2), status text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('order', 'public');`;

test('insert, update and delete reach a subscriber as create, update (with old) and delete', withServer, { sql: ORDERS }, async (t, { db, connect }) => {
  const client = await connect({ sub: '42' });
  await client.subscribe('order');
  await db.query(`INSERT INTO "order" (owner_id, amount, status) VALUES (42, 19.90, 'new')`);
  await db.query(`UPDATE "order" SET status = 'paid'`);
  await db.query(`DELETE FROM "order"`);
  const [created, updated, deleted] = await client.events(3);

  t.like(created, { type: 'event', topic: 'order', event: 'create', data: { type: 'order', id: '1' } });
  t.deepEqual(created!.data.attributes, { id: 1, owner_id: 42, amount: '19.90', status: 'new' });
  t.regex(created!.seq, /^[0-9A-F]{16}-[0-9A-F]{8}$/);
  t.false(Number.isNaN(Date.parse(created!.ts)));

  t.like(updated, { event: 'update', data: { id: '1', attributes: { status: 'paid' }, old: { status: 'new' } } });
  t.like(deleted, { event: 'delete', data: { id: '1', attributes: { id: 1, owner_id: 42, status: 'paid' } } });
  t.true(created!.seq < updated!.seq && updated!.seq < deleted!.seq);
});

test('events arrive in commit order, not statement order', withServer, { sql: ORDERS }, async (t, { db, connect }) => {
  const client = await connect({ sub: '1' });
  await client.subscribe('order');
  const first = await db.client();
  const second = await db.client();
  try {
    await first.query('BEGIN');
    await first.query(`INSERT INTO "order" (status) VALUES ('a')`);
    await second.query('BEGIN');
    await second.query(`INSERT INTO "order" (status) VALUES ('b')`);
    await second.query('COMMIT');
    await first.query(`INSERT INTO "order" (status) VALUES ('c')`);
    await first.query('COMMIT');
  } finally {
    await first.end();
    await second.end();
  }
  const events = await client.events(3);
  t.deepEqual(events.map((e) => attributesOf(e)['status']), ['b', 'a', 'c']);
  t.deepEqual(events.map((e) => e.seq), events.map((e) => e.seq).sort());
});

test('a rolled-back transaction produces nothing', withServer, { sql: ORDERS }, async (t, { db, connect }) => {
  const client = await connect({ sub: '1' });
  await client.subscribe('order');
  const writer = await db.client();
  try {
    await writer.query('BEGIN');
    await writer.query(`INSERT INTO "order" (status) VALUES ('rolled back')`);
    await writer.query('ROLLBACK');
  } finally {
    await writer.end();
  }
  await db.query(`INSERT INTO "order" (status) VALUES ('marker')`);
  // The stream is ordered: once the later marker is here, the rolled-back row would have been too.
  const [event] = await client.events(1);
  t.is(attributesOf(event!)['status'], 'marker');
  t.false(client.frames.some((f) => isEvent(f) && attributesOf(f)['status'] === 'rolled back'));
});

test(
  'tables in another schema are topics named schema.table',
  withServer,
  {
    sql: `CREATE SCHEMA app;
          CREATE TABLE app.items (sku text, shop int, name text, PRIMARY KEY (shop, sku));
          INSERT INTO rowcast.table_policies (table_schema, table_name, read) VALUES ('app', 'items', 'public');`,
  },
  async (t, { db, connect }) => {
    const client = await connect({ sub: '1' });
    await client.subscribe('app.items');
    await db.query(`INSERT INTO app.items VALUES ('A-1', 7, 'lamp')`);
    const [event] = await client.events(1);
    t.like(event, { topic: 'app.items', event: 'create', data: { type: 'items', id: '7/A-1', attributes: { name: 'lamp' } } });
  },
);

test('subscribing again to a topic replaces the subscription instead of doubling events', withServer, { sql: ORDERS }, async (t, { db, connect }) => {
  const client = await connect({ sub: '1' });
  await client.subscribe('order');
  await client.subscribe('order');
  await db.query(`INSERT INTO "order" (status) VALUES ('once')`);
  await db.query(`INSERT INTO "order" (status) VALUES ('marker')`);
  const events = await client.events(2);
  t.deepEqual(events.map((e) => attributesOf(e)['status']), ['once', 'marker']);
});

test('after unsubscribe no more events arrive for the topic', withServer, {
  sql: `${ORDERS}
    CREATE TABLE marker (id int PRIMARY KEY);
    INSERT INTO rowcast.table_policies (table_name, read) VALUES ('marker', 'public');`,
}, async (t, { db, connect }) => {
  const client = await connect({ sub: '1' });
  await client.subscribe('order,marker');
  const response = await client.request('unsubscribe', { topicName: 'order' });
  t.like(response, { ok: true, data: { topics: ['order'] } });
  await db.query(`INSERT INTO "order" (status) VALUES ('unseen')`);
  await db.query(`INSERT INTO marker VALUES (1)`);
  const [event] = await client.events(1);
  t.is(event!.topic, 'marker');
});
