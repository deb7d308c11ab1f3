import test from 'ava';
import { pino } from 'pino';
import { loadConfig } from '../src/config/config.js';
import { StartupError } from '../src/errors.js';
import { startServer } from '../src/server/start-server.js';
import { createTestDatabase, serverEnv } from './helpers/database.js';
import { attributesOf, eventOn, framesOn, isEvent, upgradeStatus, type EventFrame, type LiveClient, type ServerFrame } from './helpers/live-client.js';
import { signToken, TEST_SECRET, withServer } from './helpers/with-server.js';
import { waitFor } from './helpers/wait-for.js';

const SCHEMA = `
  CREATE TABLE "order" (id int PRIMARY KEY, owner_id int, amount numeric(10,2), status text);
  CREATE TABLE document (id int PRIMARY KEY, team text, title text);
  CREATE TABLE marker (id int PRIMARY KEY);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('order', 'owner', 'owner_id');
  INSERT INTO rowcast.table_policies (table_name, read, group_column, group_claim) VALUES ('document', 'group', 'team', 'teams');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('marker', 'public');`;

/** Commits a public marker row and waits for it on each client: everything committed before has arrived by then. */
async function settle(db: { query: (sql: string) => Promise<unknown> }, clients: readonly LiveClient[], id: number) {
  await db.query(`INSERT INTO marker VALUES (${id})`);
  for (const client of clients) await client.next((f) => isEvent(f) && f.topic === 'marker' && f.data.id === String(id));
}

/** What a test compares of the frames about `topic`: `describe` of each event, any other frame whole (so that it fails the comparison). */
function about<T>(frames: readonly ServerFrame[], topic: string, describe: (event: EventFrame) => T): Array<T | ServerFrame> {
  return framesOn(frames, topic).map((f) => (isEvent(f) ? describe(f) : f));
}

test('owner policy: each user receives only their rows; a move from A to B is a delete for A, a create for B and an update for admins', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  const alice = await connect({ sub: '1' });
  const bob = await connect({ sub: '2' });
  const admin = await connect({ sub: '99', role: 'admin' });
  for (const client of [alice, bob, admin]) await client.subscribe('order,marker');

  await db.query(`INSERT INTO "order" VALUES (10, 1, 5, 'new'), (20, 2, 7, 'new')`);
  await db.query(`UPDATE "order" SET owner_id = 2, status = 'moved' WHERE id = 10`);
  await settle(db, [alice, bob, admin], 1);

  const orders = (frames: readonly ServerFrame[]) => frames.filter(eventOn('order')).map((f) => `${f.event} ${f.data.id} ${attributesOf(f)['owner_id']}`);
  t.deepEqual(orders(alice.frames), ['create 10 1', 'delete 10 1']);
  t.deepEqual(orders(bob.frames), ['create 20 2', 'create 10 2']);
  t.deepEqual(orders(admin.frames), ['create 10 1', 'create 20 2', 'update 10 2']);
  const update = admin.frames.filter(isEvent).find((f) => f.event === 'update')!;
  t.like(update.data.old, { owner_id: 1 });
});

test('a delete reaches exactly the audience of the old row', withServer, {
  // Written before the server (and its slot) exists, so no create event can race the subscriptions.
  sql: `${SCHEMA} INSERT INTO "order" VALUES (10, 1, 5, 'new');`,
}, async (t, { db, connect }) => {
  const alice = await connect({ sub: '1' });
  const bob = await connect({ sub: '2' });
  for (const client of [alice, bob]) await client.subscribe('order,marker');
  await db.query(`DELETE FROM "order" WHERE id = 10`);
  await settle(db, [alice, bob], 1);
  t.deepEqual(about(alice.frames, 'order', (f) => [f.event, f.data.attributes]), [
    ['delete', { id: 10, owner_id: 1, amount: '5.00', status: 'new' }],
  ]);
  t.deepEqual(framesOn(bob.frames, 'order'), []);
});

