/**
 * Issues 6 and 16: arbitrary frames from several connections at once
 * (fuzz/frames.ts: garbage, deep nesting, large and numerous distinct
 * filters, bad claims through refresh-token, floods of slow requests) while
 * a well-behaved client receives row events. The server must answer every
 * id-bearing frame exactly once with a documented code (never INTERNAL),
 * close no connection, and the well-behaved client must miss nothing. The
 * filter-group and pending-request bounds are set low so that the fuzzer
 * reaches them.
 */
import test from 'ava';
import fc from 'fast-check';
import { FuzzRunner, fuzzFrame } from '../fuzz/frames.js';
import { signToken } from './helpers/tokens.js';
import { withServer } from './helpers/with-server.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 600);
const CONNECTIONS = 6;
const ROWS = 300;

test(`${RUNS} batches of arbitrary frames from ${CONNECTIONS} connections: one coded answer per request, nothing closed, nothing lost`, withServer, {
  sql: `CREATE TABLE notes (id int PRIMARY KEY, body text);
        INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`,
  env: {
    RATE_LIMIT_PER_SECOND: '1000000',
    RATE_LIMIT_BURST: '1000000',
    MAX_MESSAGE_BYTES: String(4 * 1024 * 1024),
    MAX_FILTER_GROUPS_PER_TOPIC: '3',
    MAX_PENDING_REQUESTS: '8',
  },
}, async (t, { liveUrl, connect, db }) => {
  const witness = await connect({ sub: 'witness' });
  await witness.subscribe('notes');
  const tokens = Array.from({ length: CONNECTIONS }, (_, i) => signToken(i === 0 ? { sub: 'fuzz-admin', role: 'admin' } : { sub: `fuzz-${i}`, groups: ['g'] }));
  const runner = new FuzzRunner(liveUrl, tokens, (claims) => signToken(claims));
  await runner.open();
  let writing = true;
  const writer = (async () => {
    for (let id = 1; id <= ROWS && writing; id++) await db.query(`INSERT INTO notes VALUES ($1, $2)`, [id, `row ${id}`]);
  })();
  const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  t.log(`seed ${seed} (FUZZ_SEED=${seed} to replay)`);
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(fuzzFrame(CONNECTIONS), { minLength: 1, maxLength: 60 }), async (frames) => {
        const problems = await runner.run(frames);
        if (problems.length > 0) {
          t.log(problems.slice(0, 5).map((p) => p.slice(0, 400)).join("\n"));
          throw new Error(problems.slice(0, 5).join("\n"));
        }
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
  const events = await witness.events(rows.length, 30_000);
  t.deepEqual(events.map((e) => Number(e.data.id)), rows.map((r) => r.id));
  t.is(witness.closeCode, null);
});
