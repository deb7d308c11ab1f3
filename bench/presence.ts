/**
 * Presence benchmark: what batching presence diffs (`PRESENCE_BATCH_MS`)
 * buys, in two scenarios on `/live`, members in load-generator processes
 * (bench/presence-worker.ts).
 *
 * Join storm: N members (distinct subs), connected, all at once subscribe
 * to one room and, each as soon as its subscribe is answered, track. Each
 * member applies the state and every diff it receives; measured per member:
 * presence frames and payload bytes, and the time from the storm's start to
 * its view holding all N keys. Against: the same storm on a
 * server with `PRESENCE_BATCH_MS=0` (each change flushed on its own timer
 * tick; changes that arrive in one tick still share a frame), and the
 * analytical unbatched cost: the state frame a member got, then one frame
 * per join after it (up to N frames per member, N² in all), computed from
 * the joins the workers' first members actually received.
 *
 * Steady room: M members present, `--rate` meta updates/s (an update is
 * `track` again with a new meta), spread round-robin over the first
 * `--updaters` members (default M / 10, at most 1,000), which have a
 * load-generator process of their own: one that is busy reading a diff on
 * thousands of sockets would send its updates in bursts. Measured: server CPU per
 * update and diffs/s per member, and the update-to-witness latency (a
 * witness per load generator applies every diff). Ceilings in the same run,
 * on the same server and sockets: the idle room, and plain ephemeral
 * `new-message`s to the same room at the rate and size of the diffs the
 * presence phase delivered (the same frames/s and bytes/s: what remains is
 * the presence bookkeeping). An unbatched server would send one frame per
 * update to every member, `--rate` × M frames/s; its CPU is projected from
 * the ephemeral phase's CPU per delivered frame.
 *
 *   npm run bench:presence                 # storms of 1,000 and 5,000 (and 1,000 unbatched, at once and over 1 s); room of 10,000 at 100 updates/s, 10 s windows
 *   npm run bench:presence -- --quick      # storm of 1,000 (the same at PRESENCE_BATCH_MS=0, at once and over 1 s); room of 2,000, 3 s windows
 *
 * Flags: --storm <n,…> (batched, at once), --unbatched <n,…> (compared with PRESENCE_BATCH_MS=0; 0: none),
 * --spread <ms> (the arrivals window of that comparison; 0: none), --members, --rate, --seconds (the room).
 *
 * Results go to bench/results/presence.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { BENCH_SECRET, cpuMs, startBenchServer, type BenchServer } from './lib/bench-server.js';
import { PresenceFleet, type PresenceCounts } from './lib/presence-fleet.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    storm: { type: 'string' },
    unbatched: { type: 'string' },
    members: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    spread: { type: 'string' },
    updaters: { type: 'string' },
  },
});
const STORMS = (args.storm ?? (args.quick ? '1000' : '1000,5000')).split(',').map(Number);
const UNBATCHED = (args.unbatched ?? '1000').split(',').filter((s) => s !== '' && s !== '0').map(Number);
const MEMBERS = Number(args.members ?? (args.quick ? 2000 : 10_000));
const RATE = Number(args.rate ?? 100);
const SECONDS = Number(args.seconds ?? (args.quick ? 3 : 10));
/** The arrivals variant of the unbatched comparison: each member subscribes and tracks at a random moment of this window (ms). */
const SPREAD_MS = Number(args.spread ?? 1000);
/** Room members that send the updates (and the ceiling's messages), in a process of their own. */
const UPDATERS = Number(args.updaters ?? Math.min(1000, Math.ceil(MEMBERS / 10)));
const BATCH_MS = 50;
/** How long a storm may take until every view is complete, and a room until its witnesses hold every key. */
const STORM_TIMEOUT_S = 90;
const ROOM_TIMEOUT_S = 180;

/** The limits a benchmark room needs raised: more members than the default 10,000, a track per connection as fast as the storm sends it. */
const serverEnv = (batchMs: number) => ({
  PRESENCE_BATCH_MS: String(batchMs),
  PRESENCE_MAX_MEMBERS: '100000',
  PRESENCE_TRACK_RATE: '1000',
});

