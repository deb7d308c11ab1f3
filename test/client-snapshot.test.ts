/**
 * The client SDK's snapshots against the real server: `subscribe` with
 * `snapshot: true` hands the pages to `onSnapshot` before any event, and
 * `liveRows` without `load` starts from the server's snapshot (with the
 * policy and the filter), follows the changes, and replaces its rows with a
 * fresh snapshot after a reconnect the server could not resume.
 */
import test from 'ava';
import { createClient, liveRows, type ClientOptions, type ConnectionState, type LiveEvent, type RowcastClient, type SnapshotPage } from '@rowcast/client';
import { recordingWebSocket, rejection } from './helpers/sdk-client.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';

const ADMIN = { sub: 'admin', role: 'admin' };
const SCHEMA = `
  CREATE TABLE item (id int PRIMARY KEY, owner_id text NOT NULL, team text NOT NULL, n int NOT NULL);
  CREATE TABLE board (id int PRIMARY KEY, title text NOT NULL);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('item', 'owner', 'owner_id');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('board', 'public');`;

interface Opened {
  readonly client: RowcastClient;
  /** Every frame the client sent. */
  readonly sent: string[];
}

/** A client for `sub` (`ws` stands in for the global WebSocket), closed after the test. */
function open(t: { teardown(fn: () => void): void }, url: string, sub: string, getToken?: () => Promise<string>): Opened {
  const sent: string[] = [];
  const client = createClient({
    url,
    ...(getToken ? { getToken } : { token: signToken({ sub }) }),
    backoff: { initialMs: 20, maxMs: 100 },
    WebSocket: recordingWebSocket(sent),
  });
  t.teardown(() => client.close());
  return { client, sent };
}

const subscribeFrames = (sent: string[]) =>
  sent.map((frame) => JSON.parse(frame) as { method: string; attributes: Record<string, unknown> }).filter((frame) => frame.method === 'subscribe').map((frame) => frame.attributes);

/** The rows SQL says alice may read (with `where`), as liveRows keeps them: id → row. */
async function alicesRows(db: { query: (sql: string) => Promise<{ rows: Array<Record<string, unknown>> }> }, where = 'true'): Promise<Array<[string, Record<string, unknown>]>> {
  const { rows } = await db.query(`SELECT id, owner_id, team, n FROM item WHERE owner_id = 'alice' AND ${where} ORDER BY id`);
  return rows.map((row) => [String(row['id']), row]);
}

const sorted = (rows: ReadonlyMap<string, Record<string, unknown>>) => [...rows.entries()].sort(([a], [b]) => Number(a) - Number(b));

test('subscribe with snapshot: pages reach onSnapshot (first, then done), then the events', withServer, { sql: SCHEMA }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO board SELECT i, 'b' || i FROM generate_series(1, 1200) i`);
  const { client, sent } = open(t, liveUrl, 'alice');
  const pages: SnapshotPage[] = [];
  const order: string[] = [];
  const answer = await client.subscribe(
    'board',
    {
      snapshot: true,
      onSnapshot: (page) => {
        pages.push(page);
        order.push(page.done ? 'done' : 'page');
      },
    },
    (event) => order.push(`event ${event.data.id}`),
  ).ready;
  t.true(answer.snapshot);
  t.like(subscribeFrames(sent), [{ topicName: 'board', snapshot: true }]);
  await waitFor('the last page', () => pages.some((page) => page.done));
  // 500 rows a page.
  t.deepEqual(
    pages.map((page) => [page.rows.length, page.first, page.done]),
    [
      [500, true, false],
      [500, false, false],
      [200, false, true],
    ],
  );
  t.is(new Set(pages.flatMap((page) => page.rows.map((row) => row.id))).size, 1200);
  t.like(pages[0]!.rows[0], { type: 'board', attributes: { title: `b${pages[0]!.rows[0]!.id}` } });
  await db.query(`INSERT INTO board VALUES (1201, 'new')`);
  await waitFor('the event after the snapshot', () => order.includes('event 1201'));
  t.deepEqual(order, ['page', 'page', 'done', 'event 1201']);
});

test('liveRows without load starts from the server snapshot (only the rows alice may read), then follows the changes', withServer, { sql: SCHEMA }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'a', 1), (2, 'bob', 'a', 2), (3, 'alice', 'b', 3)`);
  const { client, sent } = open(t, liveUrl, 'alice');
  const changes: number[] = [];
  const rows = liveRows(client, 'item', { onChange: (current) => changes.push(current.size) });
  await rows.ready;
  t.deepEqual(sorted(rows.rows), await alicesRows(db));
  t.deepEqual(changes, [2]);
  t.like(subscribeFrames(sent), [{ topicName: 'item', snapshot: true }]);

  await db.query(`INSERT INTO item VALUES (4, 'alice', 'a', 4), (5, 'bob', 'a', 5)`);
  await waitFor('the insert', () => rows.rows.has('4'));
  await db.query(`UPDATE item SET n = 10 WHERE id = 1`);
  await waitFor('the update', () => rows.rows.get('1')?.['n'] === 10);
  await db.query(`DELETE FROM item WHERE id = 3`);
  await waitFor('the delete', () => !rows.rows.has('3'));
  t.deepEqual(sorted(rows.rows), await alicesRows(db));
  t.is(rows.version, 4);
  rows.close();
});

