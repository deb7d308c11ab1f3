/**
 * Turns the suite's results (bench/results/latest.json) into what
 * docs/benchmarks.md shows: one Markdown table of every scenario against its
 * target and its ceiling or baseline from the same run, and SVG charts.
 */
import { lineChart } from './svg-chart.js';

/* The parts of each scenario's results file that the report reads. */
interface Latency {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}
interface Ingest {
  rows: number;
  writeSeconds: number;
  rowcast: { changesPerSecond: number; seconds: number };
  ceiling: { changesPerSecond: number };
  ratio: number;
  series?: { rowcast: Array<[number, number]>; ceiling: Array<[number, number]> };
}
interface Scoped {
  rate: number;
  flatness: number;
  results: Array<Latency & { connections: number; serverCpuUsPerChange: number; changesPerSecond: number }>;
}
interface Fanout {
  results: Array<{
    subscribers: number;
    changesPerSecond: number;
    ratio: number;
    rowcast: Latency & { deliveriesPerSecond: number; generatorCpuPercent: number; serverCpuPercent: number };
    ceiling: Latency & { deliveriesPerSecond: number; generatorCpuPercent: number; serverCpuPercent: number };
  }>;
}
interface Connections {
  steps: Array<{ connections: number; serverRssMiB: number }>;
  held: number;
  perConnectionKiB: number;
  estimatedRssAtTargetMiB: number;
  target: number;
  fileLimit: number | null;
}
interface Chat {
  results: Array<Latency & { topic: string; messagesPerSecond: number }>;
  /** The library-mode phases with an onMessage hook (absent from runs before them, or with --hook-ms 0). */
  hook?: {
    hookMs: number;
    instant: { messagesPerSecond: number } | null;
    hooked: { messagesPerSecond: number; messagesPerSecondPerPublisher: number; hook: { meanHookMs: number; maxInFlightPerConnection: number } | null };
    ratioToInstant: number | null;
    ratioToNoHook: number | null;
    serializedCapPerPublisher: number;
  } | null;
}
interface Baseline {
  ingest: { rows: number; changesPerSecond: number; writeSeconds: number; seconds: number; series?: Array<[number, number]> };
  latency: Latency & { changesPerSecond: number };
  scoped?: Latency & { connections: number; changesPerSecond: number; serverCpuUsPerChange: number; serverCpuPercent: number };
}
interface HostileVariant {
  subscribers: number;
  rate: number;
  informational: boolean;
  hostile: { groupsHeld: number; furtherRefused: boolean; filter: { values: number; keyBytes: number; valueLength: number } };
  without: Latency & { serverCpuUsPerChange: number };
  with: Latency & { serverCpuUsPerChange: number };
  ratio: number;
  roundRatios: number[];
  /** Phases with the hostile tenant in which the server fell so far behind that the tenant was sent away before the backlog cleared. */
  fellBehind: number;
}
interface HostileTenant {
  target: number;
  owner?: HostileVariant;
  public?: HostileVariant;
}
interface DoorSummary {
  deliveriesPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}
