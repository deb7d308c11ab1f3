/**
 * `npm run soak`: the soak test. Three rowcast nodes in cluster mode (one
 * Postgres, one Redis) on this machine hold the fleet's connections together
 * while a writer commits changes to an `owner`-policy table at a steady rate,
 * clients chat on two custom topics, and connections drop and come back at
 * random, resuming with `since`. Witness clients (on every node) must lose
 * nothing: each is matched against the writer's log and the database. Every
 * node's RSS, CPU and connections are sampled throughout.
 *
 *   npx tsx soak/main.ts --ci                               # about a minute: 3,000 connections, 200 changes/s
 *   npx tsx soak/main.ts                                    # full size: 48,000 connections over 3 nodes, 1,000 changes/s, 30 minutes
 *   npx tsx soak/main.ts --connections 24000 --minutes 5    # flags override the full size (--rate, --nodes, --chat-rate, --churn, --env)
 *
 * Needs the built server (`npx tsc -p tsconfig.build.json`), Redis
 * (REDIS_URL, default the local one) and Postgres (DATABASE_URL, else an
 * embedded one). Prints a summary and writes soak/results/<timestamp>.json.
 * Exits 1 on an event lost by a witness, a node or load worker that died, or
 * failed connections beyond a small tolerance.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { clusterStreamKey } from '../src/cluster/cluster-node.js';
import { TEST_SECRET } from '../test/helpers/tokens.js';
import { waitFor } from '../test/helpers/wait-for.js';
import { ChatWitness } from './chat-witness.js';
import { fileLimits } from './file-limit.js';
import { LoadFleet } from './load-fleet.js';
import { NodeLogDigest } from './node-log-digest.js';
import { postgresPid, redisPid } from './process-cpu.js';
import { parseSoakOptions } from './options.js';
import { relaunchIfNeeded } from './relaunch.js';
import { renderSummary, type SoakResults } from './report.js';
import { assembleResults } from './results.js';
import { Sampler, type Sample } from './sampler.js';
import { settle } from './settle.js';
import { takeOverStopSignals } from './signals.js';
import { PINGS, ROOM, SoakCluster } from './soak-cluster.js';
import { TableWitness } from './table-witness.js';
import { SoakWriter, SOAK_TABLE } from './writer.js';

await relaunchIfNeeded();
const options = parseSoakOptions(process.argv.slice(2));
const limits = fileLimits();

/** Per node: an admin witness pinned to it, an owner witness and a chat witness that start on it and move on at every reconnect. */
const WITNESSES_PER_NODE = 3;
const witnessCount = options.nodes * WITNESSES_PER_NODE;
/** Descriptors a process needs besides its sockets (database pool, Redis, pipes, epoll…), with room to spare. */
const FD_HEADROOM = 500;
/** Share of the new rows owned by the owner witnesses. */
const WITNESS_SHARE = 0.03;
/** Without progress this long, waiting for a witness to catch up gives up (what is missing counts as lost). */
const STALL_MS = 30_000;
/** The owner table hovers around this many rows. */
const TABLE_ROWS = 20_000;
/** Connections each load worker opens at once during the ramp. */
const RAMP_CONCURRENCY = 50;

const socketsPerNode = Math.ceil(options.connections / options.nodes) + witnessCount;
const maxPerWorker = Math.min(options.maxPerWorker, limits.soft - FD_HEADROOM);
const workers = Math.max(1, Math.ceil(options.connections / maxPerWorker));
const socketsPerWorker = Math.ceil(options.connections / workers);
const log = (line: string) => console.log(`  ${line}`);

console.log(
  `soak (${options.size}): ${options.connections.toLocaleString('en')} connections over ${options.nodes} nodes (${workers} load workers), ` +
    `${options.rate.toLocaleString('en')} changes/s, chat ${options.chatPerSecond}/s per topic, churn ${options.churnPercentPerMinute}%/min, ${options.minutes} min steady`,
);
console.log(
  `  open files per process: soft ${limits.soft.toLocaleString('en')}, hard ${limits.hard.toLocaleString('en')}; ` +
    `each node will hold about ${socketsPerNode.toLocaleString('en')} sockets, each load worker ${socketsPerWorker.toLocaleString('en')}`,
);
if (socketsPerNode + FD_HEADROOM > limits.soft) {
  console.error(
    `each node would need ${(socketsPerNode + FD_HEADROOM).toLocaleString('en')} open files, over this machine's limit of ${limits.soft.toLocaleString('en')} per process: ` +
      `use more --nodes or fewer --connections`,
  );
  process.exit(1);
}