test('group policy: membership comes from the configured claim, which must be an array', withServer, { sql: SCHEMA }, async (t, { db, connect, liveUrl }) => {
  const red = await connect({ sub: '1', teams: ['red'] });
  const both = await connect({ sub: '2', teams: ['red', 'blue'] });
  const none = await connect({ sub: '3' });
  for (const client of [red, both, none]) await client.subscribe('document,marker');
  await db.query(`INSERT INTO document VALUES (1, 'red', 'r'), (2, 'blue', 'b'), (3, NULL, 'nobody')`);
  await db.query(`UPDATE document SET team = 'blue' WHERE id = 1`);
  await settle(db, [red, both, none], 1);
  const docs = (frames: readonly ServerFrame[]) => about(frames, 'document', (f) => `${f.event} ${f.data.id}`);
  t.deepEqual(docs(red.frames), ['create 1', 'delete 1']);
  // A move between two of the user's own groups: delete from one partition, then create in the other.
  t.deepEqual(docs(both.frames), ['create 1', 'create 2', 'delete 1', 'create 1']);
  t.deepEqual(docs(none.frames), []);

  for (const teams of ['red', [{ team: 'red' }], { red: true }]) {
    const { status, body } = await upgradeStatus(`${liveUrl}?token=${signToken({ sub: '4', teams })}`);
    t.is(status, 401);
    t.is(JSON.parse(body).error.code, 'TOKEN_INVALID');
  }
  for (const sub of [{ id: 1 }, true, [1]]) {
    const { status, body } = await upgradeStatus(`${liveUrl}?token=${signToken({ sub })}`);
    t.is(status, 401);
    t.is(JSON.parse(body).error.code, 'TOKEN_INVALID');
  }
});

test('a filter narrows: rows entering it arrive as create, leaving it as delete, never wider than the policy', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  const alice = await connect({ sub: '1' });
  await alice.subscribe('order', { filter: { status: { eq: 'paid' }, amount: { gte: 100 } } });
  await alice.subscribe('marker');
  await db.query(`INSERT INTO "order" VALUES (1, 1, 150, 'new'), (2, 1, 50, 'paid'), (3, 2, 500, 'paid')`);
  await db.query(`UPDATE "order" SET status = 'paid' WHERE id = 1`);
  await db.query(`UPDATE "order" SET amount = 120 WHERE id = 1`);
  await db.query(`UPDATE "order" SET status = 'refunded' WHERE id = 1`);
  await db.query(`UPDATE "order" SET owner_id = 1 WHERE id = 3`);
  await db.query(`UPDATE "order" SET owner_id = 2 WHERE id = 3`);
  await settle(db, [alice], 1);
  const seen = about(alice.frames, 'order', (f) => `${f.event} ${f.data.id} ${attributesOf(f)['status']}`);
  t.deepEqual(seen, ['create 1 paid', 'update 1 paid', 'delete 1 paid', 'create 3 paid', 'delete 3 paid']);
});

test('events narrows a subscription to some kinds of event', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  const admin = await connect({ sub: '1', role: 'admin' });
  await admin.subscribe('order', { events: ['delete'] });
  await admin.subscribe('marker');
  await db.query(`INSERT INTO "order" VALUES (1, 1, 1, 'a')`);
  await db.query(`UPDATE "order" SET status = 'b'`);
  await db.query(`DELETE FROM "order"`);
  await settle(db, [admin], 1);
  t.deepEqual(about(admin.frames, 'order', (f) => f.event), ['delete']);
});

test('connections with the same filter, written differently, share one filter group', withServer, { sql: SCHEMA }, async (t, { server, connect }) => {
  const filters = [
    { status: { eq: 'paid' }, amount: { gte: 100, lt: 200 } },
    { amount: { lt: 200, gte: '100' }, status: { eq: 'paid' } },
    { amount: { gte: 100.0, lt: 200 }, status: { eq: 'paid' } },
  ];
  for (const [i, filter] of filters.entries()) {
    const client = await connect({ sub: String(i) });
    await client.subscribe('order', { filter });
  }
  const other = await connect({ sub: '9' });
  await other.subscribe('order', { filter: { status: { eq: 'new' } } });
  t.like(server.status().topics.find((x) => x.name === 'order'), { subscribers: 4, filterGroups: 2 });
  other.close();
  await waitFor('the closed connection to release its group', () => server.status().topics.find((x) => x.name === 'order')!.filterGroups === 1);
});

test('bad filters are refused with the right code and nothing is subscribed', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  const client = await connect({ sub: '1' });
  const cases: Array<[unknown, string]> = [
    [{ nope: { eq: 1 } }, 'INVALID_ATTRIBUTES'],
    [{ amount: { eq: 'lots' } }, 'INVALID_ATTRIBUTES'],
    [{ amount: { between: [1, 2] } }, 'INVALID_ATTRIBUTES'],
    [{ amount: {} }, 'INVALID_ATTRIBUTES'],
    [{ id: { in: Array.from({ length: 101 }, (_, i) => i) } }, 'LIMIT_EXCEEDED'],
  ];
  for (const [filter, code] of cases) {
    const response = await client.request('subscribe', { topicName: 'order', filter });
    t.like(response, { ok: false, error: { code } }, JSON.stringify(filter));
  }
  t.like(await client.request('subscribe', { topicName: 'order', filter: { id: { in: Array.from({ length: 100 }, (_, i) => i) } } }), { ok: true });
  await db.query(`INSERT INTO "order" VALUES (5, 1, 1, 'x')`);
  t.like((await client.events(1))[0], { event: 'create', data: { id: '5' } });
});

