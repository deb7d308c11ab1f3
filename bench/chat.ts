/**
 * Chat benchmark (issue 4): `new-message` throughput on a persisted topic
 * (history 100,000: stored in rowcast.messages, delivered through the
 * replication stream) and on an ephemeral one (history 0: straight to the
 * event log), each with 10 subscribers, and the publish-to-receive latency
 * seen by a subscriber.
 *
 * Then the same load on an ephemeral topic of a library-mode server
 * (bench/hook-host.ts: `createRowcast` with an `onMessage` hook) twice: with
 * a hook that answers at once, and with one that waits `--hook-ms` (1 ms)
 * per message. With 50 requests in flight per publisher, hooks run
 * concurrently would let a publisher go past the 1,000 messages/s a 1 ms hook
 * run one at a time per connection allows; the server counts how many of a
 * connection's hooks were ever in flight at once.
 *
 *   npm run bench:chat                 # 10 s per phase
 *   npm run bench:chat -- --quick      # 2 s per phase
 *   npx tsx bench/chat.ts --hook-ms 10 --hook-only   # only the hook phases, a 10 ms hook
 *   npx tsx bench/chat.ts --hook-ms 0                # no hook phases
 *
 * Publishers and subscribers are separate processes (bench/chat-worker.ts).
 * After each phase the publishers stop and wait for their answers, and every
 * acknowledged message must have reached the subscriber (else: lost).
 * Results go to bench/results/chat.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { BENCH_SECRET, cpuMs, startBenchServer } from './lib/bench-server.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    publishers: { type: 'string' },
    window: { type: 'string' },
    'hook-ms': { type: 'string' },
    'hook-only': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 10));
const PUBLISHERS = Number(args.publishers ?? 10);
const WINDOW = Number(args.window ?? 50);
const SUBSCRIBERS = 10;
/** How long the library-mode server's onMessage hook waits per message; 0: no hook phases. */
const HOOK_MS = Number(args['hook-ms'] ?? 1);
/** How long a phase may take to answer its last requests and deliver their messages. */
const DRAIN_MS = 10_000;

interface Report {
  samples: number[];
  received: number;
  acknowledged: number;
  failed: number;
  cpu: NodeJS.CpuUsage;
}

/** What bench/hook-host.ts counts (since it started): onMessage calls, its waits, and the most waits in flight at once. */
interface HookStats {
  calls: number;
  waits: number;
  waitMs: number;
  inFlight: number;
  maxInFlight: number;
  maxInFlightPerConnection: number;
}

function start(job: Record<string, unknown>, onReport: (report: Report) => void, onDrained?: () => void): Promise<ChildProcess> {
  const worker = fork(path.resolve('bench/chat-worker.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    worker.on('message', (message: { type: string; message?: string } & Report) => {
      if (message.type === 'ready') resolve(worker);
      if (message.type === 'error') reject(new Error(message.message));
      if (message.type === 'report' || message.type === 'drained') onReport(message);
      if (message.type === 'drained') onDrained?.();
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function createTopic(url: string, name: string, history: number): Promise<void> {
  const token = jwt.sign({ sub: 'bench-admin', role: 'admin' }, BENCH_SECRET, { algorithm: 'HS256', expiresIn: '12h' });
  const socket = new WebSocket(`${url}?token=${token}`);
  await new Promise<void>((resolve, reject) => {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'session') socket.send(JSON.stringify({ id: 1, method: 'create-topic', attributes: { name, history, readers: 'authenticated', writers: 'authenticated' } }));
      if (frame.type === 'response') (frame.ok ? resolve() : reject(new Error(JSON.stringify(frame.error))));
    });
  });
  socket.close();
}

/**
 * One phase: subscribers, then publishers at saturation; 1 s of warm-up, the
 * measured window, then the publishers drain and every acknowledged message
 * must reach the subscriber. `hookStats` reads the hook host's counters.
 */
