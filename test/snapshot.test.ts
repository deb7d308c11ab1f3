/**
 * `subscribe` with `snapshot: true` (docs/snapshots.md): the rows a user may
 * read in pages, then the changes after exactly those rows — checked against
 * SQL with a writer running while clients subscribe, and with transactions
 * in progress at the cut.
 */
import test from 'ava';
import { errorOf, type LiveClient, type ServerFrame } from './helpers/live-client.js';
import { Collected, join, phoenixSocket } from './helpers/phoenix-client.js';
import { parseCut, visibleAtCut } from '../src/events/snapshot-reader.js';
import { RowFold } from './helpers/row-fold.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';

const SCHEMA = `
  CREATE TABLE item (id int PRIMARY KEY, owner_id int, team text, n int, note text);
  CREATE TABLE typed (id int8 PRIMARY KEY, at timestamptz, day date, amount numeric, doc jsonb, blob bytea, tags text[], ratio float8, big int8);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('item', 'owner', 'owner_id');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('typed', 'public');`;

const ADMIN = { sub: 'admin', role: 'admin' };

/** Subscribes with `snapshot: true` and folds every frame of `topic` from then on. */
async function snapshotFold(client: LiveClient, topic: string, extra: Record<string, unknown> = {}): Promise<RowFold> {
  const fold = new RowFold(topic);
  const from = client.frames.length;
  const answer = await client.request('subscribe', { topicName: topic, snapshot: true, ...extra });
  if (answer.type !== 'response' || !answer.ok) throw new Error(`subscribe failed: ${JSON.stringify(answer)}`);
  // Frames arrive in order; the answer was among them.
  let seen = from;
  const pump = (): void => {
    for (; seen < client.frames.length; seen++) fold.apply(client.frames[seen]!);
  };
  client.socket.on('message', pump);
  pump();
  return fold;
}

/** The rows SQL says `where` selects, as the fold keeps them. */
async function expected(db: { query: (sql: string) => Promise<{ rows: Array<Record<string, unknown>> }> }, where: string): Promise<string> {
  const { rows } = await db.query(`SELECT id, owner_id, team, n, note FROM item WHERE ${where} ORDER BY id`);
  return JSON.stringify(rows.map((row) => [String(row['id']), row]));
}

function folded(fold: RowFold): string {
  return JSON.stringify([...fold.rows.entries()].sort(([a], [b]) => Number(a) - Number(b)));
}

test('a snapshot sends the user’s rows in pages, then the changes; admins get every row; a filter narrows it', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  await db.query(`INSERT INTO item SELECT i, i % 3, 'a', i, 'x' FROM generate_series(1, 1600) AS i`);
  const alice = await connect({ sub: '1' });
  const answer = await alice.request('subscribe', { topicName: 'item', snapshot: true });
  t.like(answer, { type: 'response', ok: true, data: { topics: ['item'], snapshot: true } });
  const last = await alice.next((f) => f.type === 'snapshot' && f.done);
  const pages = alice.frames.filter((f): f is Extract<ServerFrame, { type: 'snapshot' }> => f.type === 'snapshot');
  t.true(pages.length >= 2, `${pages.length} pages`);
  t.deepEqual(pages.flatMap((p) => p.data.map((row) => Number(row.id))).sort((a, b) => a - b), Array.from({ length: 534 }, (_, i) => 1 + 3 * i));
  t.like(pages[0]!.data[0], { type: 'item' });
  t.regex((last as { seq: string }).seq, /^[0-9A-F]{16}-[0-9A-F]{8}$/);
  // Nothing but the pages between the answer and the last page.
  const at = alice.frames.indexOf(answer);
  t.true(alice.frames.slice(at + 1, alice.frames.indexOf(last) + 1).every((f) => f.type === 'snapshot'));

  await db.query(`INSERT INTO item VALUES (5000, 1, 'a', 1, 'new'), (5001, 2, 'a', 1, 'not hers')`);
  const created = await alice.next((f) => f.type === 'event' && f.topic === 'item');
  t.like(created, { event: 'create', data: { id: '5000' } });

  const admin = await connect(ADMIN);
  const everything = await snapshotFold(admin, 'item');
  await waitFor('admin’s snapshot', () => everything.done);
  t.is(everything.rows.size, 1602);

  const filtered = await snapshotFold(await connect({ sub: '2' }), 'item', { filter: { n: { lt: 100 } } });
  await waitFor('filtered snapshot', () => filtered.done);
  t.is(folded(filtered), await expected(db, 'owner_id = 2 AND n < 100'));
  t.deepEqual(filtered.violations, []);
});