test('a policy change takes effect at once: subscriptions no longer allowed are revoked, new ones obey it', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  const user = await connect({ sub: '1' });
  await user.subscribe('marker,order');
  await db.query(`UPDATE rowcast.table_policies SET read = 'admin', owner_column = NULL WHERE table_name = 'order'`);
  const revoked = await user.next((f) => f.type === 'subscription');
  t.like(revoked, { type: 'subscription', topic: 'order', status: 'revoked' });
  await db.query(`INSERT INTO "order" VALUES (1, 1, 1, 'after revocation')`);
  await settle(db, [user], 1);
  t.false(user.frames.some(eventOn('order')));
  t.like(await user.request('subscribe', { topicName: 'order' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });

  // Subscribing right after the policy commit works: the server catches up with the stream before refusing.
  await db.query(`UPDATE rowcast.table_policies SET read = 'public' WHERE table_name = 'order'`);
  t.like(await user.request('subscribe', { topicName: 'order' }), { ok: true });
  await db.query(`INSERT INTO "order" VALUES (2, 7, 1, 'public now')`);
  t.like((await user.next(eventOn('order'))).data, { id: '2' });
});

test('list-topic and get-topic show only readable tables, with policy mode and columns', withServer, { sql: SCHEMA, env: { ALLOW_ANONYMOUS: 'true' } }, async (t, { connect }) => {
  const user = await connect({ sub: '1', teams: [] });
  const list = await user.call('list-topic');
  t.deepEqual(list.topics.map((x) => `${x.name}:${'read' in x ? x.read : x.kind}`), ['document:group', 'marker:public', 'order:owner']);
  t.deepEqual(await user.call('get-topic', { topicName: 'order' }), {
    name: 'order',
    kind: 'table',
    schema: 'public',
    table: 'order',
    read: 'owner',
    primaryKey: ['id'],
    columns: [
      { name: 'id', type: 'integer' },
      { name: 'owner_id', type: 'integer' },
      { name: 'amount', type: 'numeric(10,2)' },
      { name: 'status', type: 'text' },
    ],
  });
  // A token without sub is anonymous (allowed here): public tables only.
  const anonymous = await connect({ role: 'user' });
  const anonymousList = await anonymous.call('list-topic');
  t.deepEqual(anonymousList.topics.map((x) => x.name), ['marker']);
  t.like(await anonymous.request('get-topic', { topicName: 'order' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
});

test('an owner policy for a table that does not exist is refused when written; policies set FULL identity', withServer, { sql: SCHEMA }, async (t, { db }) => {
  const error = await t.throwsAsync(db.query(`INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('missing_table', 'owner', 'x')`));
  t.regex(error!.message, /no table public\.missing_table/);
  const { rows } = await db.query<{ relreplident: string }>(`SELECT relreplident FROM pg_class WHERE relname IN ('order', 'document') ORDER BY relname`);
  t.deepEqual(rows.map((r) => r.relreplident), ['f', 'f']);
});

test('start-up fails naming the table when an owner/group table cannot get REPLICA IDENTITY FULL', async (t) => {
  const db = await createTestDatabase(`
    CREATE TABLE secret_orders (id int PRIMARY KEY, owner_id int);
    INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('secret_orders', 'owner', 'owner_id');
    ALTER TABLE secret_orders REPLICA IDENTITY DEFAULT;`);
  const role = `rowcast_limited_${db.name.slice(-6)}`;
  try {
    await db.query(`CREATE PUBLICATION ${db.name} FOR ALL TABLES`);
    // A role that may replicate and use rowcast's schema, but does not own the table.
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw' REPLICATION;
                    GRANT ALL ON SCHEMA rowcast TO ${role};
                    GRANT ALL ON ALL TABLES IN SCHEMA rowcast TO ${role};
                    GRANT ALL ON ALL SEQUENCES IN SCHEMA rowcast TO ${role};
                    GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role};`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw';
    const config = loadConfig({ ...serverEnv(db, TEST_SECRET), DATABASE_URL: url.toString(), LOG_LEVEL: 'silent' });
    const error = await t.throwsAsync(startServer(config, pino({ level: 'silent' })), { instanceOf: StartupError });
    t.regex(error!.message, /public\.secret_orders/);
    t.regex(error!.message, /REPLICA IDENTITY FULL/);
  } finally {
    await db.query(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`).catch(() => {});
    await db.drop();
  }
});