test('liveRows with a filter: the snapshot and the changes are narrowed by it', withServer, { sql: SCHEMA }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'a', 1), (2, 'alice', 'b', 2), (3, 'bob', 'a', 3), (4, 'alice', 'a', 4)`);
  const { client } = open(t, liveUrl, 'alice');
  const rows = liveRows(client, 'item', { filter: { team: { eq: 'a' } } });
  await rows.ready;
  t.deepEqual(sorted(rows.rows), await alicesRows(db, `team = 'a'`));
  t.deepEqual([...rows.rows.keys()].sort(), ['1', '4']);

  await db.query(`INSERT INTO item VALUES (5, 'alice', 'b', 5)`);
  await db.query(`INSERT INTO item VALUES (6, 'alice', 'a', 6)`);
  await waitFor('the insert in the filter', () => rows.rows.has('6'));
  t.false(rows.rows.has('5'));
  await db.query(`DELETE FROM item WHERE id = 1`);
  await waitFor('the delete', () => !rows.rows.has('1'));
  t.deepEqual(sorted(rows.rows), await alicesRows(db, `team = 'a'`));
});

test('a reconnect the server cannot resume brings a fresh snapshot that replaces the rows at once', withServer, { sql: SCHEMA, env: { HISTORY_EVENTS: '5' } }, async (t, { liveUrl, db, server }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'a', 1), (2, 'alice', 'a', 2), (3, 'alice', 'a', 3)`);
  // getToken runs on every connect: the reconnect waits until the test has written what it misses.
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => {};
  const { client, sent } = open(t, liveUrl, 'alice', async () => {
    await gate;
    return signToken({ sub: 'alice' });
  });
  const firsts: boolean[] = [];
  const resyncs: number[] = [];
  const changes: Array<Array<[string, Record<string, unknown>]>> = [];
  const rows = liveRows(client, 'item', { onChange: (current) => changes.push(sorted(current)), onResync: () => resyncs.push(1) });
  // A second handler on the same subscription, to see the pages' flags.
  client.subscribe('item', { snapshot: true, onSnapshot: (page) => firsts.push(page.first) }, () => {});
  await rows.ready;
  t.deepEqual([...rows.rows.keys()].sort(), ['1', '2', '3']);
  await db.query(`UPDATE item SET n = 20 WHERE id = 2`);
  await waitFor('the update', () => rows.rows.get('2')?.['n'] === 20);

  gate = new Promise((resolve) => {
    openGate = resolve;
  });
  const { connectionId } = (client.state as Extract<ConnectionState, { status: 'open' }>).session;
  const dropped = await fetch(`http://127.0.0.1:${server.port}/admin/connections/${connectionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${signToken(ADMIN)}` } });
  t.is(dropped.status, 200);
  await waitFor('the client to notice', () => client.state.status === 'reconnecting');
  // While away: a row deleted, one updated, and more changes than the replay window (5 events) holds.
  await db.query(`DELETE FROM item WHERE id = 1`);
  await db.query(`UPDATE item SET n = 30 WHERE id = 3`);
  for (let id = 10; id < 17; id++) await db.query(`INSERT INTO item VALUES ($1, 'alice', 'a', $1)`, [id]);
  const before = changes.length;
  t.deepEqual([...rows.rows.keys()].sort(), ['1', '2', '3'], 'the rows stay while away');
  openGate();

  await waitFor('the fresh snapshot', () => !rows.rows.has('1'));
  t.deepEqual(sorted(rows.rows), await alicesRows(db));
  // One change: the old rows replaced by the new ones, never an empty or partial list in between.
  t.deepEqual(changes.slice(before), [await alicesRows(db)]);
  t.deepEqual(firsts, [true, true]);
  t.deepEqual(resyncs, [], 'a snapshot heals: nothing to refetch');
  // The resubscribe asked to resume, with a snapshot if it could not.
  const [, again] = subscribeFrames(sent);
  t.like(again, { topicName: 'item', snapshot: true });
  t.is(typeof again?.['since'], 'string');

  // Live again from the new snapshot.
  await db.query(`INSERT INTO item VALUES (20, 'alice', 'a', 20)`);
  await waitFor('an insert after the reconnect', () => rows.rows.has('20'));
  t.deepEqual(sorted(rows.rows), await alicesRows(db));
});

