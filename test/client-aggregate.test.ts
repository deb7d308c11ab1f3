/**
 * The client SDK's aggregates against the real server: `client.aggregate`
 * and `liveAggregate` count the rows a token may read (per group, with the
 * filter), follow the changes, share one server subscription, take fresh
 * counts after a reconnect, refuse a second kind of subscription to the same
 * topic on one connection, and leave no counting behind on the server when
 * dropped or replaced while it counts.
 */
import test from 'ava';
import { createClient, liveAggregate, liveRows, type AggregateCounts, type ClientOptions, type ConnectionState, type RowcastClient } from '@rowcast/client';
import { recordingWebSocket, rejection } from './helpers/sdk-client.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';

const ADMIN = { sub: 'admin', role: 'admin' };
const SCHEMA = `
  CREATE TABLE item (id int PRIMARY KEY, owner_id text NOT NULL, status text, n int NOT NULL);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('item', 'owner', 'owner_id');`;

type Db = { query: (sql: string, values?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }> };

interface Opened {
  readonly client: RowcastClient;
  /** Every frame the client sent. */
  readonly sent: string[];
}

/** A client for `sub` (`ws` stands in for the global WebSocket), named `name` in /admin/connections, closed after the test. */
function open(t: { teardown(fn: () => void): void }, url: string, sub: string, options: { name?: string; getToken?: () => Promise<string> } = {}): Opened {
  const sent: string[] = [];
  const client = createClient({
    url,
    ...(options.getToken ? { getToken: options.getToken } : { token: signToken({ sub }) }),
    ...(options.name ? { client: options.name } : {}),
    backoff: { initialMs: 20, maxMs: 100 },
    WebSocket: recordingWebSocket(sent),
  });
  t.teardown(() => client.close());
  return { client, sent };
}

const frames = (sent: string[], method: string) =>
  sent.map((frame) => JSON.parse(frame) as { method: string; attributes: Record<string, unknown> }).filter((frame) => frame.method === method).map((frame) => frame.attributes);

/** The counts as sorted `[key, count]` pairs, to compare with SQL's. */
const pairs = (counts: Pick<AggregateCounts, 'groups'>) => [...counts.groups].map(([key, count]) => [key, count] as [unknown, number]).sort(([a], [b]) => String(a).localeCompare(String(b)));

/** SQL's counts of alice's rows (with `where`) per status (none when not `grouped`), and their total. */
async function sqlCounts(db: Db, where: string, grouped: boolean): Promise<{ groups: Array<[unknown, number]>; total: number }> {
  const { rows } = await db.query(`SELECT status, count(*)::int AS n FROM item WHERE owner_id = 'alice' AND ${where} GROUP BY status`);
  const groups = rows.map((row) => [row['status'], row['n']] as [unknown, number]).sort(([a], [b]) => String(a).localeCompare(String(b)));
  return { groups: grouped ? groups : [], total: groups.reduce((sum, [, n]) => sum + n, 0) };
}

/** Waits until `counts()` equals SQL's (per status unless not `grouped`). */
async function matchesSql(db: Db, counts: () => AggregateCounts, where = 'true', grouped = true): Promise<void> {
  let want = await sqlCounts(db, where, grouped);
  await waitFor(`the counts of ${where} to equal SQL's`, async () => {
    want = await sqlCounts(db, where, grouped);
    return JSON.stringify({ groups: pairs(counts()), total: counts().total }) === JSON.stringify(want);
  }).catch((error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(pairs(counts()))} total ${counts().total}, SQL ${JSON.stringify(want)}`);
  });
}

/** The topics the connection named `name` is subscribed to, per /admin/connections. */
async function serverSubscriptions(port: number, name: string): Promise<string[] | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/admin/connections`, { headers: { authorization: `Bearer ${signToken(ADMIN)}` } });
  const connections = (await response.json()) as Array<{ client: string; subscriptions: string[] }>;
  return connections.find((c) => c.client === name)?.subscriptions;
}