interface Doors {
  subscribers: number;
  fanoutDeliveriesOffered: number;
  latencyRate: number;
  live: DoorSummary;
  phoenix: DoorSummary;
  deliveriesRatio: number;
  p99Ratio: number;
  supabase?: DoorSummary;
  supabaseDeliveriesRatio?: number;
  supabaseP99Ratio?: number;
  supabaseDistinct?: (DoorSummary & { deliveriesRatio: number; p99Ratio: number }) | null;
}
interface SlowConsumer {
  alone: { p99ms: number };
  withStalled: { p99ms: number };
  p99Ratio: number;
}
interface PresenceStorm {
  members: number;
  batchMs: number;
  spreadMs: number;
  framesPerMember: number;
  bytesPerMember: number;
  completeP99Ms: number;
  serverCpuMs: number;
  generatorCpuMs: number;
  analyticFramesPerMember: number;
  analyticBytesPerMember: number;
}
interface Presence {
  batchMs: number;
  storms: PresenceStorm[];
  room: {
    members: number;
    rate: number;
    idle: { serverCpuPercent: number };
    presence: { updatesPerSecond: number; serverCpuPercent: number; serverCpuUsPerUpdate: number; diffsPerSecondPerMember: number; bytesPerDiff: number; latencyP50Ms: number; latencyP99Ms: number };
    ephemeral: { serverCpuPercent: number };
    cpuRatioToEphemeral: number;
    unbatched: { projectedServerCpuPercent: number };
  } | null;
}
interface Snapshot {
  rows: number;
  clients: number;
  rowsPerClient: number;
  big: {
    rounds: unknown[];
    rowsPerSecond: number;
    cold: { rowsPerSecond: number };
    serverCpuUsPerRow: number;
    pageBytes: number;
    ceiling: { rowsPerSecond: number };
    ratio: number;
    rss: {
      medium: { rows: number; peakGrowthMiB: number };
      cold: { bytes: number; peakGrowthMiB: number };
      warmPeakGrowthMiB: number;
      warmBytes: number;
    };
  };
  many: { rounds: unknown[]; allDoneMs: number; p50Ms: number; p99Ms: number; ceiling: { allDoneMs: number }; ratio: number };
  live: { subscribers: number; rate: number; idle: Latency; duringBig: Latency; duringMany: Latency; ratioBig: number; ratioMany: number };
}
export interface SuiteResults {
  command: string;
  at: string;
  machine: { cpus: number; model: string; memoryGiB: number; node: string };
  results: Partial<{
    ingest: Ingest;
    'ingest-cluster': Ingest;
    latency: Scoped;
    fanout: Fanout;
    'scoped-fanout': Scoped;
    connections: Connections;
    chat: Chat;
    baseline: Baseline;
    'slow-consumer': SlowConsumer;
    'hostile-tenant': HostileTenant;
    doors: Doors;
    presence: Presence;
    snapshot: Snapshot;
    'hidden-columns': HiddenColumns;
  }>;
}