test('liveRows joining a live subscription gets its own snapshot; the events of the other handler are neither missed nor repeated', withServer, { sql: SCHEMA }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO item SELECT i, 'alice', 'a', i FROM generate_series(1, 300) i`);
  const { client, sent } = open(t, liveUrl, 'alice');
  const events: LiveEvent[] = [];
  await client.subscribe('item', {}, (event) => events.push(event)).ready;
  // A writer commits while liveRows joins: some of its changes are read by the snapshot, the others follow it.
  const writes = 40;
  const writer = (async () => {
    for (let id = 1001; id < 1001 + writes; id++) await db.query(`INSERT INTO item VALUES ($1, 'alice', 'a', $1)`, [id]);
  })();
  await waitFor('the writer to have started', () => events.length >= 3);
  const rows = liveRows(client, 'item');
  await rows.ready;
  await writer;
  await waitFor('every change', async () => rows.rows.size === 300 + writes && events.length === writes);
  t.deepEqual(sorted(rows.rows), await alicesRows(db));
  t.deepEqual(
    events.map((event) => event.data.id),
    Array.from({ length: writes }, (_, i) => String(1001 + i)),
  );
  // The second subscribe replaced the server's subscription with one that has a snapshot.
  t.like(subscribeFrames(sent), [{ topicName: 'item' }, { topicName: 'item', snapshot: true }]);
  t.false('since' in subscribeFrames(sent)[1]!);
});

test('liveRows errors: a custom topic has no snapshot; too many rows is LIMIT_EXCEEDED; load still works', withServer, { sql: SCHEMA, env: { SNAPSHOT_MAX_ROWS: '2' } }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO item VALUES (1, 'alice', 'a', 1), (2, 'alice', 'a', 2), (3, 'alice', 'b', 3)`);
  const { client: admin } = open(t, liveUrl, 'admin', async () => signToken(ADMIN));
  await admin.createTopic({ name: 'room' });
  const { client } = open(t, liveUrl, 'alice');
  const errors: string[] = [];
  const custom = liveRows(client, 'room', { onError: (error) => errors.push(error.code) });
  t.is((await rejection(custom.ready)).code, 'SNAPSHOT_UNSUPPORTED');
  const many = liveRows(client, 'item', { onError: (error) => errors.push(error.code) });
  t.is((await rejection(many.ready)).code, 'LIMIT_EXCEEDED');
  t.deepEqual(errors, ['SNAPSHOT_UNSUPPORTED', 'LIMIT_EXCEEDED']);
  // A filter brings it under the limit.
  const narrow = liveRows(client, 'item', { filter: { team: { eq: 'a' } } });
  await narrow.ready;
  t.deepEqual([...narrow.rows.keys()].sort(), ['1', '2']);
  // With load, no snapshot is asked for.
  const { client: other, sent } = open(t, liveUrl, 'alice');
  const loaded = liveRows(other, 'item', { load: async () => [['3', { id: 3 }]] });
  await loaded.ready;
  t.deepEqual([...loaded.rows.keys()], ['3']);
  t.false('snapshot' in subscribeFrames(sent)[0]!);
  t.throws(() => liveRows(other, 'item', { load: async () => [], serverSnapshot: true }), { instanceOf: TypeError });
});

/**
 * A scripted /live server in the socket itself: `answer` gets each request
 * the client sends and returns the frames to send back. For what a real
 * server does only when something breaks (a snapshot revoked after its
 * answer).
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

test('a snapshot revoked after its answer is asked for again, and the new one replaces the partial rows', async (t) => {
  const row = (id: number, n: number) => ({ type: 'item', id: String(id), attributes: { id, n } });
  const subscribes: Array<Record<string, unknown>> = [];
  const WebSocket = scriptedSocket(({ id, method, attributes }) => {
    if (method !== 'subscribe') return [{ type: 'response', id, method, ok: true, data: {} }];
    subscribes.push(attributes);
    const ok = { type: 'response', id, method, ok: true, data: { topics: ['item'], seq: '0000000000000010-00000000', snapshot: true } };
    if (subscribes.length === 1) {
      return [ok, { type: 'snapshot', topic: 'item', data: [row(1, 1), row(2, 1)], done: false }, { type: 'subscription', topic: 'item', status: 'revoked', reason: 'the database went away' }];
    }
    return [
      ok,
      { type: 'snapshot', topic: 'item', data: [row(2, 2)], done: false },
      { type: 'snapshot', topic: 'item', data: [row(3, 2)], done: true, seq: '0000000000000020-00000000' },
      { type: 'event', topic: 'item', event: 'create', seq: '0000000000000018-00000000', ts: '', data: row(4, 2) },
    ];
  });
  const client = createClient({ url: 'ws://scripted/live', token: 'x', WebSocket });
  t.teardown(() => client.close());
  const errors: string[] = [];
  const pages: Array<[boolean, boolean]> = [];
  client.subscribe('item', { snapshot: true, onSnapshot: (page) => pages.push([page.first, page.done]) }, () => {});
  const rows = liveRows(client, 'item', { onError: (error) => errors.push(error.code) });
  await rows.ready;
  // The partial first snapshot never showed; the second replaced it, then the change committed while it was read.
  t.deepEqual([...rows.rows.keys()].sort(), ['2', '3', '4']);
  t.is(rows.version, 2);
  t.deepEqual(pages, [
    [true, false],
    [true, false],
    [false, true],
  ]);
  t.deepEqual(subscribes, [
    { topicName: 'item', snapshot: true },
    { topicName: 'item', snapshot: true },
  ]);
  t.deepEqual(errors, []);
});