test('liveAggregate counts the rows alice may read per group, then follows creates, moves between groups, deletes; a group that empties leaves', withServer, { sql: SCHEMA }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'open', 1), (2, 'alice', 'open', 2), (3, 'alice', 'done', 3), (4, 'bob', 'open', 4), (5, 'alice', NULL, 5)`);
  const { client, sent } = open(t, liveUrl, 'alice');
  const changes: number[] = [];
  const counts = liveAggregate(client, 'item', { groupBy: 'status', onChange: (current) => changes.push(current.total) });
  t.is(counts.total, 0);
  const first = await counts.ready;
  t.deepEqual(pairs(first), [
    ['done', 1],
    ['open', 2],
    [null, 1],
  ].sort(([a], [b]) => String(a).localeCompare(String(b))) as Array<[unknown, number]>);
  t.is(first.total, 4);
  t.is(counts.groups.get('open'), 2);
  t.is(counts.groups.get(null), 1, 'NULL is a group of its own');
  t.deepEqual(changes, [4]);
  t.deepEqual(frames(sent, 'subscribe'), [{ topicName: 'item', aggregate: { count: true, groupBy: 'status' } }]);

  await db.query(`INSERT INTO item VALUES (6, 'alice', 'new', 6), (7, 'bob', 'new', 7)`);
  await waitFor('the insert', () => counts.groups.get('new') === 1);
  t.is(counts.total, 5);
  await db.query(`UPDATE item SET status = 'open' WHERE id = 3`);
  await waitFor('the move out of done', () => counts.groups.get('open') === 3);
  t.false(counts.groups.has('done'), 'a group that emptied leaves');
  await db.query(`DELETE FROM item WHERE id = 1`);
  await db.query(`UPDATE item SET owner_id = 'bob' WHERE id = 2`);
  await waitFor('the delete and the move out of view', () => counts.groups.get('open') === 1);
  await matchesSql(db, () => counts.counts);
  t.is(counts.version, changes.length);
  counts.close();
});

test('client.aggregate without groupBy counts only the total; with a filter it counts only the rows that pass it', withServer, { sql: SCHEMA }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO item SELECT i, CASE WHEN i % 3 = 0 THEN 'bob' ELSE 'alice' END, 'open', i FROM generate_series(1, 30) i`);
  const { client } = open(t, liveUrl, 'alice');
  let all: AggregateCounts | undefined;
  let small: AggregateCounts | undefined;
  const answer = await client.aggregate('item', {}, (counts) => (all = counts)).ready;
  t.like(answer, { topics: ['item'], aggregate: true });
  // Another topic-wide aggregate would be another subscription to `item`: a second client holds the filtered one.
  const { client: second } = open(t, liveUrl, 'alice');
  second.aggregate('item', { filter: { n: { lt: 10 } } }, (counts) => (small = counts));
  await waitFor('both counts', () => all && small);
  t.is(all!.total, 20);
  t.is(all!.groups.size, 0);
  t.is(small!.total, 6);
  await db.query(`INSERT INTO item VALUES (100, 'alice', 'open', 1), (101, 'alice', 'open', 50)`);
  await waitFor('the inserts', () => all!.total === 22 && small!.total === 7);
  await matchesSql(db, () => all!, 'true', false);
  await matchesSql(db, () => small!, 'n < 10', false);
});

