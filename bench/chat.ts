/**
 * Chat benchmark (issue 4): `new-message` throughput on a persisted topic
 * (history 100,000: stored in rowcast.messages, delivered through the
 * replication stream) and on an ephemeral one (history 0: straight to the
 * event log), each with 10 subscribers, and the publish-to-receive latency
 * seen by a subscriber.
 *
 *   npm run bench:chat                 # 10 s per topic kind
 *   npm run bench:chat -- --quick      # 2 s per topic kind
 *
 * Publishers and subscribers are separate processes (bench/chat-worker.ts).
 * Results go to bench/results/chat.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { BENCH_SECRET, cpuMs, startBenchServer } from './lib/bench-server.js';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, seconds: { type: 'string' }, publishers: { type: 'string' }, window: { type: 'string' } },
});
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 10));
const PUBLISHERS = Number(args.publishers ?? 10);
const WINDOW = Number(args.window ?? 50);
const SUBSCRIBERS = 10;

interface Report {
  samples: number[];
  received: number;
  acknowledged: number;
  failed: number;
  cpu: NodeJS.CpuUsage;
}

function start(job: Record<string, unknown>, onReport: (report: Report) => void): Promise<ChildProcess> {
  const worker = fork(path.resolve('bench/chat-worker.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    worker.on('message', (message: { type: string; message?: string } & Report) => {
      if (message.type === 'ready') resolve(worker);
      if (message.type === 'error') reject(new Error(message.message));
      if (message.type === 'report') onReport(message);
    });
  });
}

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

async function scenario(url: string, serverPid: number, topic: string) {
  const histogram = createHistogram();
  let received = 0;
  let acknowledged = 0;
  let failed = 0;
  const subscribers = await start({ role: 'subscribe', url, secret: BENCH_SECRET, topic, count: SUBSCRIBERS, window: 0 }, (r) => {
    for (const sample of r.samples) histogram.record(sample);
    received = r.received;
  });
  const publishers = await start({ role: 'publish', url, secret: BENCH_SECRET, topic, count: PUBLISHERS, window: WINDOW }, (r) => {
    acknowledged = r.acknowledged;
    failed = r.failed;
  });
  publishers.send({ type: 'start' });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  histogram.reset();
  const [receivedStart, cpuStart, startedAt] = [received, cpuMs(serverPid), Date.now()];
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const [receivedEnd, cpuEnd, elapsed] = [received, cpuMs(serverPid), (Date.now() - startedAt) / 1000];
  for (const worker of [publishers, subscribers]) worker.send({ type: 'stop' });
  await Promise.all([publishers, subscribers].map((w) => new Promise((resolve) => w.once('exit', resolve))));
  return {
    topic,
    messagesPerSecond: (receivedEnd - receivedStart) / elapsed,
    deliveriesPerSecond: ((receivedEnd - receivedStart) * SUBSCRIBERS) / elapsed,
    serverCpuPercent: ((cpuEnd - cpuStart) / (elapsed * 1000)) * 100,
    acknowledged,
    failed,
    p50Ms: histogram.percentile(50) / 1000,
    p99Ms: histogram.percentile(99) / 1000,
    maxMs: histogram.max / 1000,
  };
}

async function main(): Promise<void> {
  console.log(`chat: ${PUBLISHERS} publishers × ${WINDOW} requests in flight, ${SUBSCRIBERS} subscribers, ${SECONDS} s per topic kind`);
  const bench = await startBenchServer('');
  const results = [];
  try {
    await createTopic(bench.urls[0]!, 'bench-persisted', 100_000);
    await createTopic(bench.urls[0]!, 'bench-ephemeral', 0);
    for (const topic of ['bench-persisted', 'bench-ephemeral']) {
      const result = await scenario(bench.urls[0]!, bench.pid, topic);
      results.push(result);
      console.log(
        `  ${topic}: ${Math.round(result.messagesPerSecond)} messages/s (${Math.round(result.deliveriesPerSecond)} deliveries/s), ` +
          `server CPU ${result.serverCpuPercent.toFixed(0)}%, latency p50 ${result.p50Ms.toFixed(2)} ms p99 ${result.p99Ms.toFixed(2)} ms max ${result.maxMs.toFixed(1)} ms, failed ${result.failed}`,
      );
    }
  } finally {
    await bench.stop();
  }
  console.log('\n| topic | messages/s | deliveries/s | server CPU % | p50 ms | p99 ms | max ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.topic} | ${Math.round(r.messagesPerSecond)} | ${Math.round(r.deliveriesPerSecond)} | ${r.serverCpuPercent.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.maxMs.toFixed(1)} |`);
  }
  mkdirSync('bench/results', { recursive: true });
  const problems = results.flatMap((r) => [
    ...(r.failed > 0 ? [`${r.topic}: ${r.failed} new-message requests failed`] : []),
    ...(r.messagesPerSecond === 0 ? [`${r.topic}: no message arrived`] : []),
  ]);
  writeFileSync('bench/results/chat.json', JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, results, problems }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