const n = (value: number) => Math.round(value).toLocaleString('en');
const ms = (value: number) => (value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(value < 10 ? 2 : 1)} ms`);
const seconds = (ms_: number) => (ms_ >= 1000 ? `${(ms_ / 1000).toFixed(2)} s` : `${Math.round(ms_)} ms`);
const verdict = (met: boolean) => (met ? 'met' : '**missed**');

/** The summary table: one row per measured target. */
export function summaryTable(suite: SuiteResults): string {
  const { ingest, latency, fanout, connections, chat, baseline } = suite.results;
  const scoped = suite.results['scoped-fanout'];
  const slow = suite.results['slow-consumer'];
  const hostile = suite.results['hostile-tenant'];
  const rows: string[][] = [];
  if (ingest) {
    const met = ingest.rowcast.changesPerSecond >= 100_000 && ingest.ratio >= 0.7;
    rows.push([
      'ingest',
      `${n(ingest.rowcast.changesPerSecond)} changes/s (${n(ingest.rows)}-row transaction, one admin subscriber)`,
      `bare replication stream ${n(ingest.ceiling.changesPerSecond)}/s: **${ingest.ratio.toFixed(2)}**`,
      '≥ 100,000/s and ≥ 0.7',
      `${verdict(met)}${!met && ingest.ratio >= 0.7 ? ' (ratio met)' : ''}`,
    ]);
  }
  const clustered = suite.results['ingest-cluster'];
  if (clustered) {
    rows.push([
      'ingest, cluster',
      `${n(clustered.rowcast.changesPerSecond)} changes/s, leader → Redis stream → a follower's subscriber`,
      `bare replication stream ${n(clustered.ceiling.changesPerSecond)}/s: **${clustered.ratio.toFixed(2)}**`,
      '(no target)',
      '—',
    ]);
  }
  if (latency) {
    const r = latency.results[0]!;
    rows.push([
      'latency',
      `p50 ${ms(r.p50Ms)}, p90 ${ms(r.p90Ms)}, p99 ${ms(r.p99Ms)}, max ${ms(r.maxMs)} (${n(r.connections)} owner-scoped subscribers, ${n(r.changesPerSecond)} changes/s)`,
      '—',
      'p50 ≤ 2 ms, p99 ≤ 10 ms',
      verdict(r.p50Ms <= 2 && r.p99Ms <= 10),
    ]);
  }
  if (fanout) {
    for (const r of fanout.results) {
      const at10k = r.subscribers === 10_000;
      const met = r.ratio >= 0.8 && (!at10k || r.rowcast.p99Ms <= 50);
      rows.push([
        `fan-out, ${n(r.subscribers)} subscribers`,
        `${n(r.rowcast.deliveriesPerSecond)} deliveries/s at ${+r.changesPerSecond.toFixed(1)} changes/s; p50 ${ms(r.rowcast.p50Ms)}, p99 ${ms(r.rowcast.p99Ms)}; ` +
          `server ${r.rowcast.serverCpuPercent.toFixed(0)}%, load generators ${r.rowcast.generatorCpuPercent.toFixed(0)}% of a core` +
          (r.rowcast.generatorCpuPercent > 100 ? ' (the generators need more than a core: the machine is saturated)' : ''),
        `bare uWS ${n(r.ceiling.deliveriesPerSecond)}/s, p99 ${ms(r.ceiling.p99Ms)}: **${r.ratio.toFixed(2)}**`,
        at10k ? '≥ 0.8; p99 ≤ 50 ms' : '≥ 0.8',
        verdict(met),
      ]);
    }
  }
  if (scoped) {
    const perChange = scoped.results.map((r) => `${n(r.connections)}: ${r.serverCpuUsPerChange.toFixed(0)} µs`).join(', ');
    rows.push([
      'scoped fan-out',
      `server CPU per change ${perChange} (${n(scoped.rate)} changes/s)`,
      `highest / lowest **${scoped.flatness.toFixed(2)}**`,
      'flat within 25% (≤ 1.25)',
      verdict(scoped.flatness <= 1.25),
    ]);
  }
  if (connections) {
    const last = connections.steps.at(-1)!;
    const reached = connections.held >= connections.target;
    rows.push([
      'connections',
      `${n(connections.held)} idle subscribed connections held, server RSS ${n(last.serverRssMiB)} MiB (${connections.perConnectionKiB.toFixed(1)} KiB each)` +
        (reached ? '' : `; 50,000 estimated at ${n(connections.estimatedRssAtTargetMiB)} MiB`),
      '—',
      '50,000 with RSS ≤ 1 GB',
      reached
        ? verdict(last.serverRssMiB <= 1024)
        : `not measurable here: ${n(connections.fileLimit ?? 0)} open files per process; estimate ${connections.estimatedRssAtTargetMiB <= 1024 ? 'within' : 'over'} 1 GB`,
    ]);
  }
  if (chat) {
    const targets: Record<string, number> = { 'bench-persisted': 5000, 'bench-ephemeral': 20_000 };
    for (const r of chat.results) {
      const target = targets[r.topic] ?? 0;
      rows.push([
        `chat, ${r.topic.replace('bench-', '')}`,
        `${n(r.messagesPerSecond)} messages/s to 10 subscribers; p50 ${ms(r.p50Ms)}, p99 ${ms(r.p99Ms)}`,
        '—',
        `≥ ${n(target)}/s`,
        verdict(r.messagesPerSecond >= target),
      ]);
    }
    const hook = chat.hook;
    if (hook) {
      const inFlight = hook.hooked.hook ? `; at most ${hook.hooked.hook.maxInFlightPerConnection} hook(s) in flight on a connection (mean hook ${ms(hook.hooked.hook.meanHookMs)})` : '';
      const ephemeral = chat.results.find((r) => r.topic === 'bench-ephemeral');
      const ceilings = [
        ...(ephemeral && hook.ratioToNoHook !== null ? [`no hook ${n(ephemeral.messagesPerSecond)}/s: **${hook.ratioToNoHook.toFixed(2)}**`] : []),
        ...(hook.instant && hook.ratioToInstant !== null ? [`instant hook ${n(hook.instant.messagesPerSecond)}/s: **${hook.ratioToInstant.toFixed(2)}**`] : []),
      ];
      rows.push([
        `chat, ${hook.hookMs} ms onMessage hook`,
        `${n(hook.hooked.messagesPerSecond)} messages/s (ephemeral), ${n(hook.hooked.messagesPerSecondPerPublisher)}/s per publisher against ${n(hook.serializedCapPerPublisher)}/s for hooks one at a time${inFlight}`,
        ceilings.join('; ') || '—',
        '(no target)',
        '—',
      ]);
    }
  }
  if (baseline) {
    const throughput = ingest ? ingest.rowcast.changesPerSecond / baseline.ingest.changesPerSecond : NaN;
    // From the start of the write: the baseline's trigger makes the write itself slower.
    const endToEnd = (rows: number, writeSeconds: number, seconds: number) => rows / (writeSeconds + seconds);
    const baselineEndToEnd = endToEnd(baseline.ingest.rows, baseline.ingest.writeSeconds, baseline.ingest.seconds);
    const rowcastEndToEnd = ingest ? endToEnd(ingest.rows, ingest.writeSeconds, ingest.rowcast.seconds) : NaN;
    rows.push([
      'baseline: ingest',
      `pg_notify + LISTEN + ws: ${n(baseline.ingest.changesPerSecond)} changes/s from the commit; ${n(baselineEndToEnd)}/s from the start of the write ` +
        `(rowcast ${n(rowcastEndToEnd)}/s)`,
      `rowcast / baseline **${throughput.toFixed(2)}×** (from the start of the write ${(rowcastEndToEnd / baselineEndToEnd).toFixed(2)}×)`,
      '≥ 5×',
      verdict(throughput >= 5),
    ]);
    const r = latency?.results[0];
    rows.push([
      'baseline: latency',
      `pg_notify + LISTEN + ws: p50 ${ms(baseline.latency.p50Ms)}, p99 ${ms(baseline.latency.p99Ms)}`,
      r ? `rowcast p50 ${ms(r.p50Ms)}, p99 ${ms(r.p99Ms)}` : '—',
      'lower p99 than the baseline',
      r ? verdict(r.p99Ms < baseline.latency.p99Ms) : '—',
    ]);
    const b = baseline.scoped;
    const same = b && scoped?.results.find((x) => x.connections === b.connections);
    if (b && same) {
      rows.push([
        `baseline: scoped fan-out, ${n(b.connections)} subscribers`,
        `pg_notify + LISTEN + ws: ${b.serverCpuUsPerChange.toFixed(0)} µs CPU per change (server at ${b.serverCpuPercent.toFixed(0)}% of a core), ` +
          `p99 ${ms(b.p99Ms)} at ${n(b.changesPerSecond)} changes/s`,
        `rowcast ${same.serverCpuUsPerChange.toFixed(0)} µs per change, p99 ${ms(same.p99Ms)}: **${(b.serverCpuUsPerChange / same.serverCpuUsPerChange).toFixed(1)}×** less CPU`,
        '(no target)',
        '—',
      ]);
    }
  }
  if (slow) {
    rows.push([
      'slow consumer',
      `4 fast clients' p99 ${ms(slow.withStalled.p99ms)} beside 3 stalled ones`,
      `the same clients alone ${ms(slow.alone.p99ms)}: **${slow.p99Ratio.toFixed(2)}**`,
      'no added latency',
      verdict(slow.p99Ratio <= 1.5),
    ]);
  }
  if (hostile) rows.push(...hostileRows(hostile));
  const doors = suite.results.doors;
  if (doors) {
    rows.push([
      `doors: Phoenix, ${n(doors.subscribers)} subscribers`,
      `${n(doors.phoenix.deliveriesPerSecond)} deliveries/s (${n(doors.fanoutDeliveriesOffered)} offered); at ${doors.latencyRate} changes/s p50 ${ms(doors.phoenix.latencyP50Ms)}, p99 ${ms(doors.phoenix.latencyP99Ms)}`,
      `/live ${n(doors.live.deliveriesPerSecond)} deliveries/s, p99 ${ms(doors.live.latencyP99Ms)}: **${doors.deliveriesRatio.toFixed(2)}**, p99 **${doors.p99Ratio.toFixed(2)}×**`,
      'deliveries ≥ 0.9×, p99 ≤ 1.2× of /live',
      verdict(doors.deliveriesRatio >= 0.9 && doors.p99Ratio <= 1.2),
    ]);
    if (doors.supabase && doors.supabaseDeliveriesRatio !== undefined && doors.supabaseP99Ratio !== undefined) {
      rows.push([
        `doors: Supabase, ${n(doors.subscribers)} subscribers, one channel name`,
        `${n(doors.supabase.deliveriesPerSecond)} deliveries/s; p50 ${ms(doors.supabase.latencyP50Ms)}, p99 ${ms(doors.supabase.latencyP99Ms)}`,
        `/live: **${doors.supabaseDeliveriesRatio.toFixed(2)}**, p99 **${doors.supabaseP99Ratio.toFixed(2)}×**`,
        'deliveries ≥ 0.9×, p99 ≤ 1.2× of /live',
        verdict(doors.supabaseDeliveriesRatio >= 0.9 && doors.supabaseP99Ratio <= 1.2),
      ]);
    }
    const distinct = doors.supabaseDistinct;
    if (distinct) {
      rows.push([
        'doors: Supabase, a channel name per client',
        `${n(distinct.deliveriesPerSecond)} deliveries/s; p99 ${ms(distinct.latencyP99Ms)}`,
        `/live: ${distinct.deliveriesRatio.toFixed(2)}, p99 ${distinct.p99Ratio.toFixed(2)}×`,
        'informational',
        '',
      ]);
    }
  }
  const presence = suite.results.presence;
  if (presence) rows.push(...presenceRows(presence));
  const snapshot = suite.results.snapshot;
  if (snapshot) rows.push(...snapshotRows(snapshot));
  const hidden = suite.results['hidden-columns'];
  if (hidden) rows.push(...hiddenRows(hidden));
  const header = '| scenario | rowcast | ceiling / baseline, same run | target | |\n|---|---|---|---|---|';
  return `${header}\n${rows.map((row) => `| ${row.join(' | ')} |`).join('\n')}\n`;
}

