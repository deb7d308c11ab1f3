import test from 'ava';
import { parseLsn } from '../src/replication/lsn.js';
import { attributesOf, isEvent, LiveClient, type EventFrame } from './helpers/live-client.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

const NOTES = `
  CREATE TABLE notes (id bigserial PRIMARY KEY, body text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;

// 2,000 requests as fast as they are answered: far over the default rate limit.
test('a row committed right after a successful subscribe arrives, 1,000 times', withServer, { sql: NOTES, env: { RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000' } }, async (t, { connect, db }) => {
  const client = await connect({ sub: '1' });
  for (let i = 0; i < 1000; i++) {
    await client.request('unsubscribe', { topicName: 'notes' });
    await client.subscribe('notes');
    const { rows } = await db.query<{ id: string }>(`INSERT INTO notes (body) VALUES ($1) RETURNING id::text AS id`, [`row ${i}`]);
    const event = await client.next(isEvent, 5000);
    if (event.data.id !== rows[0]!.id) t.fail(`repetition ${i}: expected row ${rows[0]!.id}, got ${event.data.id}`);
  }
  t.is(client.frames.filter(isEvent).length, 1000);
});

test('the subscribe answer carries the seq it starts at: since that seq resumes a client that saw no event', withServer, { sql: NOTES }, async (t, { connect, db }) => {
  await db.query(`INSERT INTO notes (body) VALUES ('before')`);
  const witness = await connect({ sub: 'w' });
  await witness.subscribe('notes');
  const client = await connect({ sub: '1' });
  const answer = (await client.subscribe('notes')).data;
  t.regex(answer.seq, /^[0-9A-F]{16}-[0-9A-F]{8}$/);
  client.close();
  await db.query(`INSERT INTO notes (body) VALUES ('missed 1'), ('missed 2')`);
  await witness.events(2);
  const back = await connect({ sub: '1' });
  t.like((await back.subscribe('notes', { since: answer.seq })).data, { resumed: true });
  t.deepEqual((await back.events(2)).map((e) => attributesOf(e)['body']), ['missed 1', 'missed 2']);
  t.is(back.frames.filter(isEvent).length, 2);
});

test('after a crash, a new subscription gets only what is committed after it, not the re-read tail of the slot', withServerProcess, {
  sql: `${NOTES}
    CREATE FUNCTION hold_positions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'positions held by the test'; END $$;
    CREATE TRIGGER hold_positions BEFORE UPDATE OF seq ON rowcast.messages FOR EACH ROW EXECUTE FUNCTION hold_positions();`,
}, async (t, { db, start }) => {
  let server = await start();
  const admin = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'a', role: 'admin' })}`);
  // A stored message whose position cannot be written holds the slot before everything after it.
  await admin.call('create-topic', { name: 'anchor' });
  const { seq } = await admin.call('new-message', { topicName: 'anchor', message: 'hold' });
  await admin.subscribe('notes');
  await db.query(`INSERT INTO notes (body) SELECT 'old ' || n FROM generate_series(1, 20000) n`);
  await admin.next((f) => isEvent(f) && attributesOf(f)['body'] === 'old 20000', 30_000);
  const slot = await db.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [db.name]);
  t.log(`slot held at ${slot.rows[0]!['lsn']}, the message at ${seq}`);
  await server.kill('SIGKILL');

  server = await start();
  const fresh = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'b' })}`);
  await fresh.subscribe('notes');
  await db.query(`INSERT INTO notes (body) VALUES ('new')`);
  t.like(await fresh.next(isEvent, 30_000), { data: { attributes: { body: 'new' } } });
  // The restarted server did re-read the old rows (they went nowhere live).
  const status = await waitFor('the re-read to be counted', async () => ((await server.status())['replication'].changes >= 20_001 ? true : null));
  t.true(status);
});

const ORDERS = `
  CREATE TABLE orders (id int PRIMARY KEY, owner_id text, amount int);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('orders', 'owner', 'owner_id');`;

test('since on a table replays from the window exactly what the subscription would have seen, then goes live', withServer, { sql: ORDERS }, async (t, { connect, db }) => {
  const filter = { amount: { gte: 10 } };
  const witness = await connect({ sub: 'alice' });
  await witness.subscribe('orders', { filter });
  const reader = await connect({ sub: 'alice' });
  await reader.subscribe('orders', { filter });
  await db.query(`INSERT INTO orders VALUES (1, 'alice', 50), (2, 'bob', 50)`);
  const [seen] = await reader.events(1);
  reader.close();
  // Moves in and out of alice's view and of the filter, other owners' rows, a delete.
  await db.query(`INSERT INTO orders VALUES (3, 'alice', 5), (4, 'alice', 20)`);
  await db.query(`UPDATE orders SET amount = 15 WHERE id = 3`);
  await db.query(`UPDATE orders SET owner_id = 'bob' WHERE id = 1`);
  await db.query(`UPDATE orders SET owner_id = 'alice' WHERE id = 2`);
  await db.query(`UPDATE orders SET amount = 1 WHERE id = 4`);
  await db.query(`DELETE FROM orders WHERE id = 2`);
  await db.query(`INSERT INTO orders VALUES (5, 'bob', 99)`);
  const expected = (await witness.events(7)).slice(1);
  t.deepEqual(expected.map((e) => [e.event, e.data.id]), [['create', '4'], ['create', '3'], ['delete', '1'], ['create', '2'], ['delete', '4'], ['delete', '2']]);

  const back = await connect({ sub: 'alice' });
  t.like((await back.subscribe('orders', { filter, since: seen!.seq })).data, { topics: ['orders'], resumed: true });
  t.deepEqual(await back.events(6), expected);
  await db.query(`INSERT INTO orders VALUES (6, 'alice', 10)`);
  t.like(await back.next(isEvent), { event: 'create', data: { id: '6' } });
  t.is(back.frames.filter(isEvent).length, 7);
});

test('since further back than the window, or before a change of the read policy, is resumed: false', withServer, { sql: NOTES, env: { HISTORY_EVENTS: '5' } }, async (t, { connect, db }) => {
  const reader = await connect({ sub: '1' });
  await reader.subscribe('notes');
  await db.query(`INSERT INTO notes (body) VALUES ('a'), ('b')`);
  const [first, second] = await reader.events(2);
  await db.query(`INSERT INTO notes (body) SELECT 'more' FROM generate_series(1, 5)`);
  await reader.events(5);
  // Seven events passed; the window keeps five: the second is the oldest one can resume after.
  const other = await connect({ sub: '2' });
  t.like(await other.subscribe('notes', { since: first!.seq }), { data: { resumed: false } });
  t.like(await other.subscribe('notes', { since: second!.seq }), { data: { resumed: true } });
  t.is((await other.events(5)).length, 5);

  const last = reader.frames.filter(isEvent).at(-1)!;
  await db.query(`UPDATE rowcast.table_policies SET read = 'admin' WHERE table_name = 'notes'`);
  await db.query(`UPDATE rowcast.table_policies SET read = 'public' WHERE table_name = 'notes'`);
  await reader.next((f) => f.type === 'subscription');
  const third = await connect({ sub: '3' });
  t.like(await third.subscribe('notes', { since: last.seq }), { data: { resumed: false } });
});

test('a client that reconnects with since while rows keep coming misses none and sees none twice', withServer, { sql: NOTES }, async (t, { connect, db }) => {
  let reader = await connect({ sub: 'r' });
  await reader.subscribe('notes');
  const writing = (async () => {
    for (let i = 0; i < 100; i++) await db.query(`INSERT INTO notes (body) SELECT 'x' FROM generate_series(1, 3)`);
  })();
  const received: EventFrame[] = [];
  while (received.length < 300) {
    received.push(await reader.next(isEvent, 20_000));
    if (received.length % 29 === 0) {
      reader.close();
      reader = await connect({ sub: 'r' });
      t.true((await reader.subscribe('notes', { since: received.at(-1)!.seq })).data.resumed);
    }
  }
  await writing;
  const { rows } = await db.query<{ id: string }>(`SELECT id::text AS id FROM notes ORDER BY notes.id`);
  t.deepEqual(received.map((e) => e.data.id), rows.map((r) => r.id));
});

test('after a SIGKILL, since replays the window re-read from the slot, frame for frame', withServerProcess, { sql: NOTES }, async (t, { db, start }) => {
  let server = await start();
  const connect = async (sub: string) => LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub })}`);
  const witness = await connect('w');
  await witness.subscribe('notes');
  const reader = await connect('r');
  await reader.subscribe('notes');
  await db.query(`INSERT INTO notes (body) SELECT 'first ' || n FROM generate_series(1, 50) n`);
  const seen = await reader.events(50);
  reader.close();
  for (let i = 0; i < 20; i++) await db.query(`INSERT INTO notes (body) SELECT 'then ' || n FROM generate_series(1, 5) n`);
  const expected = (await witness.events(150)).slice(50);
  // Once acknowledged, the slot stays at the window's oldest event (the first insert), not past it.
  const oldest = parseLsn(`${seen[0]!.seq.slice(0, 8)}/${seen[0]!.seq.slice(8, 16)}`);
  const acknowledged = await waitFor('the stream to acknowledge the slot', async () => {
    const lsn = parseLsn((await server.status())['replication'].acknowledgedLsn);
    return lsn >= oldest ? lsn : null;
  });
  t.is(acknowledged, oldest);
  await server.kill('SIGKILL');

  server = await start();
  const back = await connect('r');
  t.like(await back.subscribe('notes', { since: seen.at(-1)!.seq }), { data: { resumed: true } });
  t.deepEqual(await back.events(100), expected);
  await db.query(`INSERT INTO notes (body) VALUES ('after')`);
  t.like(await back.next(isEvent), { data: { attributes: { body: 'after' } } });
  t.is(back.frames.filter(isEvent).length, 101);
});

