import test from 'ava';
import type { ResponseData } from '../src/protocol/index.js';
import { parseLsn } from '../src/replication/lsn.js';
import { attributesOf, isEvent, LiveClient, type EventFrame } from './helpers/live-client.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

const ADMIN = { sub: 'admin-1', role: 'admin' };

/** Publishes `count` messages (`{n}` from `from`) one after another; returns the responses' data. */
async function publish(client: LiveClient, topicName: string, from: number, count: number): Promise<Array<ResponseData['new-message']>> {
  const sent = [];
  for (let n = from; n < from + count; n++) sent.push(await client.call('new-message', { topicName, message: { n } }));
  return sent;
}

test('subscribe with since replays exactly the missed messages, as the live frames were, then goes live', withServer, {}, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'room' });
  const witness = await connect({ sub: 'witness' });
  await witness.subscribe('room');
  const reader = await connect({ sub: 'reader' });
  await reader.subscribe('room');
  await publish(admin, 'room', 0, 5);
  const seen = await reader.events(5);
  reader.close();

  const missed = await publish(admin, 'room', 5, 7);
  const back = await connect({ sub: 'reader' });
  const response = await back.subscribe('room', { since: seen[4]!.seq });
  t.like(response.data, { topics: ['room'], resumed: true });
  const replayed = await back.events(7);
  t.deepEqual(replayed.map((e) => e.data.id), missed.map((m) => m.id));
  // Byte for byte what a subscriber that never left received.
  const live = await witness.events(12);
  t.deepEqual(replayed, live.slice(5));
  // The response comes first, then the replay.
  t.true(back.frames.findIndex((f) => f.type === 'response' && f.method === 'subscribe') < back.frames.findIndex(isEvent));

  const [next] = await publish(admin, 'room', 12, 1);
  t.is((await back.next(isEvent)).data.id, next!.id);
  t.is(back.frames.filter(isEvent).length, 8);

  // Resuming from the newest message replays nothing.
  const current = await connect({ sub: 'current' });
  t.like((await current.subscribe('room', { since: next!.seq })).data, { topics: ['room'], resumed: true });
  const [after] = await publish(admin, 'room', 13, 1);
  t.is((await current.next(isEvent)).data.id, after!.id);
});

test('history gives every message its seq, so a client can load history and resume from it', withServer, {}, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'log' });
  const sent = await publish(admin, 'log', 0, 4);
  const page = await admin.call('history', { topicName: 'log' });
  t.deepEqual(page.messages.map((m) => [m.id, m.seq]), sent.map((m) => [m.id, m.seq]).reverse());
  const reader = await connect({ sub: 'r' });
  t.like((await reader.subscribe('log', { since: page.messages[1]!.seq })).data, { topics: ['log'], resumed: true });
  t.is((await reader.next(isEvent)).data.id, sent[3]!.id);
  await admin.subscribe('log');
  const [live] = await publish(admin, 'log', 4, 1);
  t.is((await reader.next(isEvent)).data.id, live!.id);
  t.is(reader.frames.filter(isEvent).length, 2);
  // A message reads the same in history as it did live.
  const event = await admin.next(isEvent);
  const [newest] = (await admin.call('history', { topicName: 'log', limit: 1 })).messages;
  t.deepEqual(newest, { id: live!.id, seq: live!.seq, sender: 'admin-1', message: { n: 4 }, createdAt: attributesOf(event)['createdAt'] });
});

test('a client that reconnects with since while messages keep coming misses none and sees none twice', withServer, {}, async (t, { connect, db }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'busy', history: 1000 });
  const writers = await Promise.all([connect({ sub: 'w1' }), connect({ sub: 'w2' })]);
  let reader = await connect({ sub: 'reader' });
  await reader.subscribe('busy');
  const writing = Promise.all(writers.map((w, i) => publish(w, 'busy', i * 1000, 200)));

  const received: EventFrame[] = [];
  let reconnects = 0;
  while (received.length < 400) {
    received.push(await reader.next(isEvent, 20_000));
    if (received.length % 37 === 0) {
      reader.close();
      reader = await connect({ sub: 'reader' });
      const response = await reader.subscribe('busy', { since: received.at(-1)!.seq });
      t.true(response.data.resumed);
      reconnects++;
    }
  }
  await writing;
  const { rows } = await db.query<{ id: string }>(`SELECT id::text AS id FROM rowcast.messages WHERE topic = 'busy' ORDER BY messages.id`);
  t.is(rows.length, 400);
  t.deepEqual(received.map((e) => e.data.id), rows.map((r) => r.id));
  t.deepEqual(received.map((e) => e.seq), [...received.map((e) => e.seq)].sort());
  t.true(reconnects >= 10);
});