test('snapshot values are those of events: numbers, timestamps, numeric, json, bytea, arrays, int8', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  const values = `'2026-11-30 10:00:00.123456+00', '2026-11-30', 12.50, '{"a":[1,{"b":null}]}', '\\x6869', '{x,"y z"}', 0.1, 9007199254740993`;
  await db.query(`INSERT INTO typed VALUES (1, ${values})`);
  const client = await connect({ sub: 'u' });
  const fold = await snapshotFold(client, 'typed');
  await waitFor('snapshot', () => fold.done);
  await db.query(`INSERT INTO typed VALUES (2, ${values})`);
  await waitFor('the insert', () => fold.rows.get('2'));
  t.deepEqual({ ...(fold.rows.get('1') as object), id: 0 }, { ...(fold.rows.get('2') as object), id: 0 });
  t.like(fold.rows.get('1'), { big: '9007199254740993', amount: '12.50', tags: ['x', 'y z'], doc: { a: [1, { b: null }] } });
});

test('transactions in progress at the cut arrive as events; those committed before it do not', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  await db.query(`INSERT INTO item VALUES (1, 1, 'a', 1, 'before')`);
  const open = await db.client();
  try {
    await open.query('BEGIN');
    await open.query(`INSERT INTO item VALUES (2, 1, 'a', 2, 'in progress'); UPDATE item SET note = 'updated in progress' WHERE id = 1`);
    const alice = await connect({ sub: '1' });
    const fold = await snapshotFold(alice, 'item');
    await waitFor('snapshot', () => fold.done);
    t.deepEqual([...fold.rows.keys()], ['1']);
    t.like(fold.rows.get('1'), { note: 'before' });
    await open.query('COMMIT');
    await waitFor('the committed transaction', () => fold.rows.has('2') && (fold.rows.get('1') as { note: string }).note === 'updated in progress');
    t.deepEqual(fold.violations, []);
  } finally {
    await open.end();
  }
});

test('consistency: clients snapshotting at random moments while a writer commits end with exactly what SQL says they may read', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  await db.query(`INSERT INTO item SELECT i, i % 4, 'a', i % 100, 'seed' FROM generate_series(1, 400) AS i`);
  let writing = true;
  const writer = (async () => {
    const client = await db.client();
    let next = 1000;
    try {
      while (writing) {
        const ops: string[] = [];
        const size = Math.random() < 0.05 ? 200 : 1 + Math.floor(Math.random() * 4);
        for (let i = 0; i < size; i++) {
          const id = 1 + Math.floor(Math.random() * (next - 1));
          const roll = Math.random();
          if (roll < 0.35) ops.push(`INSERT INTO item VALUES (${next++}, ${Math.floor(Math.random() * 4)}, 'a', ${Math.floor(Math.random() * 100)}, 'w')`);
          else if (roll < 0.6) ops.push(`UPDATE item SET n = ${Math.floor(Math.random() * 100)}, note = 'u${next}' WHERE id = ${id}`);
          else if (roll < 0.8) ops.push(`UPDATE item SET owner_id = ${Math.floor(Math.random() * 4)} WHERE id = ${id}`);
          else ops.push(`DELETE FROM item WHERE id = ${id}`);
        }
        await client.query(`BEGIN; ${ops.join('; ')}; COMMIT`);
      }
    } finally {
      await client.end();
    }
  })();
  const clients: Array<{ fold: RowFold; where: string }> = [];
  for (let i = 0; i < 12; i++) {
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 150));
    const sub = i % 4;
    const admin = i === 11;
    const filter = i % 3 === 1 ? { n: { gte: 50 } } : undefined;
    const client = await connect(admin ? ADMIN : { sub: String(sub) });
    const fold = await snapshotFold(client, 'item', filter ? { filter } : {});
    clients.push({ fold, where: `${admin ? 'TRUE' : `owner_id = ${sub}`}${filter ? ' AND n >= 50' : ''}` });
  }
  writing = false;
  await writer;
  for (const { fold, where } of clients) {
    const want = await expected(db, where);
    await waitFor(`fold of ${where} equal to SQL`, () => folded(fold) === want, 30_000);
    t.deepEqual(fold.violations, [], where);
  }
});