/** The hostile-tenant rows: the owner table against its target, the public table for information. */
function hostileRows(hostile: HostileTenant): string[][] {
  const rows: string[][] = [];
  for (const [name, v] of [['owner', hostile.owner], ['public', hostile.public]] as const) {
    if (!v) continue;
    const { groupsHeld, furtherRefused, filter } = v.hostile;
    const audience = name === 'owner' ? `${n(v.subscribers)} owner-scoped subscribers` : `${n(v.subscribers)} subscribers of a public table (every group evaluated for every event)`;
    rows.push([
      name === 'owner' ? 'hostile tenant' : 'hostile tenant, public table (informational)',
      `p99 ${ms(v.with.p99Ms)} for ${audience} at ${n(v.rate)} changes/s beside one user holding ${n(groupsHeld)} distinct filter groups on their table ` +
        `(${filter.values} values, ${n(filter.keyBytes)}-byte key each; ${furtherRefused ? 'a further one refused' : 'a further one was accepted: no limit enforced'}); ` +
        `server CPU ${n(v.without.serverCpuUsPerChange)} → ${n(v.with.serverCpuUsPerChange)} µs per change` +
        (v.fellBehind > 0 ? `; the server fell behind in ${v.fellBehind} of ${v.roundRatios.length} phases with it (p99 a lower bound)` : ''),
      `the same without it, p99 ${ms(v.without.p99Ms)}: **${v.ratio.toFixed(2)}×** (rounds ${v.roundRatios.map((r) => r.toFixed(2)).join(', ')})`,
      v.informational ? '(informational)' : `p99 ≤ ${hostile.target}×`,
      v.informational ? '—' : verdict(v.ratio <= hostile.target),
    ]);
  }
  return rows;
}