async function scenario(url: string, serverPid: number, topic: string, hookStats?: () => HookStats | null) {
  const histogram = createHistogram();
  let received = 0;
  let acknowledged = 0;
  let failed = 0;
  let drained = false;
  const subscribers = await start({ role: 'subscribe', url, secret: BENCH_SECRET, topic, count: SUBSCRIBERS, window: 0 }, (r) => {
    for (const sample of r.samples) histogram.record(sample);
    received = r.received;
  });
  const publishers = await start(
    { role: 'publish', url, secret: BENCH_SECRET, topic, count: PUBLISHERS, window: WINDOW },
    (r) => {
      acknowledged = r.acknowledged;
      failed = r.failed;
    },
    () => (drained = true),
  );
  publishers.send({ type: 'start' });
  await sleep(1000);
  histogram.reset();
  const [receivedStart, cpuStart, hooksStart, startedAt] = [received, cpuMs(serverPid), hookStats?.() ?? null, Date.now()];
  await sleep(SECONDS * 1000);
  const [receivedEnd, cpuEnd, hooksEnd, elapsed] = [received, cpuMs(serverPid), hookStats?.() ?? null, (Date.now() - startedAt) / 1000];
  // Every request answered, then every acknowledged message delivered (the subscriber reports every 250 ms).
  publishers.send({ type: 'drain' });
  const deadline = Date.now() + DRAIN_MS;
  while (!drained && Date.now() < deadline) await sleep(50);
  while (drained && received < acknowledged && Date.now() < deadline) await sleep(50);
  for (const worker of [publishers, subscribers]) worker.send({ type: 'stop' });
  await Promise.all([publishers, subscribers].map((w) => new Promise((resolve) => w.once('exit', resolve))));
  const messagesPerSecond = (receivedEnd - receivedStart) / elapsed;
  const hook =
    hooksStart && hooksEnd && hooksEnd.waits > hooksStart.waits
      ? {
          /** Mean time one hook call waited (the 1 ms timer, as the event loop fired it). */
          meanHookMs: (hooksEnd.waitMs - hooksStart.waitMs) / (hooksEnd.waits - hooksStart.waits),
          /** Hooks waiting at once on average over the window (Little's law: the time spent waiting per unit of time). */
          meanInFlight: (hooksEnd.waitMs - hooksStart.waitMs) / (elapsed * 1000),
          /** The most hooks of one connection ever waiting at once (warm-up and drain included): 1 means serialized. */
          maxInFlightPerConnection: hooksEnd.maxInFlightPerConnection,
          maxInFlight: hooksEnd.maxInFlight,
        }
      : null;
  return {
    topic,
    messagesPerSecond,
    deliveriesPerSecond: ((receivedEnd - receivedStart) * SUBSCRIBERS) / elapsed,
    /** Per publisher connection. */
    messagesPerSecondPerPublisher: messagesPerSecond / PUBLISHERS,
    serverCpuPercent: ((cpuEnd - cpuStart) / (elapsed * 1000)) * 100,
    acknowledged,
    failed,
    /** Whether requests were still unanswered when the drain gave up. */
    unanswered: !drained,
    /** Acknowledged messages the subscriber never received. */
    lost: Math.max(0, acknowledged - received),
    p50Ms: histogram.percentile(50) / 1000,
    p99Ms: histogram.percentile(99) / 1000,
    maxMs: histogram.max / 1000,
    hook,
  };
}

type Result = Awaited<ReturnType<typeof scenario>>;

/** The hook host's counters, or null before it wrote them. */
function readHookStats(file: string): HookStats | null {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as HookStats) : null;
}

/**
 * The hook phases, on a library-mode server (bench/hook-host.ts) with two
 * ephemeral topics: one whose onMessage hook answers at once (the control,
 * `withInstant`), one whose hook waits HOOK_MS.
 */
async function hookPhases(withInstant: boolean): Promise<{ instant: Result | null; hooked: Result }> {
  const statsDir = mkdtempSync(path.join(tmpdir(), 'rowcast-chat-hook-'));
  const statsFile = path.join(statsDir, 'stats.json');
  const hookedTopic = `bench-hook-${HOOK_MS}ms`;
  const bench = await startBenchServer('', {
    host: 'bench/hook-host.ts',
    env: { BENCH_HOOK_MS: String(HOOK_MS), BENCH_HOOK_TOPIC: hookedTopic, BENCH_HOOK_STATS: statsFile },
  });
  try {
    await createTopic(bench.urls[0]!, 'bench-hook-instant', 0);
    await createTopic(bench.urls[0]!, hookedTopic, 0);
    const instant = withInstant ? await scenario(bench.urls[0]!, bench.pid, 'bench-hook-instant') : null;
    if (instant) print(instant);
    const hooked = await scenario(bench.urls[0]!, bench.pid, hookedTopic, () => readHookStats(statsFile));
    print(hooked);
    return { instant, hooked };
  } finally {
    await bench.stop();
    rmSync(statsDir, { recursive: true, force: true });
  }
}

function print(result: Result): void {
  console.log(
    `  ${result.topic}: ${Math.round(result.messagesPerSecond)} messages/s (${Math.round(result.deliveriesPerSecond)} deliveries/s), ` +
      `server CPU ${result.serverCpuPercent.toFixed(0)}%, latency p50 ${result.p50Ms.toFixed(2)} ms p99 ${result.p99Ms.toFixed(2)} ms max ${result.maxMs.toFixed(1)} ms, ` +
      `failed ${result.failed}, lost ${result.lost}${result.unanswered ? ', requests left unanswered' : ''}`,
  );
}

