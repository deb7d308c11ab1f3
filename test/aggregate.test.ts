/**
 * `subscribe` with `aggregate` (docs/snapshots.md#aggregates): counts of the
 * rows a user may read, per group, kept exact by the changes — checked
 * against `SELECT count(*) … GROUP BY` with a writer running while clients
 * subscribe.
 */
import test from 'ava';
import { errorOf, type LiveClient } from './helpers/live-client.js';
import { Collected, join, phoenixSocket } from './helpers/phoenix-client.js';
import { AggregateFold } from './helpers/row-fold.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';

const SCHEMA = `
  CREATE TABLE item (id int PRIMARY KEY, owner_id int, status text, n int);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('item', 'owner', 'owner_id');
  CREATE TABLE secret (id int PRIMARY KEY, owner_id int, status text, n int);`;
// item has REPLICA IDENTITY FULL (a policy sets it): counts only. secret (admins only) keeps its default identity: rows kept by id.

type Db = { query: (sql: string) => Promise<{ rows: Array<Record<string, unknown>> }> };

/** Subscribes with `aggregate` and folds its frames from then on. */
async function aggregateFold(client: LiveClient, attributes: Record<string, unknown>, table = 'item'): Promise<AggregateFold> {
  const fold = new AggregateFold(table);
  let seen = client.frames.length;
  const answer = await client.request('subscribe', { topicName: table, ...attributes });
  if (answer.type !== 'response' || !answer.ok) throw new Error(`subscribe failed: ${JSON.stringify(answer)}`);
  const pump = (): void => {
    for (; seen < client.frames.length; seen++) fold.apply(client.frames[seen]!);
  };
  client.socket.on('message', pump);
  pump();
  return fold;
}

/** SQL's counts of `where` per status, summarised as the fold does. */
async function counted(db: Db, where: string, groupBy: string | null, table = 'item'): Promise<{ summary: string; total: number }> {
  const { rows } = await db.query(`SELECT ${groupBy ?? "''"} AS key, count(*)::int AS n FROM ${table} WHERE ${where} GROUP BY 1`);
  const groups = groupBy === null ? [] : rows.map((row) => [JSON.stringify(row['key']), row['n'] as number] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { summary: JSON.stringify(groups), total: rows.reduce((sum, row) => sum + (row['n'] as number), 0) };
}

async function matches(db: Db, fold: AggregateFold, where: string, groupBy: string | null, table = 'item'): Promise<void> {
  let want = await counted(db, where, groupBy, table);
  await waitFor(`counts of ${table} where ${where} equal to SQL's`, async () => {
    want = await counted(db, where, groupBy, table);
    return fold.summary() === want.summary && fold.total === want.total;
  }, 30_000).catch((error: Error) => {
    throw new Error(`${error.message}: ${fold.summary()} total ${fold.total}, SQL ${want.summary} total ${want.total}`);
  });
}

test('counts per group: the state, then diffs for creates, updates across groups, moves out of view and deletes', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  await db.query(`INSERT INTO item SELECT i, i % 2, CASE WHEN i % 3 = 0 THEN 'open' ELSE 'done' END, i FROM generate_series(1, 30) AS i`);
  const alice = await connect({ sub: '1' });
  const answer = await alice.request('subscribe', { topicName: 'item', aggregate: { count: true, groupBy: 'status' } });
  t.like(answer, { ok: true, data: { topics: ['item'], aggregate: true } });
  const state = await alice.next((f) => f.type === 'aggregate');
  t.like(state, { event: 'state', data: { total: 15 } });
  const fold = new AggregateFold('item');
  fold.apply(state);
  t.is(fold.summary(), (await counted(db, 'owner_id = 1', 'status')).summary);

  const seen = alice.frames.length;
  await db.query(`INSERT INTO item VALUES (100, 1, 'new', 1), (101, 2, 'new', 1)`);
  await db.query(`UPDATE item SET status = 'open' WHERE id = 1`);
  await db.query(`UPDATE item SET owner_id = 2 WHERE id = 3`);
  await db.query(`DELETE FROM item WHERE id = 5`);
  await waitFor('the diffs', () => {
    for (const frame of alice.frames.slice(seen)) fold.apply(frame);
    return fold.total === 14 && fold.groups.get('"new"') === 1;
  });
  t.is(fold.summary(), (await counted(db, 'owner_id = 1', 'status')).summary);
  // Diffs carry only changed groups, and no event frame comes.
  t.false(alice.frames.some((f) => f.type === 'event'));
  t.true(alice.frames.slice(seen).every((f) => f.type !== 'aggregate' || f.event === 'diff'));
});