const DOCS = `
  CREATE TABLE docs (id int PRIMARY KEY, team text);
  INSERT INTO rowcast.table_policies (table_name, read, group_column) VALUES ('docs', 'group', 'team');`;

test('a row moving between two of the reader\'s groups is delete (part 1) then create (part 2), and since <seq>/1 resumes between them', withServer, { sql: DOCS }, async (t, { connect, db }) => {
  const claims = { sub: 'c', groups: ['red', 'blue'] };
  const reader = await connect(claims);
  await reader.subscribe('docs');
  await db.query(`INSERT INTO docs VALUES (1, 'red')`);
  await db.query(`UPDATE docs SET team = 'blue' WHERE id = 1`);
  await db.query(`INSERT INTO docs VALUES (2, 'red')`);
  const [created, left, entered] = await reader.events(3);
  t.is(created!.part, undefined);
  t.like(left, { event: 'delete', part: 1, data: { id: '1' } });
  t.like(entered, { event: 'create', part: 2, seq: left!.seq, data: { id: '1', attributes: { team: 'blue' } } });

  let marker = 100;
  // What a client resuming with `since` receives, up to a marker row committed after it subscribed.
  const resumeFrom = async (since: string) => {
    const client = await connect(claims);
    t.like(await client.subscribe('docs', { since }), { data: { resumed: true } });
    const id = String(++marker);
    await db.query(`INSERT INTO docs VALUES ($1, 'red')`, [id]);
    const frames: Array<[string, string]> = [];
    for (;;) {
      const event = await client.next(isEvent);
      if (event.data.id === id) return frames;
      if (Number(event.data.id) < 100) frames.push([event.event, event.data.id]); // not earlier markers
    }
  };
  t.deepEqual(await resumeFrom(`${left!.seq}/1`), [['create', '1'], ['create', '2']]);
  t.deepEqual(await resumeFrom(`${left!.seq}/2`), [['create', '2']]);
  t.deepEqual(await resumeFrom(left!.seq), [['create', '2']]);
  const bad = await connect(claims);
  t.like(await bad.request('subscribe', { topicName: 'docs', since: `${left!.seq}/3` }), { ok: false, error: { code: 'INVALID_ATTRIBUTES' } });
});