test('aggregates with the same options share one server subscription; one that joins gets the counts held', withServer, { sql: SCHEMA }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'open', 1), (2, 'alice', 'done', 2)`);
  const { client, sent } = open(t, liveUrl, 'alice');
  const a = liveAggregate(client, 'item', { groupBy: 'status' });
  await a.ready;
  const b = liveAggregate(client, 'item', { groupBy: 'status' });
  const joined = await b.ready;
  t.is(joined, a.counts, 'the same counts, without asking the server again');
  t.is(frames(sent, 'subscribe').length, 1);
  await db.query(`INSERT INTO item VALUES (3, 'alice', 'open', 3)`);
  await waitFor('both see the insert', () => a.groups.get('open') === 2 && b.groups.get('open') === 2);
  // Closing one keeps the other counting.
  a.close();
  await db.query(`INSERT INTO item VALUES (4, 'alice', 'done', 4)`);
  await waitFor('the insert after one closed', () => b.groups.get('done') === 2);
  t.is(a.groups.get('done'), 1, 'a closed aggregate stops changing');
  t.deepEqual(frames(sent, 'unsubscribe'), []);
  t.is(frames(sent, 'subscribe').length, 1);
});

test('an aggregate and rows of the same topic, and two aggregates of it, on one client: each gets its own frames', withServer, { sql: SCHEMA }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'open', 1)`);
  const { client, sent } = open(t, liveUrl, 'alice');
  const rows = liveRows(client, 'item');
  await rows.ready;
  const byStatus = liveAggregate(client, 'item', { groupBy: 'status' });
  const byN = liveAggregate(client, 'item', { groupBy: 'n' });
  await Promise.all([byStatus.ready, byN.ready]);
  await waitFor('the counts', () => byStatus.groups.get('open') === 1 && byN.groups.get(1) === 1);
  await db.query(`INSERT INTO item VALUES (2, 'alice', 'done', 2)`);
  await waitFor('the rows and both counts', () => rows.rows.has('2') && byStatus.groups.get('done') === 1 && byN.groups.get(2) === 1);
  t.is(rows.rows.size, 2);
  t.is(byStatus.total, 2);
  const names = frames(sent, 'subscribe').map((attributes) => attributes['as']);
  t.deepEqual(names, [undefined, 's1', 's2'], 'one connection, three subscriptions of one topic');
  // Stopping one leaves the others.
  byStatus.close();
  await waitFor('its unsubscribe', () => frames(sent, 'unsubscribe').length === 1);
  t.deepEqual(frames(sent, 'unsubscribe')[0], { topicName: 'item', as: 's1' });
  await db.query(`INSERT INTO item VALUES (3, 'alice', 'open', 3)`);
  await waitFor('the others go on', () => rows.rows.has('3') && byN.groups.get(3) === 1);
});

test('a reconnect subscribes the aggregate again and the fresh counts replace the held ones', withServer, { sql: SCHEMA }, async (t, { liveUrl, db, server }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'open', 1), (2, 'alice', 'open', 2), (3, 'alice', 'done', 3)`);
  // getToken runs on every connect: the reconnect waits until the test has written what it misses.
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => {};
  const { client, sent } = open(t, liveUrl, 'alice', {
    getToken: async () => {
      await gate;
      return signToken({ sub: 'alice' });
    },
  });
  const seen: AggregateCounts[] = [];
  const counts = liveAggregate(client, 'item', { groupBy: 'status', onChange: (current) => seen.push(current) });
  await counts.ready;
  t.is(counts.groups.get('open'), 2);

  gate = new Promise((resolve) => {
    openGate = resolve;
  });
  const { connectionId } = (client.state as Extract<ConnectionState, { status: 'open' }>).session;
  const dropped = await fetch(`http://127.0.0.1:${server.port}/admin/connections/${connectionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${signToken(ADMIN)}` } });
  t.is(dropped.status, 200);
  await waitFor('the client to notice', () => client.state.status === 'reconnecting');
  // While away: a group emptied, one created, one row left alice's view.
  await db.query(`DELETE FROM item WHERE id = 3`);
  await db.query(`INSERT INTO item VALUES (4, 'alice', 'new', 4)`);
  await db.query(`UPDATE item SET owner_id = 'bob' WHERE id = 1`);
  const before = seen.length;
  t.is(counts.groups.get('done'), 1, 'the counts stay while away');
  openGate();

  await waitFor('the fresh counts', () => counts.groups.has('new'));
  await matchesSql(db, () => counts.counts);
  t.false(counts.groups.has('done'), 'a group the fresh counts lack is gone');
  t.is(seen.length, before + 1, 'one change: the held counts replaced by the fresh ones');
  t.deepEqual(frames(sent, 'subscribe'), [
    { topicName: 'item', aggregate: { count: true, groupBy: 'status' } },
    { topicName: 'item', aggregate: { count: true, groupBy: 'status' } },
  ]);
  // Counting again from the fresh counts.
  await db.query(`INSERT INTO item VALUES (5, 'alice', 'open', 5)`);
  await waitFor('an insert after the reconnect', () => counts.groups.get('open') === 2);
  await matchesSql(db, () => counts.counts);
});