test('consistency: aggregates taken at random moments while a writer commits end equal to SQL’s GROUP BY, per user and filter', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  await db.query(`INSERT INTO item SELECT i, i % 3, (ARRAY['a','b','c'])[1 + i % 3], i % 100 FROM generate_series(1, 300) AS i`);
  await db.query(`INSERT INTO secret SELECT * FROM item`);
  let writing = true;
  const writer = (async () => {
    const client = await db.client();
    let next = 1000;
    try {
      while (writing) {
        const ops: string[] = [];
        const size = Math.random() < 0.05 ? 100 : 1 + Math.floor(Math.random() * 4);
        for (let i = 0; i < size; i++) {
          const id = 1 + Math.floor(Math.random() * (next - 1));
          const roll = Math.random();
          const status = ['a', 'b', 'c'][Math.floor(Math.random() * 3)];
          const table = Math.random() < 0.5 ? 'item' : 'secret';
          if (roll < 0.3) ops.push(`INSERT INTO ${table} VALUES (${next++}, ${Math.floor(Math.random() * 3)}, '${status}', ${Math.floor(Math.random() * 100)})`);
          else if (roll < 0.55) ops.push(`UPDATE ${table} SET status = '${status}', n = ${Math.floor(Math.random() * 100)} WHERE id = ${id}`);
          else if (roll < 0.8) ops.push(`UPDATE ${table} SET owner_id = ${Math.floor(Math.random() * 3)} WHERE id = ${id}`);
          else ops.push(`DELETE FROM ${table} WHERE id = ${id}`);
        }
        await client.query(`BEGIN; ${ops.join('; ')}; COMMIT`);
      }
    } finally {
      await client.end();
    }
  })();
  const folds: Array<{ fold: AggregateFold; where: string; groupBy: string | null; table: string }> = [];
  for (let i = 0; i < 12; i++) {
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 150));
    const table = i >= 9 ? 'secret' : 'item';
    const admin = i >= 8;
    const sub = i % 3;
    const filter = i % 2 === 1 ? { n: { lt: 50 } } : undefined;
    const groupBy = i % 4 === 3 ? null : 'status';
    const client = await connect(admin ? { sub: 'admin', role: 'admin' } : { sub: String(sub) });
    const fold = await aggregateFold(client, { aggregate: groupBy === null ? { count: true } : { count: true, groupBy }, ...(filter ? { filter } : {}) }, table);
    folds.push({ fold, where: `${admin ? 'TRUE' : `owner_id = ${sub}`}${filter ? ' AND n < 50' : ''}`, groupBy, table });
  }
  writing = false;
  await writer;
  for (const { fold, where, groupBy, table } of folds) await matches(db, fold, where, groupBy, table);
  t.pass();
});

test('AGGREGATE_MAX_ROWS bounds the rows kept by id (tables without full old rows); counts-only tables are not bound by it', withServer, { sql: SCHEMA, env: { AGGREGATE_MAX_ROWS: '12' } }, async (t, { db, connect, server }) => {
  await db.query(`INSERT INTO secret SELECT i, 1, 'a', i FROM generate_series(1, 10) AS i; INSERT INTO item SELECT * FROM secret`);
  const admin = await connect({ sub: 'admin', role: 'admin' });
  const first = await aggregateFold(admin, { aggregate: { count: true } }, 'secret');
  await waitFor('the first count', () => first.total === 10);
  t.is(server.status().snapshots.aggregateRows, 10);
  const other = await connect({ sub: 'admin', role: 'admin' });
  t.is(errorOf(await other.request('subscribe', { topicName: 'secret', aggregate: { count: true } })).code, 'LIMIT_EXCEEDED');
  t.false(other.frames.some((f) => f.type === 'aggregate'));
  const counted = await aggregateFold(other, { aggregate: { count: true } });
  await waitFor('item counted', () => counted.total === 10);
  t.is(server.status().snapshots.aggregateRows, 10);
});

test('aggregate errors: a custom topic, an unknown groupBy column, with snapshot', withServer, { sql: SCHEMA }, async (t, { connect }) => {
  const admin = await connect({ sub: 'admin', role: 'admin' });
  await admin.call('create-topic', { name: 'chat' });
  t.is(errorOf(await admin.request('subscribe', { topicName: 'chat', aggregate: { count: true } })).code, 'SNAPSHOT_UNSUPPORTED');
  t.is(errorOf(await admin.request('subscribe', { topicName: 'item', aggregate: { count: true, groupBy: 'nope' } })).code, 'INVALID_ATTRIBUTES');
  t.is(errorOf(await admin.request('subscribe', { topicName: 'item', aggregate: { count: true }, snapshot: true })).code, 'INVALID_ATTRIBUTES');
  t.is(errorOf(await admin.request('subscribe', { topicName: 'item', aggregate: { count: false } })).code, 'INVALID_ATTRIBUTES');
});

test('Phoenix: joining with aggregate gives aggregate_state, then aggregate_diff pushes', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  await db.query(`INSERT INTO item VALUES (1, 1, 'open', 1), (2, 1, 'done', 1), (3, 2, 'open', 1)`);
  const socket = phoenixSocket(server.port, token({ sub: '1' }));
  try {
    const channel = socket.channel('table:item', { aggregate: { count: true, groupBy: 'status' } });
    const seen = new Collected(channel, ['aggregate_state', 'aggregate_diff', 'create']);
    t.like(await join(channel), { aggregate: true });
    await waitFor('the state', () => seen.items.find((m) => m.event === 'aggregate_state'));
    t.like(seen.items[0]!.payload, { total: 2 });
    await db.query(`INSERT INTO item VALUES (4, 1, 'open', 1)`);
    await waitFor('a diff', () => seen.items.find((m) => m.event === 'aggregate_diff'));
    t.deepEqual(seen.items.find((m) => m.event === 'aggregate_diff')!.payload, { groups: [{ key: 'open', count: 2 }], total: 3 });
    t.false(seen.items.some((m) => m.event === 'create'));
  } finally {
    socket.disconnect();
  }
});