async function createRoom(url: string, name: string): Promise<void> {
  const token = jwt.sign({ sub: 'bench-admin', role: 'admin' }, BENCH_SECRET, { algorithm: 'HS256', expiresIn: '12h' });
  const socket = new WebSocket(`${url}?token=${token}`);
  await new Promise<void>((resolve, reject) => {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'session') {
        const attributes = { name, history: 0, presence: true, readers: 'authenticated', writers: 'authenticated' };
        socket.send(JSON.stringify({ id: 1, method: 'create-topic', attributes }));
      }
      if (frame.type === 'response') (frame.ok ? resolve() : reject(new Error(JSON.stringify(frame.error))));
    });
  });
  socket.close();
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

interface Storm {
  members: number;
  batchMs: number;
  /** 0: every member at once; else each at a random moment of this window. */
  spreadMs: number;
  framesPerMember: number;
  maxFramesPerMember: number;
  bytesPerMember: number;
  /** ms from the storm's start to a member's view holding every key. */
  completeP50Ms: number;
  completeP99Ms: number;
  completeMaxMs: number;
  incomplete: number;
  serverCpuMs: number;
  generatorCpuMs: number;
  /** The same state frame, then one frame per join: frames and bytes per member. */
  analyticFramesPerMember: number;
  analyticBytesPerMember: number;
  tracked: number;
  failed: number;
  firstFailure: string | null;
  inconsistent: number;
  firstInconsistency: string | null;
  closed: number;
}

async function storm(server: BenchServer, members: number, batchMs: number, spreadMs: number): Promise<Storm> {
  const topic = `storm-${members}-${batchMs}-${spreadMs}`;
  await createRoom(server.urls[0]!, topic);
  const fleet = await PresenceFleet.start({ urls: server.urls, topic, members, apply: 'all', mode: 'storm' });
  try {
    await fleet.settle();
    const before = { cpu: cpuMs(server.pid), generator: fleet.cpuMs() };
    fleet.storm(spreadMs);
    const deadline = Date.now() + STORM_TIMEOUT_S * 1000;
    let counts: PresenceCounts = fleet.counts();
    while (Date.now() < deadline) {
      await fleet.settle();
      counts = fleet.counts();
      if (counts.complete === members || counts.closed > 0) break;
    }
    const after = { cpu: cpuMs(server.pid), generator: fleet.cpuMs() };
    const summaries = await fleet.summary();
    const unbatched = summaries.flatMap((m) => (m.unbatched ? [m.unbatched] : []));
    const done = summaries.flatMap((m) => (m.completeMs === null ? [] : [m.completeMs])).sort((a, b) => a - b);
    const frames = summaries.map((m) => m.frames);
    return {
      members,
      batchMs,
      spreadMs,
      framesPerMember: mean(frames),
      maxFramesPerMember: Math.max(...frames),
      bytesPerMember: mean(summaries.map((m) => m.bytes)),
      completeP50Ms: percentile(done, 50),
      completeP99Ms: percentile(done, 99),
      completeMaxMs: done.at(-1) ?? NaN,
      incomplete: members - done.length,
      serverCpuMs: after.cpu - before.cpu,
      generatorCpuMs: after.generator - before.generator,
      analyticFramesPerMember: mean(unbatched.map((u) => u.frames)),
      analyticBytesPerMember: mean(unbatched.map((u) => u.bytes)),
      tracked: counts.tracked,
      failed: counts.failed,
      firstFailure: counts.firstFailure,
      inconsistent: counts.inconsistent,
      firstInconsistency: counts.firstInconsistency,
      closed: counts.closed,
    };
  } finally {
    await fleet.stop();
  }
}