test('changing groupBy replaces the server subscription in place (no count of the old one reaches the new); one dropped while counted leaves nothing on the server', withServer, { sql: SCHEMA }, async (t, { liveUrl, db, server }) => {
  await db.query(`INSERT INTO item SELECT i, 'alice', CASE WHEN i % 2 = 0 THEN 'open' ELSE 'done' END, i % 3 FROM generate_series(1, 30000) i`);
  const { client, sent } = open(t, liveUrl, 'alice', { name: 'aggregate-test' });
  // Dropped at once, and the next one asked for before the server has counted the first (a component that changed its
  // options): the server counts the first, makes it live, then replaces it with the second, whose counts are the app's.
  const byStatus = liveAggregate(client, 'item', { groupBy: 'status' });
  byStatus.close();
  const byN = liveAggregate(client, 'item', { groupBy: 'n', filter: { id: { lte: 30 } } });
  const keys = new Set<unknown>();
  const stopKeys = client.aggregate('item', { groupBy: 'n', filter: { id: { lte: 30 } } }, (counts) => {
    for (const key of counts.groups.keys()) keys.add(key);
  });
  await byN.ready;
  t.deepEqual(pairs(byN.counts), [
    [0, 10],
    [1, 10],
    [2, 10],
  ]);
  await db.query(`UPDATE item SET n = 2 WHERE id = 1`);
  await db.query(`UPDATE item SET status = 'new' WHERE id = 2`);
  await waitFor('the update, counted by n', () => byN.groups.get(2) === 11);
  await db.query(`INSERT INTO item VALUES (0, 'alice', 'open', 0)`);
  await waitFor('the insert', () => byN.groups.get(0) === 11);
  t.deepEqual([...keys].sort(), [0, 1, 2], 'only counts by n ever reached the app');
  t.is(byStatus.version, 0, 'the dropped aggregate reported nothing');
  t.deepEqual(await serverSubscriptions(server.port, 'aggregate-test'), ['item']);
  // No unsubscribe: the second subscribe replaced the first on the server.
  t.deepEqual(frames(sent, 'unsubscribe'), []);
  t.is(frames(sent, 'subscribe').length, 2);

  // Closed while the server counts: the unsubscribe runs after the counting went live, so none is left behind.
  byN.close();
  stopKeys();
  const late = liveAggregate(client, 'item', { groupBy: 'status' });
  await waitFor('the subscribe', () => frames(sent, 'subscribe').length === 3);
  late.close();
  await waitFor('the unsubscribe', () => frames(sent, 'unsubscribe').length === 1);
  t.deepEqual(await waitFor('the server to hold nothing', async () => ((await serverSubscriptions(server.port, 'aggregate-test'))?.length === 0 ? [] : null)), []);
  // Rows of the topic on the same client afterwards: live, nothing of the aggregates in the way.
  const rows = liveRows(client, 'item', { filter: { id: { gte: 29990 } } });
  await rows.ready;
  await db.query(`INSERT INTO item VALUES (30001, 'alice', 'open', 1)`);
  await waitFor('the row', () => rows.rows.has('30001'));
  t.deepEqual(await serverSubscriptions(server.port, 'aggregate-test'), ['item']);
});