const problems: string[] = [];
const aborted = new AbortController();
/** Something the run cannot go on after (a node or worker died, the writer failed, Ctrl-C): recorded, and the run drains at once. */
const fail = (reason: string) => {
  problems.push(reason);
  if (!aborted.signal.aborted) {
    console.error(`  ${reason}: stopping the run`);
    aborted.abort();
  }
};

const startedAt = Date.now();
const seconds = () => (Date.now() - startedAt) / 1000;
let phase = 'start';
const marks = { start: 0, ramp: 0, steady: 0, drain: 0 };

const cluster = new SoakCluster({ nodes: options.nodes, redisUrl: options.redisUrl, env: options.env, onExit: fail, log });
const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
redis.on('error', () => {});
let writerClient: pg.Client | null = null;
let writer: SoakWriter | null = null;
let fleet: LoadFleet | null = null;
let sampler: Sampler | null = null;
const tableWitnesses: TableWitness[] = [];
const chatWitnesses: ChatWitness[] = [];
const stopCutting: Array<() => void> = [];
let digests: NodeLogDigest[] = [];

/** Runs one cleanup step; a failure is reported and the next steps still run. */
async function step(what: string, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (error) {
    console.error(`  cleanup: ${what} failed: ${(error as Error).message}`);
  }
}

let cleaning: Promise<Array<number | null>> | null = null;
/** Stops and removes everything this run started (once; also on Ctrl-C and after a failure). Resolves with the nodes' exit codes. */
function cleanup(): Promise<Array<number | null>> {
  cleaning ??= (async () => {
    for (const stop of stopCutting) stop();
    await step('the sampler', () => sampler?.stop());
    await step('the writer', () => writer?.stop());
    await step('the load workers', () => fleet?.stop());
    await step('the witnesses', () => [...tableWitnesses, ...chatWitnesses].forEach((witness) => witness.connection.close()));
    await step("the writer's connection", () => writerClient?.end());
    let codes: Array<number | null> = [];
    await step('the cluster', async () => (codes = await cluster.stop()));
    // After the nodes exited: their last lines (connections closed at shutdown) are in.
    for (const digest of digests) digest.drain();
    redis.disconnect();
    return codes;
  })();
  return cleaning;
}

takeOverStopSignals((signal) => {
  if (cleaning) return console.error(`${signal}: still cleaning up…`);
  console.error(`\n${signal}: cleaning up (nodes, load workers, database, Redis keys)…`);
  fail(`interrupted (${signal})`);
  void cleanup().finally(() => process.exit(130));
});

function progressLine(s: Sample): void {
  const nodes = s.nodes.map((node, i) => `n${i + 1} ${Math.round(node.rssMiB ?? 0)} MiB/${node.connections ?? '?'}c/${Math.round(node.cpuPercent ?? 0)}%`).join('  ');
  const latency = s.latency ? `p99 ${s.latency.p99Ms.toFixed(1)} ms` : 'p99 —';
  log(
    `${(s.seconds / 60).toFixed(1).padStart(5)} min ${s.phase.padEnd(6)} ${nodes}  fleet ${s.fleet.open.toLocaleString('en')} open/${Math.round(s.fleet.cpuPercent)}%  ` +
      `pg ${Math.round(s.postgresCpuPercent ?? NaN)}%  machine ${Math.round(s.machineCpuPercent)}% (other work ${Math.round(s.otherCpuPercent)}%)  ${Math.round(s.changesPerSecond)} chg/s  ${latency}`,
  );
}