interface Window {
  seconds: number;
  serverCpuMs: number;
  generatorCpuMs: number;
  counts: PresenceCounts;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Counters over `seconds` of whatever the fleet is doing (after `warmup` s of it), the server's CPU, the witnesses' latency. */
async function measure(server: BenchServer, fleet: PresenceFleet, seconds: number, warmup = 1): Promise<Window> {
  await sleep(warmup * 1000);
  await fleet.settle();
  fleet.histogram.reset();
  const start = { at: performance.now(), cpu: cpuMs(server.pid), generator: fleet.cpuMs(), counts: fleet.counts() };
  await sleep(seconds * 1000);
  await fleet.settle();
  const end = { at: performance.now(), cpu: cpuMs(server.pid), generator: fleet.cpuMs(), counts: fleet.counts() };
  const delta = Object.fromEntries(
    Object.entries(end.counts).map(([key, value]) => [key, typeof value === 'number' ? value - (start.counts[key as keyof PresenceCounts] as number) : value]),
  ) as unknown as PresenceCounts;
  const h = fleet.histogram;
  return {
    seconds: (end.at - start.at) / 1000,
    serverCpuMs: end.cpu - start.cpu,
    generatorCpuMs: end.generator - start.generator,
    counts: { ...delta, witnessKeys: end.counts.witnessKeys, complete: end.counts.complete },
    p50Ms: h.count > 0 ? h.percentile(50) / 1000 : NaN,
    p99Ms: h.count > 0 ? h.percentile(99) / 1000 : NaN,
    maxMs: h.count > 0 ? h.max / 1000 : NaN,
  };
}

async function steadyRoom(server: BenchServer) {
  const topic = 'room';
  await createRoom(server.urls[0]!, topic);
  const opened = performance.now();
  const fleet = await PresenceFleet.start({ urls: server.urls, topic, members: MEMBERS, apply: 'witness', mode: 'room', updaters: UPDATERS });
  try {
    // Every witness holds every key, and the joins' diffs have stopped arriving.
    const deadline = Date.now() + ROOM_TIMEOUT_S * 1000;
    let last = -1;
    for (;;) {
      await sleep(1000);
      await fleet.settle();
      const counts = fleet.counts();
      if (counts.closed > 0) throw new Error(`room: ${counts.closed} members were closed while joining`);
      if (counts.witnessKeys === MEMBERS && counts.presenceBytes === last) break;
      if (Date.now() > deadline) throw new Error(`room: witnesses hold ${counts.witnessKeys} of ${MEMBERS} keys after ${ROOM_TIMEOUT_S} s`);
      last = counts.presenceBytes;
    }
    const joinSeconds = (performance.now() - opened) / 1000;
    console.log(`  room: ${MEMBERS.toLocaleString('en')} members present, every witness's view complete, ${joinSeconds.toFixed(1)} s after the first opened`);

    const idle = await measure(server, fleet, SECONDS, 0);

    fleet.pace('track', RATE);
    const presence = await measure(server, fleet, SECONDS);
    fleet.stopPacing();
    await sleep(500);
    const diffsPerSecond = presence.counts.presenceFrames / presence.seconds;
    const diffBytes = presence.counts.presenceBytes / Math.max(1, presence.counts.presenceFrames);

    // The ceiling: messages at the rate and size of the diffs just delivered. A probe gives a message frame's size without padding.
    const messageRate = diffsPerSecond / MEMBERS;
    fleet.pace('new-message', Math.min(messageRate, 5));
    const probe = await measure(server, fleet, 1, 0.5);
    fleet.stopPacing();
    await sleep(500);
    const pad = Math.max(0, Math.round(diffBytes - probe.counts.eventBytes / Math.max(1, probe.counts.events)));
    fleet.pace('new-message', messageRate, pad);
    const ephemeral = await measure(server, fleet, SECONDS);
    fleet.stopPacing();
    await sleep(500);
    const finalCounts = fleet.counts();

    const idleCpuPerSecond = idle.serverCpuMs / idle.seconds;
    const updates = presence.counts.tracked;
    const messages = ephemeral.counts.messaged;
    const presenceCpuPerSecond = presence.serverCpuMs / presence.seconds;
    const ephemeralCpuPerSecond = ephemeral.serverCpuMs / ephemeral.seconds;
    const ephemeralUsPerFrame = (ephemeral.serverCpuMs * 1000) / Math.max(1, ephemeral.counts.events);
    return {
      members: MEMBERS,
      rate: RATE,
      updaters: UPDATERS,
      seconds: SECONDS,
      joinSeconds,
      idle: { serverCpuPercent: idleCpuPerSecond / 10 },
      presence: {
        updatesPerSecond: updates / presence.seconds,
        serverCpuPercent: presenceCpuPerSecond / 10,
        serverCpuUsPerUpdate: (presence.serverCpuMs * 1000) / Math.max(1, updates),
        serverCpuUsPerUpdateOverIdle: ((presenceCpuPerSecond - idleCpuPerSecond) * presence.seconds * 1000) / Math.max(1, updates),
        generatorCpuPercent: presence.generatorCpuMs / presence.seconds / 10,
        diffsPerSecondPerMember: diffsPerSecond / MEMBERS,
        bytesPerDiff: diffBytes,
        bytesPerSecondPerMember: presence.counts.presenceBytes / presence.seconds / MEMBERS,
        latencyP50Ms: presence.p50Ms,
        latencyP99Ms: presence.p99Ms,
        latencyMaxMs: presence.maxMs,
        failed: presence.counts.failed,
      },
      ephemeral: {
        messagesPerSecond: messages / ephemeral.seconds,
        serverCpuPercent: ephemeralCpuPerSecond / 10,
        generatorCpuPercent: ephemeral.generatorCpuMs / ephemeral.seconds / 10,
        framesPerSecondPerMember: ephemeral.counts.events / ephemeral.seconds / MEMBERS,
        bytesPerFrame: ephemeral.counts.eventBytes / Math.max(1, ephemeral.counts.events),
        serverCpuUsPerFrame: ephemeralUsPerFrame,
        latencyP50Ms: ephemeral.p50Ms,
        latencyP99Ms: ephemeral.p99Ms,
        failed: ephemeral.counts.failed,
      },
      /** Presence CPU over the ephemeral ceiling's, at the same frames and bytes delivered; and over the idle room's. */
      cpuRatioToEphemeral: presenceCpuPerSecond / ephemeralCpuPerSecond,
      cpuRatioToIdle: presenceCpuPerSecond / idleCpuPerSecond,
      unbatched: {
        framesPerSecondPerMember: RATE,
        projectedServerCpuPercent: (RATE * MEMBERS * ephemeralUsPerFrame) / 10_000,
      },
      witnessKeysAtEnd: finalCounts.witnessKeys,
      inconsistent: finalCounts.inconsistent,
      firstInconsistency: finalCounts.firstInconsistency,
      firstFailure: finalCounts.firstFailure,
      closed: finalCounts.closed,
    };
  } finally {
    await fleet.stop();
  }
}

const arrivals = (s: Storm) => (s.spreadMs === 0 ? 'at once' : `over ${s.spreadMs / 1000} s`);

function printStorm(s: Storm): void {
  console.log(
    `  storm of ${s.members.toLocaleString('en')} ${arrivals(s)}, PRESENCE_BATCH_MS=${s.batchMs}: ${s.framesPerMember.toFixed(1)} frames/member (max ${s.maxFramesPerMember}), ` +
      `${Math.round(s.bytesPerMember).toLocaleString('en')} B/member; views complete p50 ${s.completeP50Ms.toFixed(0)} ms, p99 ${s.completeP99Ms.toFixed(0)} ms, ` +
      `max ${s.completeMaxMs.toFixed(0)} ms (${s.incomplete} incomplete); server CPU ${s.serverCpuMs} ms, load generators ${Math.round(s.generatorCpuMs)} ms; ` +
      `one frame per join would be ${s.analyticFramesPerMember.toFixed(0)} frames, ${Math.round(s.analyticBytesPerMember).toLocaleString('en')} B/member`,
  );
}

/** The storms one server runs: `[members, spreadMs]`. The batched server runs every size at once, and the unbatched comparison's sizes over SPREAD_MS too. */
function stormPlan(batchMs: number): Array<[number, number]> {
  const atOnce = batchMs === 0 ? UNBATCHED : [...new Set([...STORMS, ...UNBATCHED])].sort((a, b) => a - b);
  return [...atOnce.map((n): [number, number] => [n, 0]), ...(SPREAD_MS > 0 ? UNBATCHED.map((n): [number, number] => [n, SPREAD_MS]) : [])];
}

async function main(): Promise<void> {
  console.log(
    `presence: join storms of ${STORMS.join(' / ')} at once (PRESENCE_BATCH_MS=${BATCH_MS})` +
      `${UNBATCHED.length > 0 ? `; ${UNBATCHED.join(' / ')} at once and over ${SPREAD_MS / 1000} s, PRESENCE_BATCH_MS=${BATCH_MS} and 0` : ''}; ` +
      `a room of ${MEMBERS.toLocaleString('en')} at ${RATE} updates/s, ${SECONDS} s windows`,
  );
  const storms: Storm[] = [];
  let room: Awaited<ReturnType<typeof steadyRoom>> | null = null;
  const batched = await startBenchServer('', { env: serverEnv(BATCH_MS) });
  try {
    for (const [members, spreadMs] of stormPlan(BATCH_MS)) {
      const result = await storm(batched, members, BATCH_MS, spreadMs);
      storms.push(result);
      printStorm(result);
    }
    room = await steadyRoom(batched);
  } finally {
    await batched.stop();
  }
  if (UNBATCHED.length > 0) {
    const unbatched = await startBenchServer('', { env: serverEnv(0) });
    try {
      for (const [members, spreadMs] of stormPlan(0)) {
        const result = await storm(unbatched, members, 0, spreadMs);
        storms.push(result);
        printStorm(result);
      }
    } finally {
      await unbatched.stop();
    }
  }

  console.log('\n| join storm | arrivals | PRESENCE_BATCH_MS | frames/member | bytes/member | views complete p50 / p99 / max | server CPU | one frame per join: frames, bytes/member |');
  console.log('|---:|---|---:|---:|---:|---|---:|---|');
  for (const s of storms) {
    console.log(
      `| ${s.members.toLocaleString('en')} | ${arrivals(s)} | ${s.batchMs} | ${s.framesPerMember.toFixed(1)} | ${Math.round(s.bytesPerMember).toLocaleString('en')} | ` +
        `${s.completeP50Ms.toFixed(0)} / ${s.completeP99Ms.toFixed(0)} / ${s.completeMaxMs.toFixed(0)} ms | ${(s.serverCpuMs / 1000).toFixed(2)} s | ` +
        `${s.analyticFramesPerMember.toFixed(0)}, ${Math.round(s.analyticBytesPerMember).toLocaleString('en')} |`,
    );
  }
  const comparisons = storms.flatMap((u) => {
    const b = storms.find((s) => s.members === u.members && s.spreadMs === u.spreadMs && s.batchMs === BATCH_MS);
    if (u.batchMs !== 0 || !b) return [];
    return [
      {
        members: u.members,
        spreadMs: u.spreadMs,
        framesRatio: u.framesPerMember / b.framesPerMember,
        bytesRatio: u.bytesPerMember / b.bytesPerMember,
        cpuRatio: u.serverCpuMs / b.serverCpuMs,
        analyticFramesRatio: b.analyticFramesPerMember / b.framesPerMember,
        analyticBytesRatio: b.analyticBytesPerMember / b.bytesPerMember,
      },
    ];
  });
  for (const storm of storms.filter((s) => s.batchMs === BATCH_MS)) {
    console.log(
      `storm of ${storm.members.toLocaleString('en')} ${arrivals(storm)}: one frame per join / batched: frames/member ${(storm.analyticFramesPerMember / storm.framesPerMember).toFixed(0)}×, ` +
        `bytes/member ${(storm.analyticBytesPerMember / storm.bytesPerMember).toFixed(2)}×`,
    );
  }
  for (const c of comparisons) {
    console.log(
      `storm of ${c.members.toLocaleString('en')} ${c.spreadMs === 0 ? 'at once' : `over ${c.spreadMs / 1000} s`}, PRESENCE_BATCH_MS=0 / ${BATCH_MS}: ` +
        `frames/member ${c.framesRatio.toFixed(1)}×, bytes/member ${c.bytesRatio.toFixed(2)}×, server CPU ${c.cpuRatio.toFixed(2)}×`,
    );
  }
  if (room) {
    const { presence: p, ephemeral: e } = room;
    console.log(
      `\nroom of ${room.members.toLocaleString('en')}: ${p.updatesPerSecond.toFixed(0)} updates/s → ${p.diffsPerSecondPerMember.toFixed(1)} diffs/s per member ` +
        `(${Math.round(p.bytesPerDiff)} B each, update to witness p50 ${p.latencyP50Ms.toFixed(1)} ms, p99 ${p.latencyP99Ms.toFixed(1)} ms); ` +
        `server CPU ${p.serverCpuPercent.toFixed(1)}% of a core, ${p.serverCpuUsPerUpdate.toFixed(0)} µs per update (${p.serverCpuUsPerUpdateOverIdle.toFixed(0)} µs over idle); ` +
        `load generators ${p.generatorCpuPercent.toFixed(0)}%`,
    );
    console.log(
      `  ceilings: idle room ${room.idle.serverCpuPercent.toFixed(1)}% (presence / idle ${room.cpuRatioToIdle.toFixed(2)}×); ` +
        `ephemeral messages at ${e.messagesPerSecond.toFixed(1)}/s (${e.framesPerSecondPerMember.toFixed(1)} frames/s per member, ${Math.round(e.bytesPerFrame)} B each) ` +
        `${e.serverCpuPercent.toFixed(1)}%: presence / ephemeral **${room.cpuRatioToEphemeral.toFixed(2)}**`,
    );
    console.log(
      `  unbatched: ${room.unbatched.framesPerSecondPerMember} frames/s per member (${(room.rate * room.members).toLocaleString('en')} frames/s), ` +
        `projected at the ephemeral phase's ${e.serverCpuUsPerFrame.toFixed(2)} µs per frame: ${room.unbatched.projectedServerCpuPercent.toFixed(0)}% of a core`,
    );
  }

  const problems = [
    ...storms.flatMap((s) => {
      const name = `storm of ${s.members} ${arrivals(s)}, PRESENCE_BATCH_MS=${s.batchMs}`;
      return [
        ...(s.incomplete > 0 ? [`${name}: ${s.incomplete} members' views never held every key`] : []),
        ...(s.failed > 0 ? [`${name}: ${s.failed} requests failed (${s.firstFailure})`] : []),
        ...(s.closed > 0 ? [`${name}: ${s.closed} members were closed`] : []),
        ...(s.inconsistent > 0 ? [`${name}: ${s.inconsistent} diffs did not continue a member's view (${s.firstInconsistency})`] : []),
      ];
    }),
    ...(room
      ? [
          ...(room.closed > 0 ? [`room: ${room.closed} members were closed`] : []),
          ...(room.inconsistent > 0 ? [`room: ${room.inconsistent} diffs did not continue a witness's view (${room.firstInconsistency})`] : []),
          ...(room.presence.failed + room.ephemeral.failed > 0 ? [`room: requests failed (${room.firstFailure})`] : []),
          ...(room.witnessKeysAtEnd !== room.members ? [`room: a witness's view holds ${room.witnessKeysAtEnd} of ${room.members} keys at the end`] : []),
          ...(room.presence.diffsPerSecondPerMember === 0 ? ['room: no diff arrived'] : []),
          ...(room.ephemeral.framesPerSecondPerMember === 0 ? ['room: no message arrived'] : []),
        ]
      : []),
  ];
  if (problems.length > 0) console.error(`problems: ${problems.join('; ')}`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/presence.json', JSON.stringify({ date: new Date().toISOString(), batchMs: BATCH_MS, spreadMs: SPREAD_MS, storms, comparisons, room, problems }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
