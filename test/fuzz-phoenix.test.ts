/**
 * Arbitrary Phoenix frames (fuzz/phoenix-frames.ts) from several connections
 * while a phoenix.js client receives row events: every reply is coded (never
 * INTERNAL), no connection is closed, every connection still answers in
 * order, and the well-behaved client misses nothing. Also: joins to
 * 10,000 topics on one connection are each answered, and the connection and
 * everyone else's stay up.
 */
import test from 'ava';
import fc from 'fast-check';
import { PhoenixFuzzRunner, phoenixFuzzFrame } from '../fuzz/phoenix-frames.js';
import { Collected, join, phoenixSocket } from './helpers/phoenix-client.js';
import { withServer } from './helpers/with-server.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);
const CONNECTIONS = 4;
const ROWS = 200;
const SCHEMA = `CREATE TABLE notes (id int PRIMARY KEY, body text);
                INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;

test(`${RUNS} batches of arbitrary Phoenix frames from ${CONNECTIONS} connections: coded replies, nothing closed, nothing lost`, withServer, {
  sql: SCHEMA,
  env: { RATE_LIMIT_PER_SECOND: '1000000', RATE_LIMIT_BURST: '1000000', MAX_PENDING_REQUESTS: '8' },
}, async (t, { server, token, connect, db }) => {
  const admin = await connect({ sub: 'fz-admin', role: 'admin' });
  await admin.call('create-topic', { name: 'fz-chat', history: 10, presence: true });
  const witness = phoenixSocket(server.port, token({ sub: 'witness' }));
  t.teardown(() => witness.disconnect());
  const notes = witness.channel('table:notes', {});
  const seen = new Collected(notes, ['create']);
  await join(notes);
  const urls = Array.from({ length: CONNECTIONS }, (_, i) => `ws://127.0.0.1:${server.port}/socket/websocket?vsn=2.0.0&token=${token(i === 0 ? { sub: 'fz-0', role: 'admin' } : { sub: `fz-${i}` })}`);
  const runner = new PhoenixFuzzRunner(urls);
  await runner.open();
  let writing = true;
  const writer = (async () => {
    for (let id = 1; id <= ROWS && writing; id++) await db.query(`INSERT INTO notes VALUES ($1, $2)`, [id, `row ${id}`]);
  })();
  const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  t.log(`seed ${seed} (FUZZ_SEED=${seed} to replay)`);
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(phoenixFuzzFrame(CONNECTIONS), { minLength: 1, maxLength: 40 }), async (frames) => {
        const problems = await runner.run(frames);
        if (problems.length > 0) throw new Error(problems.slice(0, 5).join('\n'));
      }),
      { numRuns: RUNS, seed, endOnFailure: true },
    );
  } finally {
    writing = false;
    await writer;
    runner.close();
  }
  t.log(`${runner.sent} frames sent`);
  const { rows } = await db.query<{ id: number }>(`SELECT id FROM notes ORDER BY id`);
  const received = await seen.atLeast(rows.length, 20_000);
  t.deepEqual(received.map((e) => Number(e.payload.id)), rows.map((r) => r.id));
});

test('joins to 10,000 topics on one Phoenix connection are each answered (unknown ones TOPIC_NOT_FOUND); the connection and others stay up', withServer, {
  sql: SCHEMA,
  env: { RATE_LIMIT_PER_SECOND: '1000000', RATE_LIMIT_BURST: '1000000', MAX_PENDING_REQUESTS: '20000' },
}, async (t, { server, token, db }) => {
  const runner = new PhoenixFuzzRunner([`ws://127.0.0.1:${server.port}/socket/websocket?vsn=2.0.0&token=${token({ sub: 'many' })}`]);
  await runner.open();
  t.teardown(() => runner.close());
  const frames = Array.from({ length: 10_000 }, (_, i) => ({ connection: 0, kind: 'message' as const, message: [`${i}`, `${i}`, i % 2 === 0 ? 'table:notes' : `topic:t${i}`, 'phx_join', {}] }));
  t.deepEqual(await runner.run(frames, 120_000), []);
  const outcomes = runner.outcomes();
  t.log(JSON.stringify(Object.fromEntries(outcomes)));
  // Every join was answered (and the barrier), most with TOPIC_NOT_FOUND.
  t.is([...outcomes.values()].reduce((a, b) => a + b, 0), 10_001);
  t.true((outcomes.get('TOPIC_NOT_FOUND') ?? 0) >= 5_000);
  const other = phoenixSocket(server.port, token({ sub: 'other' }));
  t.teardown(() => other.disconnect());
  const notes = other.channel('table:notes', {});
  const seen = new Collected(notes, ['create']);
  await join(notes);
  await db.query(`INSERT INTO notes VALUES (1, 'after')`);
  t.like((await seen.atLeast(1))[0]!.payload, { id: '1' });
});