let results: SoakResults | null = null;
try {
  await redis.connect();
  await cluster.start();
  const db = cluster.db!;
  digests = cluster.nodes.map((node) => new NodeLogDigest(node));
  marks.start = seconds();
  const urls = cluster.urls;
  const rotated = (i: number) => [...urls.slice(i), ...urls.slice(0, i)];

  const users = Math.ceil(options.connections / options.connectionsPerUser);
  writerClient = await db.client();
  writer = new SoakWriter(writerClient, {
    rate: options.rate,
    users,
    witnessOwners: options.nodes,
    witnessShare: WITNESS_SHARE,
    tableTarget: TABLE_ROWS,
    onError: (error) => fail(`the writer failed: ${error.message}`),
  });
  for (let i = 0; i < options.nodes; i++) {
    const owner = { index: writer.witnessOwner(i), name: writer.ownerName(writer.witnessOwner(i)) };
    tableWitnesses.push(new TableWitness(`admin@node${i + 1}`, [urls[i]!], { sub: `soak-admin-${i}`, role: 'admin' }, writer.log, null));
    tableWitnesses.push(new TableWitness(`owner@node${i + 1}+`, rotated(i), { sub: owner.name }, writer.log, owner));
    chatWitnesses.push(new ChatWitness(`chat@node${i + 1}+`, rotated(i), { sub: `soak-chat-${i}` }, ROOM, PINGS));
  }
  let witnessesReady = false;
  void Promise.all([...tableWitnesses, ...chatWitnesses].map((w) => w.ready)).then(() => (witnessesReady = true), (error: Error) => fail(`a witness could not subscribe: ${error.message}`));
  await waitFor('every witness to be subscribed', () => witnessesReady || aborted.signal.aborted, 30_000);
  aborted.signal.throwIfAborted();

  phase = 'ramp';
  fleet = LoadFleet.launch({
    urls,
    secret: TEST_SECRET,
    tokenSeconds: Math.round(options.minutes * 60 + 3 * 3600),
    table: SOAK_TABLE,
    room: ROOM,
    pings: PINGS,
    connections: options.connections,
    connectionsPerUser: options.connectionsPerUser,
    chatEvery: options.chatEvery,
    rampConcurrency: RAMP_CONCURRENCY,
    maxPerWorker,
    onExit: fail,
  });
  const admins = tableWitnesses.filter((w) => w.ownerName === null);
  sampler = new Sampler({
    nodes: cluster.nodes,
    fleetPids: () => fleet!.pids,
    fleetOpen: () => fleet!.counts().open,
    phase: () => phase,
    changes: () => writer!.log.length,
    latency: admins.map((w) => w.latency),
    redis,
    streamKey: clusterStreamKey(db.name),
    postgresPid: await postgresPid((sql) => db.query(sql)),
    redisPid: await redisPid(redis),
    startedAt,
  });
  sampler.start(options.sampleSeconds * 1000, (sample) => {
    for (const digest of digests) digest.drain();
    progressLine(sample);
  });
  const rampTimeoutMs = 60_000 + options.connections * 5;
  const abortedRun = new Promise<never>((_, reject) => aborted.signal.addEventListener('abort', () => reject(new Error('aborted during the ramp'))));
  abortedRun.catch(() => {});
  await Promise.race([fleet.ready(rampTimeoutMs), abortedRun]);
  marks.ramp = seconds();
  log(`ramp: ${options.connections.toLocaleString('en')} connections open and subscribed in ${(marks.ramp - marks.start).toFixed(1)} s`);

  phase = 'steady';
  writer.start();
  fleet.startTraffic(options.churnPercentPerMinute, options.chatPerSecond);
  for (const witness of [...tableWitnesses, ...chatWitnesses]) stopCutting.push(witness.connection.cutAtRandom(options.witnessCutSeconds * 1000));
  await delay(options.minutes * 60_000, undefined, { signal: aborted.signal }).catch(() => {});
  marks.steady = seconds();

  phase = 'drain';
  const stallMs = aborted.signal.aborted ? 5000 : STALL_MS;
  await writer.stop();
  for (const stop of stopCutting) stop();
  const settled = await fleet.quiesce(aborted.signal.aborted ? 5000 : 60_000);
  if (!settled) problems.push('after the run, not every fleet connection was back and subscribed within 60 s');
  const tableCaughtUp = await settle(
    () => tableWitnesses.every((w) => w.caughtUp),
    () => tableWitnesses.reduce((sum, w) => sum + w.received, 0),
    stallMs,
  );
  if (!tableCaughtUp) log(`table witnesses stalled ${stallMs / 1000} s short of the writer's log; what is missing counts as lost`);
  // Room messages get their seq written back once delivered; then the stored ones are what the chat witnesses must have.
  const roomMessages = async () => (await db.query<{ id: string; seq: string | null }>(`SELECT id::text, seq FROM rowcast.messages WHERE topic = $1`, [ROOM])).rows;
  await waitFor('every room message to have its seq', async () => (await roomMessages()).every((m) => m.seq !== null), 30_000).catch((error: Error) => problems.push(error.message));
  const stored = new Map((await roomMessages()).map((m) => [m.id, m.seq]));
  const expectedRoom = new Set([...fleet.ackedRoomIds, ...stored.keys()]);
  await settle(
    () => chatWitnesses.every((w) => w.has(expectedRoom)),
    () => chatWitnesses.reduce((sum, w) => sum + w.received, 0),
    stallMs,
  );
  // Every connection is back: the nodes must count exactly the fleet and the witnesses.
  const expectedFinal = options.connections + witnessCount;
  // null: a node did not answer.
  const count = async () => {
    const counts = await Promise.all(cluster.nodes.map((node) => SoakCluster.status(node).then((s) => s['connections'] as number, () => null)));
    return counts.includes(null) ? null : counts.reduce((a, b) => a! + b!, 0);
  };
  const heldFinal = await waitFor('the nodes to count every connection', async () => ((await count()) === expectedFinal ? expectedFinal : null), 10_000).catch(async () => count());
  const finalSample = await sampler.sample();
  await sampler.stop();
  progressLine(finalSample);
  marks.drain = seconds();

  const table = new Map(
    (await db.query<{ id: number; owner_id: string; v: number }>(`SELECT id, owner_id, v FROM ${SOAK_TABLE}`)).rows.map((row) => [row.id, { owner: row.owner_id, v: row.v }]),
  );
  // The writer's model must be what the table holds, or the expectations are wrong.
  const modelDiffers = [...writer.rows].filter(([id, row]) => table.get(id)?.v !== row.v || table.get(id)?.owner !== writer!.ownerName(row.owner)).length;
  if (modelDiffers > 0 || table.size !== writer.rows.size) problems.push(`the writer's model differs from the table (${modelDiffers} rows; ${writer.rows.size} vs ${table.size})`);
  const latency = createHistogram();
  for (const witness of admins) latency.add(witness.totalLatency);
  const peaks = cluster.nodes.map((node) => {
    try {
      return node.memory().peakMiB;
    } catch {
      return null;
    }
  });
  const record = {
    tableReports: tableWitnesses.map((w) => w.report(table)),
    chatReports: chatWitnesses.map((w) => w.report(fleet!.ackedRoomIds, stored)),
    fleet: fleet.counts(),
    writer: { changes: writer.log.length, transactions: writer.transactions },
    latency: latency.count > 0 ? { p50Ms: latency.percentile(50) / 1000, p99Ms: latency.percentile(99) / 1000, maxMs: latency.max / 1000, events: latency.count } : null,
  };
  const codes = await cleanup();
  results = assembleResults({
    ...record,
    options,
    limits,
    socketsPerNode,
    socketsPerWorker,
    startedAt,
    marks,
    totalSeconds: seconds(),
    samples: sampler.samples,
    finalSample,
    nodes: cluster.nodes.map((node, i) => ({
      pid: node.child.pid!,
      port: node.port,
      peakMiB: peaks[i] ?? null,
      exitCode: codes[i] ?? null,
      exitedEarly: cluster.exitedEarly.has(i),
      log: digests[i]!.summary,
    })),
    witnesses: witnessCount,
    heldFinal,
    problems,
  });
} catch (error) {
  problems.push(`the run failed: ${(error as Error).message}`);
  // An abort (a crash, Ctrl-C) was reported when it happened; anything else gets its stack.
  if (!aborted.signal.aborted) console.error(error);
} finally {
  await cleanup();
}

if (results) {
  console.log(renderSummary(results));
  const dir = path.resolve('soak/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${results.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`results: ${path.relative(process.cwd(), file)}`);
} else {
  console.error(`\nthe soak did not complete:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}
process.exit(results?.ok ? 0 : 1);
