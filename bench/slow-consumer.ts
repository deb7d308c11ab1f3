/**
 * Slow-consumer benchmark (issue 6): what stalled clients cost a fast one on
 * the same topic. A writer commits rows (with their commit-side wall time) at
 * a steady rate; fast clients measure commit-to-receive latency, first
 * alone, then while clients that stop reading keep arriving (each one fills
 * its buffer, stalls, and is closed with 1013, and a new one takes its place).
 * The ratio of the two phases is the number: the ceiling is the fast client
 * alone in the same run.
 *
 *   npm run bench:slow                    # 10 s per phase
 *   npm run bench:slow -- --quick         # 2 s per phase (or --seconds N)
 *
 * Results go to bench/results/slow-consumer.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { BENCH_SECRET, benchStatus, startBenchServer } from './lib/bench-server.js';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, seconds: { type: 'string' }, rate: { type: 'string' }, fast: { type: 'string' }, stalled: { type: 'string' } },
});
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 10));
const RATE = Number(args.rate ?? 200);
const FAST = Number(args.fast ?? 4);
const STALLED = Number(args.stalled ?? 3);
const PAD = 'x'.repeat(8192);
const token = jwt.sign({ sub: 'bench' }, BENCH_SECRET, { expiresIn: '1h' });

const server = await startBenchServer(`CREATE TABLE ticks (id bigserial PRIMARY KEY, sent_at double precision, pad text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('ticks', 'public');`);

function open(): Promise<WebSocket> {
  const socket = new WebSocket(`${server.urls[0]}?token=${token}`);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('open', () => {
      socket.send(JSON.stringify({ id: 1, method: 'subscribe', attributes: { topicName: 'ticks' } }));
      socket.on('message', function first(data) {
        if (JSON.parse(data.toString()).type !== 'response') return;
        socket.off('message', first);
        resolve(socket);
      });
    });
  });
}

let histogram: RecordableHistogram = createHistogram();
const fast = await Promise.all(Array.from({ length: FAST }, () => open()));
for (const socket of fast) {
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    if (frame.type === 'event') histogram.record(Math.max(1, Math.round((Date.now() - frame.data.attributes.sent_at) * 1000)));
  });
}

let writing = true;
const writer = (async () => {
  const started = Date.now();
  for (let n = 0; writing; n++) {
    await server.db.query(`INSERT INTO ticks (sent_at, pad) VALUES ($1, $2)`, [Date.now(), PAD]);
    const ahead = started + ((n + 1) / RATE) * 1000 - Date.now();
    if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, ahead));
  }
})();

const summary = (h: RecordableHistogram) => ({
  samples: h.count,
  p50ms: h.percentile(50) / 1000,
  p99ms: h.percentile(99) / 1000,
  maxMs: h.max / 1000,
});

console.log(`phase 1: ${FAST} fast clients alone, ${SECONDS} s at ${RATE} rows/s`);
await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
const alone = summary(histogram);
histogram = createHistogram();

console.log(`phase 2: the same with ${STALLED} clients that stop reading, replaced as they are closed`);
let closed = 0;
let phaseTwo = true;
const stall = async (): Promise<void> => {
  while (phaseTwo) {
    const socket = await open();
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    closed++;
  }
};
const stallers = Array.from({ length: STALLED }, () => stall());
await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
phaseTwo = false;
const withStalled = summary(histogram);
writing = false;
await writer;

const status = await benchStatus<{ slowConsumersClosed: number }>(server.port);
const report = {
  command: `npm run bench:slow -- --seconds ${SECONDS} --rate ${RATE} --fast ${FAST} --stalled ${STALLED}`,
  at: new Date().toISOString(),
  alone,
  withStalled,
  stalledClientsClosed: status.slowConsumersClosed,
  p50Ratio: withStalled.p50ms / alone.p50ms,
  p99Ratio: withStalled.p99ms / alone.p99ms,
};
console.log(`\n| phase | samples | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|`);
for (const [name, s] of [[`${FAST} fast clients alone`, alone], [`with ${STALLED} stalled clients (${status.slowConsumersClosed} closed with 1013)`, withStalled]] as const) {
  console.log(`| ${name} | ${s.samples} | ${s.p50ms.toFixed(2)} | ${s.p99ms.toFixed(2)} | ${s.maxMs.toFixed(1)} |`);
}
console.log(`\np50 ratio ${report.p50Ratio.toFixed(2)}, p99 ratio ${report.p99Ratio.toFixed(2)} (1.0 = no added latency)`);
mkdirSync(path.resolve('bench/results'), { recursive: true });
writeFileSync(path.resolve('bench/results/slow-consumer.json'), JSON.stringify(report, null, 2));
for (const socket of fast) socket.close();
void Promise.allSettled(stallers);
await server.stop();
process.exit(0);
