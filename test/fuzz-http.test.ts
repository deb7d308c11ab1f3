/**
 * The HTTP routes under fuzzing (fuzz/http.ts): arbitrary requests at every
 * route and at none — valid and malformed HTTP, hostile paths, every kind of
 * token, bodies from the route's own JSON to deep nesting and binary — while a
 * well-behaved client receives row events. Every well-formed request must get
 * exactly one answer; an error must be `{"error":{"code","message"}}` with a
 * known code (never INTERNAL); no 5xx but /health's 503; the witness must miss
 * nothing.
 */
import { writeSync } from 'node:fs';
import test from 'ava';
import fc from 'fast-check';
import { HttpFuzzRunner, formatProblem, fuzzHttpRequest, fuzzTokens } from '../fuzz/http.js';
import { SUCCESS_BODY, type RouteFamily } from '../fuzz/http-rules.js';
import { TEST_SECRET, withServer } from './helpers/with-server.js';

const REQUESTS = Number(process.env['FUZZ_HTTP_REQUESTS'] ?? 3000);
const BATCH = 25;
const ROWS = 200;
const FAMILIES = Object.keys(SUCCESS_BODY) as RouteFamily[];

test(`${REQUESTS} arbitrary HTTP requests: one coded answer to each well-formed one, no 5xx, every route reached, nothing lost`, withServer, {
  sql: `CREATE TABLE notes (id int PRIMARY KEY, body text);
        CREATE TABLE fuzz_rows (id int PRIMARY KEY, owner_id text, group_id text);
        INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`,
}, async (t, { server, connect, db }) => {
  const witness = await connect({ sub: 'witness' });
  await witness.subscribe('notes');
  const runner = new HttpFuzzRunner({ port: server.port, tokens: fuzzTokens(TEST_SECRET), sockets: 3 });
  const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  t.log(`seed ${seed} (FUZZ_SEED=${seed} to replay)`);
  // The server runs in this process: an exception that escapes a uWS handler ends it before any
  // assertion can run. Name the requests in flight on the way down.
  const onCrash = (error: Error) => {
    const suspects = runner.inFlight().join('\n  ');
    writeSync(2, `\nfuzz-http (seed ${seed}): the server threw ${error?.stack ?? error}\none of these requests in flight caused it:\n  ${suspects}\n`);
  };
  process.prependListener('uncaughtException', onCrash);
  let writing = true;
  const writer = (async () => {
    for (let id = 1; id <= ROWS && writing; id++) await db.query(`INSERT INTO notes VALUES ($1, $2)`, [id, `row ${id}`]);
  })();
  let problems: string[] = [];
  try {
    const details = await fc.check(
      fc.asyncProperty(fc.array(fuzzHttpRequest(), { minLength: BATCH, maxLength: BATCH }), async (requests) => {
        problems = (await runner.run(requests)).map(formatProblem);
        return problems.length === 0;
      }),
      { numRuns: Math.ceil(REQUESTS / BATCH), seed, endOnFailure: true },
    );
    if (details.failed && problems.length === 0) throw details.errorInstance;
  } finally {
    writing = false;
    await writer;
    runner.close();
    process.removeListener('uncaughtException', onCrash);
  }
  t.deepEqual(problems, [], `seed ${seed}: a batch of requests found problems (FUZZ_SEED=${seed} to replay)`);
  const { classes, statuses } = runner.tally;
  t.log(`${runner.sent} requests; outcomes ${JSON.stringify(classes)}; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  for (const [note, { count, example }] of runner.tally.notes) t.log(`note: ${note} (${count}×), e.g. ${example}`);
  for (const family of FAMILIES) t.true((runner.tally.families.get(family) ?? 0) > 0, `no request reached ${family}`);
  const { rows } = await db.query<{ id: number }>(`SELECT id FROM notes ORDER BY id`);
  const events = await witness.events(rows.length, 30_000);
  t.deepEqual(events.map((e) => Number(e.data.id)), rows.map((r) => r.id));
  t.is(witness.closeCode, null);
});