/** The presence rows: each batched join storm against one frame per join, and the steady room against ephemeral messages of the same frames. */
function presenceRows(presence: Presence): string[][] {
  const rows: string[][] = [];
  for (const s of presence.storms.filter((storm) => storm.batchMs === presence.batchMs)) {
    const unbatched = presence.storms.find((u) => u.batchMs === 0 && u.members === s.members && u.spreadMs === s.spreadMs);
    rows.push([
      `presence: join storm, ${n(s.members)} members ${s.spreadMs === 0 ? 'at once' : `over ${s.spreadMs / 1000} s`}`,
      `${s.framesPerMember.toFixed(1)} frames, ${n(s.bytesPerMember / 1024)} KiB per member; every view complete in ${seconds(s.completeP99Ms)} (p99); ` +
        `server CPU ${seconds(s.serverCpuMs)}, load generators ${seconds(s.generatorCpuMs)}`,
      `one frame per join ${n(s.analyticFramesPerMember)} frames, ${n(s.analyticBytesPerMember / 1024)} KiB: **${n(s.analyticFramesPerMember / s.framesPerMember)}×** the frames` +
        (unbatched ? `; \`PRESENCE_BATCH_MS=0\` ${unbatched.framesPerMember.toFixed(1)} frames (${(unbatched.framesPerMember / s.framesPerMember).toFixed(1)}×)` : ''),
      '(no target)',
      '—',
    ]);
  }
  const room = presence.room;
  if (room) {
    const p = room.presence;
    rows.push([
      `presence: room of ${n(room.members)}, ${room.rate} updates/s`,
      `${n(p.serverCpuUsPerUpdate)} µs server CPU per update (${p.serverCpuPercent.toFixed(0)}% of a core); ${p.diffsPerSecondPerMember.toFixed(1)} diffs/s per member ` +
        `(${n(p.bytesPerDiff)} B each); update to a member p50 ${ms(p.latencyP50Ms)}, p99 ${ms(p.latencyP99Ms)}`,
      `ephemeral messages, same frames/s and bytes: **${room.cpuRatioToEphemeral.toFixed(2)}×** the CPU; idle room ${room.idle.serverCpuPercent.toFixed(1)}%; ` +
        `unbatched (${n(room.rate * room.members)} frames/s) projected at ${n(room.unbatched.projectedServerCpuPercent)}% of a core`,
      '(no target)',
      '—',
    ]);
  }
  return rows;
}