test('errors: a custom topic has no snapshot; one topic at a time; past SNAPSHOT_MAX_ROWS nothing is sent but the count', withServer, { sql: SCHEMA, env: { SNAPSHOT_MAX_ROWS: '5' } }, async (t, { db, connect }) => {
  await db.query(`INSERT INTO item SELECT i, 1, 'a', i, 'x' FROM generate_series(1, 7) AS i`);
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'chat' });
  const custom = await admin.request('subscribe', { topicName: 'chat', snapshot: true });
  t.is(errorOf(custom).code, 'SNAPSHOT_UNSUPPORTED');
  t.is(errorOf(await admin.request('subscribe', { topicName: 'item,typed', snapshot: true })).code, 'INVALID_ATTRIBUTES');
  const alice = await connect({ sub: '1' });
  const tooMany = errorOf(await alice.request('subscribe', { topicName: 'item', snapshot: true }));
  t.is(tooMany.code, 'LIMIT_EXCEEDED');
  t.regex(tooMany.message, /7 rows/);
  t.false(alice.frames.some((f) => f.type === 'snapshot'));
  // The filter brings it under the limit.
  const fold = await snapshotFold(alice, 'item', { filter: { n: { lte: 5 } } });
  await waitFor('filtered snapshot', () => fold.done);
  t.is(fold.rows.size, 5);
});

test('since with snapshot: resumed replays without a snapshot; not resumable gives a fresh snapshot', withServer, { sql: SCHEMA }, async (t, { db, connect }) => {
  await db.query(`INSERT INTO item VALUES (1, 1, 'a', 1, 'x')`);
  const alice = await connect({ sub: '1' });
  const first = await snapshotFold(alice, 'item');
  await waitFor('snapshot', () => first.done);
  alice.close();
  await db.query(`INSERT INTO item VALUES (2, 1, 'a', 2, 'missed')`);

  const back = await connect({ sub: '1' });
  const resumed = await back.request('subscribe', { topicName: 'item', snapshot: true, since: first.seq });
  t.like(resumed, { ok: true, data: { resumed: true } });
  t.false('snapshot' in (resumed as { data: object }).data);
  await back.next((f) => f.type === 'event' && f.data.id === '2');
  t.false(back.frames.some((f) => f.type === 'snapshot'));

  const stale = await connect({ sub: '1' });
  const answer = await stale.request('subscribe', { topicName: 'item', snapshot: true, since: '0000000000000001-00000000' });
  t.like(answer, { ok: true, data: { resumed: false, snapshot: true } });
  const last = await stale.next((f) => f.type === 'snapshot' && f.done);
  t.deepEqual((last as { data: Array<{ id: string }> }).data.map((row) => row.id).sort(), ['1', '2']);
});

