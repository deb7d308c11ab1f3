/**
 * Arbitrary Supabase Realtime frames (fuzz/supabase-frames.ts) from several
 * connections, vsn 1.0.0 and 2.0.0, while two `@supabase/realtime-js`
 * clients (one of each vsn) receive row changes: every frame gets the door's
 * answer (a coded reply, never INTERNAL; INVALID_MESSAGE on topic phoenix
 * for what cannot be read; silence only where Phoenix is silent) or a close
 * with the code it deserves, the server stays up, and the well-behaved
 * clients get every row, in order, after every batch. Also: joins to 10,000
 * channels on one connection are each answered, and the connection and
 * everyone else's stay up.
 */
import test from 'ava';
import fc from 'fast-check';
import { problemKind, SupabaseFuzzRunner, supabaseFuzzFrame, type Vsn } from '../fuzz/supabase-frames.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 600);
const VSNS: readonly Vsn[] = ['2.0.0', '1.0.0', '2.0.0', '1.0.0'];
const MAX_MESSAGE_BYTES = 65_536;
const MAX_FRAME_DEPTH = 32;
const SCHEMA = `CREATE TABLE notes (id int PRIMARY KEY, body text);
                CREATE TABLE secret (id int PRIMARY KEY, body text);
                INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;
const ENV = {
  RATE_LIMIT_PER_SECOND: '1000000',
  RATE_LIMIT_BURST: '1000000',
  MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
  MAX_FRAME_DEPTH: String(MAX_FRAME_DEPTH),
};

type Change = { eventType: string; new: Record<string, unknown> };

/** A realtime-js client on `vsn` whose channel takes every insert of `notes`. */
async function bystander(port: number, apikey: string, vsn: Vsn) {
  const client = realtimeClient(port, apikey, vsn);
  const inserts = new Inbox<Change>();
  const channel = client.channel('fz-bystander').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, inserts.add);
  await subscribed(channel);
  return { client, inserts };
}

test(`${RUNS} batches of arbitrary Supabase frames from ${VSNS.length} connections (vsn 1.0.0 and 2.0.0): each answered as the door must, the server up, realtime-js clients miss nothing`, withServer, {
  sql: SCHEMA,
  env: { ...ENV, MAX_PENDING_REQUESTS: '32' },
}, async (t, { server, token, connect, db }) => {
  const admin = await connect({ sub: 'fz-admin', role: 'admin' });
  await admin.call('create-topic', { name: 'fz-chat', history: 10, writers: 'authenticated', presence: true });
  await admin.call('create-topic', { name: 'fz-admin', history: 0, readers: 'authenticated', writers: 'admin' });
  const watchers = await Promise.all((['2.0.0', '1.0.0'] as const).map((vsn) => bystander(server.port, token({ sub: `witness-${vsn}` }), vsn)));
  t.teardown(() => watchers.forEach((w) => void w.client.disconnect()));
  const now = Math.floor(Date.now() / 1000);
  const tokens = [
    token({ sub: 'fz-1' }),
    token({ sub: 'fz-2' }),
    token({ sub: 'fz-admin', role: 'admin' }),
    token({ sub: 'fz-1', exp: now - 60 }),
    token({ sub: 'fz-1', exp: now + 3 }),
    token({ exp: now + 3600 }),
    token({ sub: 'fz-1', groups: [{}] }),
  ];
  const urls = VSNS.map((vsn, i) => ({
    vsn,
    url: `ws://127.0.0.1:${server.port}/realtime/v1/websocket?vsn=${vsn}&apikey=${token(i === 0 ? { sub: 'fz-0', role: 'admin' } : { sub: `fz-${i}` })}`,
  }));
  const runner = new SupabaseFuzzRunner(urls, { maxMessageBytes: MAX_MESSAGE_BYTES, maxFrameDepth: MAX_FRAME_DEPTH });
  await runner.open();
  t.teardown(() => runner.close());
  const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  t.log(`seed ${seed} (FUZZ_SEED=${seed} to replay)`);
  let rows = 0;
  const started = Date.now();
  // Problems are collected, not fatal: one run names every kind of problem it meets (the first of each
  // in full, and how often). A row a well-behaved client misses, or a frame never answered, stops the run.
  const problems = new Map<string, { count: number; first: string; batch: number }>();
  let batch = 0;
  let stop = '';
  const result = await fc.check(
    fc.asyncProperty(fc.array(supabaseFuzzFrame(VSNS.length, tokens), { minLength: 1, maxLength: 30 }), async (frames) => {
      batch++;
      // A row per batch: each well-behaved client has it by the time the batch is judged.
      const id = ++rows;
      await db.query(`INSERT INTO notes VALUES ($1, $2)`, [id, `row ${id}`]);
      const found = await runner.run(frames);
      for (const problem of found) {
        const kind = problemKind(problem);
        const seen = problems.get(kind) ?? { count: 0, first: problem, batch };
        seen.count++;
        problems.set(kind, seen);
      }
      if (found.some((problem) => problemKind(problem) === 'HANG')) stop = 'a frame was never answered';
      for (const { inserts } of watchers) await inserts.atLeast(id, 15_000);
      return stop === '';
    }),
    { numRuns: RUNS, seed, endOnFailure: true },
  );
  const sorted = (map: Map<string, number>) => JSON.stringify(Object.fromEntries([...map].sort((a, b) => b[1] - a[1])));
  t.log(`${runner.sent} frames in ${((Date.now() - started) / 1000).toFixed(1)} s; ${sorted(runner.kinds)}`);
  t.log(`answers: ${sorted(runner.outcomes)}; in bursts: ${sorted(runner.burstOutcomes)}`);
  // Every well-behaved client got every row, once, in order.
  for (const { inserts } of watchers) t.deepEqual(inserts.items.map((c) => [c.eventType, c.new['id']]), Array.from({ length: rows }, (_, i) => ['INSERT', i + 1]));
  if (problems.size > 0 || result.failed) {
    const error = result.failed && stop === '' ? `${result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance)}\n` : '';
    const kinds = [...problems].map(([kind, { count, first, batch: at }]) => `- ${kind}: ${count}× (first in batch ${at}):\n    ${first}`);
    t.fail(`seed ${seed}, ${batch} batches${stop ? `, stopped: ${stop}` : ''}: ${problems.size} kinds of problems\n${error}${kinds.join('\n')}`);
  }
  // The campaign reached what it is about (not only frames refused unread).
  t.true((runner.kinds.get('read') ?? 0) > (runner.kinds.get('unreadable') ?? 0) / 2);
  t.true((runner.outcomes.get('ok') ?? 0) > 0);
  // The server still serves a newcomer.
  const late = await bystander(server.port, token({ sub: 'late' }), '2.0.0');
  t.teardown(() => void late.client.disconnect());
  await db.query(`INSERT INTO notes VALUES ($1, 'late')`, [++rows]);
  t.like((await late.inserts.atLeast(1))[0]!.new, { id: rows });
});

