/**
 * `npm run fuzz`: a long fuzzing campaign against a rowcast server in its own
 * process (the built `dist/`), with the frames and checks of fuzz/frames.ts,
 * while a well-behaved client receives row events. With `--http`, the HTTP
 * routes instead (fuzz/http-campaign.ts).
 *
 *   npm run fuzz                          # one million frames
 *   npm run fuzz -- --frames 50000 --seed 42
 *   npm run fuzz -- --http                # 100,000 HTTP requests
 *   npm run fuzz -- --http --requests 20000 --seed 42 --sockets 4
 *
 * Prints progress, then the count of frames (or requests), problems and
 * crashes. Exits 1 on any problem.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { BENCH_SECRET, startBenchServer } from '../bench/lib/bench-server.js';
import { LiveClient } from '../test/helpers/live-client.js';
import { FuzzRunner, fuzzFrame } from './frames.js';

const { values: args } = parseArgs({
  options: {
    frames: { type: 'string' },
    connections: { type: 'string' },
    seed: { type: 'string' },
    http: { type: 'boolean' },
    requests: { type: 'string' },
    sockets: { type: 'string' },
  },
});
if (args.http) {
  const { runHttpCampaign } = await import('./http-campaign.js');
  const ok = await runHttpCampaign({
    requests: Number(args.requests ?? 100_000),
    seed: Number(args.seed ?? Date.now() % 2 ** 31),
    sockets: Number(args.sockets ?? 4),
  });
  process.exit(ok ? 0 : 1);
}
const target = Number(args.frames ?? 1_000_000);
const connections = Number(args.connections ?? 8);
let seed = Number(args.seed ?? Date.now() % 2 ** 31);
const sign = (claims: object) => jwt.sign(claims, BENCH_SECRET, { expiresIn: '12h' });

// The campaign is about what frames do, not how many: no rate limit, frames up to 4 MiB.
process.env['RATE_LIMIT_PER_SECOND'] = '1000000';
process.env['RATE_LIMIT_BURST'] = '1000000';
process.env['MAX_MESSAGE_BYTES'] = String(4 * 1024 * 1024);
// Low enough that the campaign's filters and floods reach them (issue 16).
process.env['MAX_FILTER_GROUPS_PER_TOPIC'] ??= '3';
process.env['MAX_PENDING_REQUESTS'] ??= '8';
const server = await startBenchServer(`CREATE TABLE notes (id int PRIMARY KEY, body text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`);
const alive = () => {
  try {
    process.kill(server.pid, 0);
    return true;
  } catch {
    return false;
  }
};
const problems: string[] = [];
let rows = 0;
try {
  const witness = await LiveClient.connect(`${server.urls[0]}?token=${sign({ sub: 'witness' })}`);
  await witness.subscribe('notes');
  const runner = new FuzzRunner(
    server.urls[1]!,
    Array.from({ length: connections }, (_, i) => sign(i === 0 ? { sub: 'fuzz-admin', role: 'admin' } : { sub: `fuzz-${i}`, groups: ['g'] })),
    (claims) => jwt.sign(claims, BENCH_SECRET),
  );
  await runner.open();
  let writing = true;
  const writer = (async () => {
    while (writing) {
      await server.db.query(`INSERT INTO notes VALUES ($1, $2)`, [++rows, `row ${rows}`]);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  console.log(`fuzzing with ${connections} connections, seed ${seed}, until ${target.toLocaleString('en')} frames`);
  const started = Date.now();
  let reported = started;
  while (runner.sent < target && alive()) {
    for (const frames of fc.sample(fc.array(fuzzFrame(connections), { minLength: 1, maxLength: 60 }), { numRuns: 100, seed: seed++ })) {
      const found = await runner.run(frames);
      for (const problem of found) problems.push(`seed ${seed - 1}: ${problem}`);
      if (!alive()) break;
    }
    if (Date.now() - reported > 10_000) {
      reported = Date.now();
      const seconds = (reported - started) / 1000;
      console.log(`  ${runner.sent.toLocaleString('en')} frames, ${Math.round(runner.sent / seconds)}/s, ${problems.length} problems`);
    }
  }
  writing = false;
  await writer;
  runner.close();
  const events = await witness.events(rows, 60_000).catch((error: Error) => {
    problems.push(`witness: ${error.message}`);
    return [];
  });
  if (events.some((event, i) => Number(event.data.id) !== i + 1)) problems.push('witness: events out of order or missing');
  console.log(
    `\n${runner.sent.toLocaleString('en')} frames in ${((Date.now() - started) / 1000).toFixed(0)} s; ` +
      `server ${alive() ? 'alive' : 'CRASHED'}; witness received ${events.length} of ${rows} row events; ${problems.length} problems`,
  );
  for (const problem of problems.slice(0, 20)) console.log(`  ${problem}`);
} finally {
  const crashed = !alive();
  await server.stop().catch(() => {});
  process.exit(problems.length === 0 && !crashed ? 0 : 1);
}