test('SNAPSHOT_CONCURRENCY: snapshots beyond it wait their turn and all complete', withServer, { sql: SCHEMA, env: { SNAPSHOT_CONCURRENCY: '1' } }, async (t, { db, connect, server }) => {
  await db.query(`INSERT INTO item SELECT i, i % 5, 'a', i, 'x' FROM generate_series(1, 2000) AS i`);
  const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => connect({ sub: String(i) })));
  // A lock holds the first snapshot's read, so the others must queue behind it.
  const locker = await db.client();
  try {
    await locker.query('BEGIN; LOCK TABLE item IN ACCESS EXCLUSIVE MODE');
    const pending = Promise.all(clients.map((client) => snapshotFold(client, 'item')));
    await waitFor('one snapshot running, four waiting', () => {
      const { running, waiting } = server.status().snapshots;
      return running === 1 && waiting === 4;
    });
    await locker.query('COMMIT');
    const folds = await pending;
    await waitFor('every snapshot', () => folds.every((fold) => fold.done));
    t.like(server.status().snapshots, { running: 0, waiting: 0 });
    t.deepEqual(folds.map((fold) => fold.rows.size), [400, 400, 400, 400, 400]);
  } finally {
    await locker.end();
  }
});

test('Phoenix: joining with snapshot: true gives snapshot pushes before the events', withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
  await db.query(`INSERT INTO item SELECT i, 1, 'a', i, 'x' FROM generate_series(1, 700) AS i`);
  const socket = phoenixSocket(server.port, token({ sub: '1' }));
  try {
    const channel = socket.channel('table:item', { snapshot: true });
    const seen = new Collected(channel, ['snapshot', 'create']);
    const reply = await join(channel);
    t.like(reply, { snapshot: true });
    await waitFor('the last snapshot push', () => seen.items.some((m) => m.event === 'snapshot' && m.payload['done'] === true));
    await db.query(`INSERT INTO item VALUES (9000, 1, 'a', 1, 'new')`);
    await waitFor('the create', () => seen.items.some((m) => m.event === 'create'));
    const events = seen.items.map((m) => m.event);
    t.deepEqual(events, ['snapshot', 'snapshot', 'create']);
    t.is(seen.items.slice(0, 2).flatMap((m) => m.payload['data'] as unknown[]).length, 700);
  } finally {
    socket.disconnect();
  }
});

test('the cut: a 32-bit xid is read against the snapshot nearest its xmax, across an epoch', (t) => {
  const epoch = 1n << 32n;
  const cut = parseCut(`${epoch + 5n}:${epoch + 10n}:${epoch + 7n}`, '0/10');
  t.true(visibleAtCut(cut, 3));
  t.true(visibleAtCut(cut, 6));
  t.false(visibleAtCut(cut, 7), 'in progress at the cut');
  t.false(visibleAtCut(cut, 10), 'began after the cut');
  t.false(visibleAtCut(cut, 12));
  t.true(visibleAtCut(cut, 0xfffffff0), 'the previous epoch');
  const early = parseCut('3:3:', '0/10');
  t.false(visibleAtCut(early, 4));
  t.true(visibleAtCut(early, 0xfffffff0));
});

test('the stream behind the snapshot (its connection cut): commits the snapshot already holds are not sent again when the stream catches up', withServer, { sql: SCHEMA }, async (t, { db, connect, server }) => {
  await db.query(`INSERT INTO item SELECT i, 1, 'a', i, 'x' FROM generate_series(1, 50) AS i`);
  const alice = await connect({ sub: '1' });
  const streamDown = async () => {
    const { rows } = await db.query<{ pid: number | null }>(`SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1`, [db.name]);
    if (rows[0]?.pid) await db.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
    await waitFor('the stream down', () => !server.status().replication.connected, 10_000);
  };
  await streamDown();
  // Committed while the stream is away: in the snapshot, and streamed only after it.
  await db.query(`INSERT INTO item VALUES (100, 1, 'a', 1, 'committed before the cut')`);
  await db.query(`UPDATE item SET note = 'updated before the cut' WHERE id = 1`);
  const fold = await snapshotFold(alice, 'item');
  await waitFor('snapshot', () => fold.done, 60_000);
  t.true(fold.rows.has('100'));
  t.like(fold.rows.get('1'), { note: 'updated before the cut' });
  await db.query(`INSERT INTO item VALUES (101, 1, 'a', 1, 'after')`);
  await waitFor('the insert after', () => fold.rows.has('101'), 30_000);
  t.deepEqual(fold.violations, []);
  t.is(folded(fold), await expected(db, 'owner_id = 1'));
});