test('a pruned message whose position is not written yet does not count as kept: since it is resumed: false', withServer, { sql: 'CREATE TABLE notes (id int PRIMARY KEY)' }, async (t, { connect, db }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'short', history: 3 });
  // Positions are not written back while this holds: every message stays "unrecorded" in memory.
  await db.query(`
    CREATE FUNCTION hold_positions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'positions held by the test'; END $$;
    CREATE TRIGGER hold_positions BEFORE UPDATE OF seq ON rowcast.messages FOR EACH ROW EXECUTE FUNCTION hold_positions();`);
  const [first] = await publish(admin, 'short', 0, 1);
  await publish(admin, 'short', 1, 5);
  // first and the two after it are pruned: a replay from first would miss two messages.
  const reader = await connect({ sub: 'r' });
  t.like((await reader.subscribe('short', { since: first!.seq })).data, { topics: ['short'], resumed: false });
});

test('since further back than a topic keeps is resumed: false and replays nothing', withServer, { sql: 'CREATE TABLE notes (id int PRIMARY KEY)' }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'short', history: 3 });
  const [first] = await publish(admin, 'short', 0, 1);
  await publish(admin, 'short', 1, 5);
  const reader = await connect({ sub: 'r' });
  t.like((await reader.subscribe('short', { since: first!.seq })).data, { topics: ['short'], resumed: false });
  const [marker] = await publish(admin, 'short', 6, 1);
  t.is((await reader.next(isEvent)).data.id, marker!.id);

  // A topic that never lost a message can always be resumed, from before its first message too.
  await admin.call('create-topic', { name: 'young', history: 10 });
  const young = await publish(admin, 'young', 0, 3);
  const other = await connect({ sub: 'o' });
  t.like((await other.subscribe('young', { since: '0000000000000000-00000000' })).data, { topics: ['young'], resumed: true });
  t.deepEqual((await other.events(3)).map((e) => e.data.id), young.map((m) => m.id));

  // Ephemeral topics keep nothing to replay: resumed: false.
  await admin.call('create-topic', { name: 'typing', history: 0 });
  t.like(await other.request('subscribe', { topicName: 'typing', since: first!.seq }), { ok: true, data: { resumed: false } });
  // With a table among the topics, the replay comes from the node's window of recent events.
  const mixed = await connect(ADMIN);
  t.like(await mixed.request('subscribe', { topicName: 'notes,young', since: first!.seq }), { ok: true, data: { resumed: true } });
  t.deepEqual((await mixed.events(3)).map((e) => e.data.id), young.map((m) => m.id));
});