test('aggregate errors: a custom topic, an unknown groupBy column, a topic with a comma; a refused one leaves nothing on the server', withServer, { sql: SCHEMA }, async (t, { liveUrl, server }) => {
  const { client: admin } = open(t, liveUrl, 'admin', { getToken: async () => signToken(ADMIN) });
  await admin.createTopic({ name: 'room' });
  const { client } = open(t, liveUrl, 'alice', { name: 'aggregate-errors' });
  const errors: string[] = [];
  const custom = liveAggregate(client, 'room', { onError: (error) => errors.push(error.code) });
  t.is((await rejection(custom.ready)).code, 'SNAPSHOT_UNSUPPORTED');
  const unknown = liveAggregate(client, 'item', { groupBy: 'nope', onError: (error) => errors.push(error.code) });
  t.is((await rejection(unknown.ready)).code, 'INVALID_ATTRIBUTES');
  t.deepEqual(errors, ['SNAPSHOT_UNSUPPORTED', 'INVALID_ATTRIBUTES']);
  t.throws(() => client.aggregate('item,room', {}, () => {}), { instanceOf: TypeError });
  // The refused one left nothing behind: the same topic is free for another aggregate.
  const total = liveAggregate(client, 'item', {});
  t.is((await total.ready).total, 0);
  t.deepEqual(await serverSubscriptions(server.port, 'aggregate-errors'), ['item']);
  // One refused in place of a dropped one: the dropped one is unsubscribed.
  total.close();
  t.is((await rejection(liveAggregate(client, 'item', { groupBy: 'nope' }).ready)).code, 'INVALID_ATTRIBUTES');
  t.deepEqual(await waitFor('the server to hold nothing', async () => ((await serverSubscriptions(server.port, 'aggregate-errors'))?.length === 0 ? [] : null)), []);
});

/**
 * A scripted /live server in the socket itself: `answer` gets each request
 * the client sends and returns the frames to send back. For what a real
 * server does only when something breaks (counting revoked after its
 * answer) or by timing (a diff of a replaced subscription before the new
 * one's state).
 */
function scriptedSocket(answer: (request: { id: number; method: string; attributes: Record<string, unknown> }) => unknown[]): ClientOptions['WebSocket'] {
  return class {
    readyState = 0;
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    constructor() {
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.({});
        this.#deliver([{ type: 'session', status: 'open', data: { connectionId: 'c1', user: { sub: 'alice', role: null }, serverTime: new Date().toISOString(), limits: {} } }]);
      }, 0);
    }
    send(data: string): void {
      this.#deliver(answer(JSON.parse(data)));
    }
    close(): void {
      this.readyState = 3;
    }
    #deliver(frames: unknown[]): void {
      setTimeout(() => {
        for (const frame of frames) this.onmessage?.({ data: JSON.stringify(frame) });
      }, 0);
    }
  } as unknown as ClientOptions['WebSocket'];
}

test('counting revoked after its answer is asked for again; a diff before the state is not counted', async (t) => {
  const subscribes: Array<Record<string, unknown>> = [];
  const aggregate = (event: string, groups: unknown[], total: number) => ({ type: 'aggregate', topic: 'item', event, data: { groups, total } });
  const WebSocket = scriptedSocket(({ id, method, attributes }) => {
    if (method !== 'subscribe') return [{ type: 'response', id, method, ok: true, data: {} }];
    subscribes.push(attributes);
    const ok = { type: 'response', id, method, ok: true, data: { topics: ['item'], seq: '0000000000000010-00000000', aggregate: true } };
    if (subscribes.length === 1) return [ok, { type: 'subscription', topic: 'item', status: 'revoked', reason: 'the database went away' }];
    return [
      ok,
      // A diff of the subscription this one replaces, still counting on the server: not this one's.
      aggregate('diff', [{ key: 'stale', count: 9 }], 9),
      aggregate('state', [{ key: 'open', count: 2 }, { key: 'done', count: 1 }], 3),
      aggregate('diff', [{ key: 'done', count: 0 }, { key: 'new', count: 1 }], 3),
    ];
  });
  const client = createClient({ url: 'ws://scripted/live', token: 'x', WebSocket });
  t.teardown(() => client.close());
  const errors: string[] = [];
  const seen: Array<Array<[unknown, number]>> = [];
  const counts = liveAggregate(client, 'item', { groupBy: 'status', onError: (error) => errors.push(error.code), onChange: (current) => seen.push(pairs(current)) });
  await counts.ready;
  await waitFor('the diff', () => counts.groups.has('new'));
  t.deepEqual(seen, [
    [
      ['done', 1],
      ['open', 2],
    ],
    [
      ['new', 1],
      ['open', 2],
    ],
  ]);
  t.is(counts.total, 3);
  t.is(subscribes.length, 2);
  t.deepEqual(errors, []);
});