/** The snapshot rows: one big snapshot against a plain SELECT, its memory, many small ones at once, and the others' latency meanwhile. */
function snapshotRows(snapshot: Snapshot): string[][] {
  const { big, many, live } = snapshot;
  const mib = (value: number) => `${value.toFixed(1)} MiB`;
  const { rss } = big;
  // "A few pages" taken as at most 8 of them. Whether growth follows the table is read from runs of several sizes (docs/benchmarks.md#snapshots):
  // below V8's next full collection, a snapshot's garbage raises RSS whatever the server keeps.
  const fewPages = rss.cold.peakGrowthMiB * 2 ** 20 <= 8 * big.pageBytes;
  return [
    [
      `snapshot: one of ${n(snapshot.rows)} rows`,
      `${n(big.rowsPerSecond)} rows/s request to last page (median of ${big.rounds.length}; the first ${n(big.cold.rowsPerSecond)}); server CPU ${big.serverCpuUsPerRow.toFixed(2)} µs per row`,
      `plain \`SELECT\` through \`pg\` ${n(big.ceiling.rowsPerSecond)} rows/s: **${big.ratio.toFixed(2)}**`,
      '≥ 200,000 rows/s',
      verdict(big.rowsPerSecond >= 200_000),
    ],
    [
      'snapshot: server memory',
      `RSS peak +${mib(rss.cold.peakGrowthMiB)} during the first ${n(snapshot.rows)}-row snapshot (+${mib(rss.medium.peakGrowthMiB)} during one of ${n(rss.medium.rows)}); ` +
        `at most +${mib(rss.warmPeakGrowthMiB)} over ${big.rounds.length} more in a row`,
      `pages sent: ${mib(rss.cold.bytes / 2 ** 20)} in the first, ${n(rss.warmBytes / 2 ** 20)} MiB in the ${big.rounds.length} more; ${n(big.pageBytes / 1024)} KiB a page`,
      'a few pages, not the table',
      `${verdict(fewPages)} (as RSS: read it with the Snapshots section of docs/benchmarks.md)`,
    ],
    [
      `snapshot: ${n(snapshot.clients)} × ${n(snapshot.rowsPerClient)} rows at once`,
      `all done in ${seconds(many.allDoneMs)} (median of ${many.rounds.length} rounds); request to last page p50 ${ms(many.p50Ms)}, p99 ${ms(many.p99Ms)}`,
      `the same rows, a plain \`SELECT\` each over 4 connections, ${seconds(many.ceiling.allDoneMs)}: **${many.ratio.toFixed(2)}**`,
      '(no target)',
      '—',
    ],
    [
      `snapshot: ${n(live.subscribers)} live subscribers meanwhile`,
      `p99 ${ms(live.duringBig.p99Ms)} during the big snapshots, ${ms(live.duringMany.p99Ms)} during the small ones (${n(live.rate)} changes/s)`,
      `no snapshots p99 ${ms(live.idle.p99Ms)}: **${live.ratioBig.toFixed(2)}×**, **${live.ratioMany.toFixed(2)}×**`,
      'p99 ≤ 1.5×',
      verdict(live.ratioBig <= 1.5 && live.ratioMany <= 1.5),
    ],
  ];
}

