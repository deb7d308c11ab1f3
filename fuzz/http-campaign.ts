/**
 * `npm run fuzz -- --http`: a long HTTP fuzzing campaign (fuzz/http.ts)
 * against a rowcast server in its own process (the built `dist/`), while a
 * well-behaved client receives the row events a writer inserts throughout.
 * Prints progress every 10 s, then the requests, problems and crashes, and
 * whether the witness received every row event in order.
 */
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { BENCH_SECRET, startBenchServer } from '../bench/lib/bench-server.js';
import { LiveClient } from '../test/helpers/live-client.js';
import { HttpFuzzRunner, fuzzHttpRequest, fuzzTokens, processAlive, type HttpFuzzProblem } from './http.js';

/** What to run. */
export interface HttpCampaignOptions {
  readonly requests: number;
  /** The first seed; each sample of {@link SAMPLE} batches takes the next. */
  readonly seed: number;
  /** Requests in flight at once (1 pins a crash on one request). */
  readonly sockets: number;
}

const BATCH = 25;
/** Batches drawn per seed: a seed replays `BATCH × SAMPLE` requests. */
const SAMPLE = 40;
const SETUP_SQL = `CREATE TABLE notes (id int PRIMARY KEY, body text);
  CREATE TABLE fuzz_rows (id int PRIMARY KEY, owner_id text, group_id text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;

/** Runs the campaign; `true` when nothing went wrong. */
export async function runHttpCampaign(options: HttpCampaignOptions): Promise<boolean> {
  const server = await startBenchServer(SETUP_SQL);
  const alive = () => processAlive(server.pid);
  const problems: SeededProblem[] = [];
  const runner = new HttpFuzzRunner({ port: server.port, tokens: fuzzTokens(BENCH_SECRET), sockets: options.sockets, alive });
  let rows = 0;
  let writing = true;
  let writer: Promise<void> = Promise.resolve();
  let progress: NodeJS.Timeout | undefined;
  try {
    const witness = await LiveClient.connect(`${server.urls[0]}?token=${jwt.sign({ sub: 'witness' }, BENCH_SECRET, { expiresIn: '12h' })}`);
    await witness.subscribe('notes');
    writer = (async () => {
      while (writing) {
        await server.db.query(`INSERT INTO notes VALUES ($1, $2)`, [++rows, `row ${rows}`]);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    console.log(`fuzzing HTTP with ${options.sockets} sockets, seed ${options.seed}, until ${options.requests.toLocaleString('en')} requests`);
    const started = Date.now();
    progress = setInterval(() => {
      const seconds = (Date.now() - started) / 1000;
      console.log(`  ${runner.sent.toLocaleString('en')} requests, ${Math.round(runner.sent / seconds)}/s, ${problems.length} problems`);
    }, 10_000);
    let seed = options.seed;
    sampling: while (runner.sent < options.requests) {
      for (const batch of fc.sample(fc.array(fuzzHttpRequest(), { minLength: BATCH, maxLength: BATCH }), { numRuns: SAMPLE, seed })) {
        const found = await runner.run(batch.slice(0, options.requests - runner.sent));
        problems.push(...found.map((problem) => ({ ...problem, seed })));
        if (runner.died || !alive() || runner.sent >= options.requests) break sampling;
      }
      seed++;
    }
    clearInterval(progress);
    writing = false;
    await writer;
    runner.close();
    const crashed = runner.died || !alive();
    let received = 0;
    if (crashed) {
      problems.push({ seed: null, request: null, what: 'witness: not checked, the server died' });
    } else {
      const events = await witness.events(rows, 60_000).catch((error: Error) => {
        problems.push({ seed: null, request: null, what: `witness: ${error.message}` });
        return [];
      });
      received = events.length;
      if (events.some((event, i) => Number(event.data.id) !== i + 1)) problems.push({ seed: null, request: null, what: 'witness: events out of order or missing' });
    }
    witness.close();
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `\n${runner.sent.toLocaleString('en')} requests in ${seconds.toFixed(0)} s (${Math.round(runner.sent / seconds)}/s); ` +
        `server ${crashed ? 'CRASHED' : 'alive'}; witness ${crashed ? 'not checked' : `received ${received} of ${rows} row events`}; ` +
        `${problems.length} problems; ${crashed ? 1 : 0} crashes`,
    );
    const { classes, statuses, notes } = runner.tally;
    console.log(`  outcomes: ${JSON.stringify(classes)}`);
    console.log(`  statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    for (const [note, { count, example }] of notes) console.log(`  note: ${note} (${count}×), e.g. ${example}`);
    for (const line of summarize(problems)) console.log(`  ${line}`);
    if (problems.length > 0) console.log(`(a seed alone: --seed S --requests ${BATCH * SAMPLE} --sockets 1)`);
    return problems.length === 0 && !crashed;
  } finally {
    clearInterval(progress);
    writing = false;
    await writer.catch(() => {});
    runner.close();
    await server.stop().catch(() => {});
  }
}

/** A problem and the seed of the sample it came from (`null`: not from one, such as the witness's). */
type SeededProblem = HttpFuzzProblem & { readonly seed: number | null };

/**
 * Problems grouped by what went wrong (request-less ones, such as a crash,
 * first), each group with its count and first request.
 */
function summarize(problems: readonly SeededProblem[]): string[] {
  const groups = new Map<string, { count: number; first: SeededProblem }>();
  for (const problem of problems) {
    const key = problem.what.replace(/correlation id [0-9a-f-]+/g, 'correlation id …').replace(/ \(the request before it.*$/s, '');
    const group = groups.get(key);
    if (group) group.count++;
    else groups.set(key, { count: 1, first: problem });
  }
  const ordered = [...groups].sort(([, a], [, b]) => Number(b.first.request === null) - Number(a.first.request === null) || b.count - a.count);
  return ordered.flatMap(([key, { count, first }]) => {
    if (first.request === null) return [`[${count}×] ${first.what}`];
    const before = / \(the request before it.*$/s.exec(first.what)?.[0] ?? '';
    return [`[${count}×] ${key}`, `    e.g. seed ${first.seed}: ${first.request}${before}`];
  });
}