async function main(): Promise<void> {
  const phases = args['hook-only'] ? 'hook phases only' : `${SECONDS} s per topic kind${HOOK_MS > 0 ? ', then the hook phases' : ''}`;
  console.log(`chat: ${PUBLISHERS} publishers × ${WINDOW} requests in flight, ${SUBSCRIBERS} subscribers, ${phases}`);
  if (args['hook-only'] && HOOK_MS <= 0) throw new Error('--hook-only needs --hook-ms above 0');
  const results: Result[] = [];
  if (!args['hook-only']) {
    const bench = await startBenchServer('');
    try {
      await createTopic(bench.urls[0]!, 'bench-persisted', 100_000);
      await createTopic(bench.urls[0]!, 'bench-ephemeral', 0);
      for (const topic of ['bench-persisted', 'bench-ephemeral']) {
        const result = await scenario(bench.urls[0]!, bench.pid, topic);
        results.push(result);
        print(result);
      }
    } finally {
      await bench.stop();
    }
  }
  let hook = null;
  if (HOOK_MS > 0) {
    console.log(`  library mode, onMessage hook of ${HOOK_MS} ms on ${PUBLISHERS} publishers × ${WINDOW} in flight:`);
    const hookStarted = Date.now();
    const ephemeral = results.find((r) => r.topic === 'bench-ephemeral');
    // --quick keeps the suite short: the no-hook ephemeral phase above is the ceiling, the instant-hook control is left out.
    const { instant, hooked } = await hookPhases(!args.quick || !ephemeral);
    const hookSeconds = Math.round((Date.now() - hookStarted) / 1000);
    hook = {
      hookMs: HOOK_MS,
      /** Wall time of the hook phases, server start included. */
      seconds: hookSeconds,
      instant,
      hooked,
      /** Hooked throughput over the same server's with a hook that answers at once (not measured with --quick). */
      ratioToInstant: instant ? hooked.messagesPerSecond / instant.messagesPerSecond : null,
      /** Hooked throughput over `rowcast serve`'s without any hook (ephemeral topic, same run). */
      ratioToNoHook: ephemeral ? hooked.messagesPerSecond / ephemeral.messagesPerSecond : null,
      /** What one connection could reach if its hooks ran one at a time: 1,000 / the mean hook time. */
      serializedCapPerPublisher: hooked.hook ? 1000 / hooked.hook.meanHookMs : 1000 / HOOK_MS,
      /** Messages per ms of hook time per publisher (Little's law: hooks in flight per connection, on average). */
      impliedInFlightPerPublisher: hooked.hook ? (hooked.messagesPerSecondPerPublisher * hooked.hook.meanHookMs) / 1000 : (hooked.messagesPerSecondPerPublisher * HOOK_MS) / 1000,
    };
    console.log(
      `  hook ${HOOK_MS} ms: ${Math.round(hooked.messagesPerSecond)} messages/s = ` +
        [
          ...(ephemeral ? [`${hook.ratioToNoHook!.toFixed(2)} × no hook's ${Math.round(ephemeral.messagesPerSecond)}/s`] : []),
          ...(instant ? [`${hook.ratioToInstant!.toFixed(2)} × an instant hook's ${Math.round(instant.messagesPerSecond)}/s`] : []),
        ].join(', ') +
        '; ' +
        `per publisher ${Math.round(hooked.messagesPerSecondPerPublisher)}/s against ${Math.round(hook.serializedCapPerPublisher)}/s for hooks one at a time per connection` +
        `${hooked.hook ? ` (mean hook ${hooked.hook.meanHookMs.toFixed(2)} ms)` : ''}: ${hook.impliedInFlightPerPublisher.toFixed(2)} hooks in flight per connection (window ${WINDOW})` +
        `${hooked.hook ? `; the server saw at most ${hooked.hook.maxInFlightPerConnection} in flight on one connection, ${hooked.hook.maxInFlight} on all` : ''} (hook phases: ${hookSeconds} s)`,
    );
  }
  const all = [...results, ...(hook ? [hook.instant, hook.hooked].filter((r) => r !== null) : [])];
  console.log('\n| topic | messages/s | per publisher | deliveries/s | server CPU % | p50 ms | p99 ms | max ms | lost |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of all) {
    console.log(
      `| ${r.topic} | ${Math.round(r.messagesPerSecond)} | ${Math.round(r.messagesPerSecondPerPublisher)} | ${Math.round(r.deliveriesPerSecond)} | ${r.serverCpuPercent.toFixed(0)} | ` +
        `${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.maxMs.toFixed(1)} | ${r.lost} |`,
    );
  }
  mkdirSync('bench/results', { recursive: true });
  // Failed requests and lost messages only: speeds are reported, never enforced (a noisy 2-core machine).
  const problems = all.flatMap((r) => [
    ...(r.failed > 0 ? [`${r.topic}: ${r.failed} new-message requests failed`] : []),
    ...(r.unanswered ? [`${r.topic}: requests still unanswered ${DRAIN_MS / 1000} s after the publishers stopped`] : []),
    ...(r.lost > 0 ? [`${r.topic}: ${r.lost} acknowledged messages never reached the subscriber`] : []),
    ...(r.messagesPerSecond === 0 ? [`${r.topic}: no message arrived`] : []),
  ]);
  writeFileSync('bench/results/chat.json', JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, results, hook, problems }, null, 2));
  if (problems.length > 0) console.error(`chat: ${problems.join('; ')}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