/** The charts: file name → SVG. */
export function charts(suite: SuiteResults): Record<string, string> {
  const out: Record<string, string> = {};
  const { ingest, fanout, baseline } = suite.results;
  const scoped = suite.results['scoped-fanout'];
  if (fanout || scoped) {
    const series = [];
    if (fanout) {
      const points = (pick: (r: Fanout['results'][number]) => number) => fanout.results.map((r) => [r.subscribers, pick(r)] as [number, number]);
      series.push({ name: 'fan-out p99', points: points((r) => r.rowcast.p99Ms) });
      series.push({ name: 'fan-out p50', points: points((r) => r.rowcast.p50Ms) });
      series.push({ name: 'bare uWS p99', points: points((r) => r.ceiling.p99Ms), dashed: true });
      series.push({ name: 'bare uWS p50', points: points((r) => r.ceiling.p50Ms), dashed: true });
    }
    if (scoped) {
      series.push({ name: 'scoped fan-out p99', points: scoped.results.map((r) => [r.connections, r.p99Ms] as [number, number]) });
    }
    out['latency-vs-subscribers.svg'] = lineChart({ title: 'Commit-to-receive latency vs. subscribers', xLabel: 'subscribers (connections)', yLabel: 'ms', series });
  }
  if (ingest?.series) {
    const series = [
      { name: 'rowcast', points: ingest.series.rowcast },
      { name: 'bare replication stream', points: ingest.series.ceiling, dashed: true },
    ];
    if (baseline?.ingest.series && baseline.ingest.rows === ingest.rows) {
      series.push({ name: 'pg_notify + ws', points: baseline.ingest.series, dashed: true });
    }
    out['ingest-over-time.svg'] = lineChart({
      title: `Ingest: ${n(ingest.rows)}-row transaction`,
      xLabel: 'seconds since the commit',
      yLabel: 'changes received',
      series,
    });
  }
  return out;
}

/** What bench/lib/hidden-columns.ts reports (the parts the summary reads). */
interface HiddenColumns {
  readonly textColumns: number;
  readonly results: ReadonlyArray<{
    readonly connections: number;
    readonly variants: ReadonlyArray<{ readonly hidden: number; readonly serverCpuUsPerChange: number; readonly p50Ms: number; readonly p99Ms: number }>;
    readonly ratios: ReadonlyArray<{ readonly hidden: number; readonly against: number; readonly cpu: number; readonly p50: number; readonly p99: number }>;
  }>;
}

/** The hidden-columns rows: server CPU per change with columns hidden against the same table without, in one run. */
function hiddenRows(hidden: HiddenColumns): string[][] {
  return hidden.results.flatMap((result) =>
    result.ratios.map((ratio) => {
      const on = result.variants.find((v) => v.hidden === ratio.hidden)!;
      const off = result.variants.find((v) => v.hidden === ratio.against)!;
      return [
        `hidden columns: ${ratio.hidden} of ${hidden.textColumns} hidden`,
        `${n(result.connections)} subscribers: ${on.serverCpuUsPerChange.toFixed(1)} µs server CPU per change; p50 ${ms(on.p50Ms)}, p99 ${ms(on.p99Ms)}`,
        `${ratio.against} hidden: ${off.serverCpuUsPerChange.toFixed(1)} µs; **${ratio.cpu.toFixed(2)}×** (p50 ${ratio.p50.toFixed(2)}×, p99 ${ratio.p99.toFixed(2)}×)`,
        '≤ 1.1× CPU per change',
        verdict(ratio.cpu <= 1.1),
      ];
    }),
  );
}