test('joins to 10,000 channels on one Supabase connection are each answered (ok or a coded error); the connection, the server and a realtime-js client stay up', withServer, {
  sql: SCHEMA,
  // Limits high enough that the joins really happen: 10,000 channels (and their sessions) on one socket.
  env: { ...ENV, MAX_PENDING_REQUESTS: '20000', MAX_SUBSCRIPTIONS: '30000', MAX_SUBSCRIPTIONS_PER_USER: '30000' },
}, async (t, { server, token, db }) => {
  const watcher = await bystander(server.port, token({ sub: 'witness' }), '2.0.0');
  t.teardown(() => void watcher.client.disconnect());
  const runner = new SupabaseFuzzRunner([{ vsn: '2.0.0', url: `ws://127.0.0.1:${server.port}/realtime/v1/websocket?vsn=2.0.0&apikey=${token({ sub: 'many' })}` }], {
    maxMessageBytes: MAX_MESSAGE_BYTES,
    maxFrameDepth: MAX_FRAME_DEPTH,
  });
  await runner.open();
  t.teardown(() => runner.close());
  // Plain channels, channels with a binding of notes, and with a binding that cannot be served.
  const config = (i: number) => (i % 3 === 0 ? {} : i % 3 === 1 ? { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'notes' }] } : { postgres_changes: [{ event: '*', schema: 'public', table: 'nope' }] });
  const messages = Array.from({ length: 10_000 }, (_, i) => ({ topic: `realtime:many-${i}`, event: 'phx_join', payload: { config: config(i) } }));
  await db.query(`INSERT INTO notes VALUES (1, 'before')`);
  t.deepEqual(await runner.run([{ connection: 0, kind: 'burst', messages }], 120_000), []);
  const outcomes = runner.burstOutcomes;
  t.log(JSON.stringify(Object.fromEntries(outcomes)));
  // Every join answered exactly once (the runner checked each ref), ok or with a coded error.
  t.is([...outcomes.values()].reduce((a, b) => a + b, 0), 10_000);
  t.true((outcomes.get('ok') ?? 0) > 0);
  // The connection still answers in order, and the others still get their rows.
  t.deepEqual(await runner.run([{ connection: 0, kind: 'burst', messages: [{ topic: 'realtime:after', event: 'phx_join', payload: {} }] }]), []);
  await db.query(`INSERT INTO notes VALUES (2, 'after')`);
  t.deepEqual((await watcher.inserts.atLeast(2)).map((c) => c.new['id']), [1, 2]);
  // Each channel whose binding of notes was served (the others got a system error, LIMIT_EXCEEDED past
  // MAX_FILTER_GROUPS_PER_CONNECTION) got the row, once; no other channel did.
  const systems = runner.received(0).filter((r) => r.event === 'system' && r.payload?.extension === 'postgres_changes');
  // One system message per channel with a binding (6,666 of them), and only the notes binding can be served.
  t.is(new Set(systems.map((r) => r.topic)).size, 6_666);
  t.is(systems.length, 6_666);
  const served = systems.filter((r) => r.payload?.status === 'ok').map((r) => r.topic);
  t.log(`${served.length} channels subscribed to notes`);
  t.true(served.length > 0);
  t.true(served.every((topic) => Number(topic.slice('realtime:many-'.length)) % 3 === 1));
  const changes = () => runner.received(0).filter((r) => r.event === 'postgres_changes' && r.payload?.data?.record?.id === 2);
  await waitFor(`row 2 on each of the ${served.length} channels subscribed to notes`, () => changes().length >= served.length, 30_000);
  t.deepEqual(changes().map((r) => r.topic).sort(), [...served].sort());
  const other = await bystander(server.port, token({ sub: 'other' }), '1.0.0');
  t.teardown(() => void other.client.disconnect());
  await db.query(`INSERT INTO notes VALUES (3, 'later')`);
  t.like((await other.inserts.atLeast(1))[0]!.new, { id: 3 });
});