test('replay checks like subscribe: unknown and unreadable topics, maxSubscribers', withServer, {}, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'staff', readers: 'admin' });
  await admin.call('create-topic', { name: 'duo', maxSubscribers: 1 });
  const [m] = await publish(admin, 'duo', 0, 1);
  const user = await connect({ sub: 'u' });
  t.like(await user.request('subscribe', { topicName: 'staff', since: m!.seq }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  t.like(await user.request('subscribe', { topicName: 'duo,nope', since: m!.seq }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  await admin.subscribe('duo', { since: m!.seq });
  t.like(await user.request('subscribe', { topicName: 'duo', since: m!.seq }), { ok: false, error: { code: 'TOPIC_FULL' } });
  t.false(user.frames.some(isEvent));
});

// The replay window holds the slot too; with one event it holds it no further back than the unwritten positions do.
const WINDOW_OF_ONE = { HISTORY_EVENTS: '1' };

test('after SIGKILL restarts, since replays every message in order, also those whose position was not yet written', withServerProcess, { sql: '' }, async (t, { db, start }) => {
  let server = await start(WINDOW_OF_ONE);
  const connect = async (claims: Record<string, unknown>) => LiveClient.connect(`${server.liveUrl}?token=${signToken(claims)}`);
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'durable' });
  const reader = await connect({ sub: 'r' });
  await reader.subscribe('durable');
  await publish(admin, 'durable', 0, 5);
  const seen = await reader.events(5);
  const since = seen[4]!.seq;
  reader.close();

  await waitFor('the positions of the first messages to be written', async () => {
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM rowcast.messages WHERE seq IS NULL`);
    return rows[0]!['n'] === 0;
  });
  // Hold the write-back of positions: the rows keep seq NULL, and the slot must not move past them.
  await db.query(`
    CREATE FUNCTION hold_positions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'positions held by the test'; END $$;
    CREATE TRIGGER hold_positions BEFORE UPDATE OF seq ON rowcast.messages FOR EACH ROW EXECUTE FUNCTION hold_positions();`);
  const missed = await publish(admin, 'durable', 5, 20);
  // Served from memory while the rows lack their positions.
  const early = await connect({ sub: 'r' });
  t.like(await early.subscribe('durable', { since }), { data: { resumed: true } });
  t.deepEqual((await early.events(20)).map((e) => e.data.id), missed.map((m) => m.id));
  const unwritten = await db.query(`SELECT count(*)::int AS n FROM rowcast.messages WHERE topic = 'durable' AND seq IS NULL`);
  t.is(unwritten.rows[0]!['n'], 20);
  // The slot is acknowledged (about once a second) up to the first unwritten message's commit, never past it.
  const firstSeq = missed[0]!.seq;
  if (firstSeq === null) throw new Error('new-message answered without a seq: the stream was down');
  const firstMissed = BigInt(`0x${firstSeq.slice(0, 16)}`);
  const confirmed = await waitFor('the slot to be acknowledged up to the held position', async () => {
    const { rows } = await db.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [db.name]);
    const lsn = parseLsn(rows[0]!['lsn'] as string);
    return lsn >= firstMissed ? lsn : null;
  });
  t.is(confirmed, firstMissed);
  await server.kill('SIGKILL');

  await db.query(`DROP TRIGGER hold_positions ON rowcast.messages`);
  // First the positions are written by the restarted stream's re-read, then read from the table.
  for (let round = 0; round < 2; round++) {
    server = await start(WINDOW_OF_ONE);
    const back = await connect({ sub: 'r' });
    t.like(await back.subscribe('durable', { since }), { data: { topics: ['durable'], resumed: true } });
    const replayed = await back.events(missed.length);
    t.deepEqual(replayed.map((e) => e.data.id), missed.map((m) => m.id));
    t.deepEqual(replayed.map((e) => e.seq), missed.map((m) => m.seq));
    const history = await back.call('history', { topicName: 'durable', limit: 100 });
    t.deepEqual(history.messages.map((m) => m.seq).slice(0, missed.length), missed.map((m) => m.seq).reverse());
    const [fresh] = await publish(back, 'durable', 100 + round, 1);
    t.is((await back.next(isEvent)).data.id, fresh!.id);
    t.is(back.frames.filter(isEvent).length, missed.length + 1);
    back.close();
    missed.push(fresh!);
    await server.kill('SIGKILL');
  }
});

test('a replay larger than half of what a socket may buffer is resumed: false', withServer, { env: { MAX_BACKPRESSURE_BYTES: '8192' } }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'bulky' });
  const [first] = await publish(admin, 'bulky', 0, 1);
  const text = 'x'.repeat(1000);
  for (let i = 0; i < 3; i++) await admin.call('new-message', { topicName: 'bulky', message: text });
  const near = await connect({ sub: 'near' });
  t.like(await near.subscribe('bulky', { since: first!.seq }), { data: { resumed: true } });
  t.is((await near.events(3)).length, 3);
  for (let i = 0; i < 3; i++) await admin.call('new-message', { topicName: 'bulky', message: text });
  const far = await connect({ sub: 'far' });
  t.like(await far.subscribe('bulky', { since: first!.seq }), { data: { resumed: false } });
  const [marker] = await publish(admin, 'bulky', 1, 1);
  t.is((await far.next(isEvent)).data.id, marker!.id);
});
