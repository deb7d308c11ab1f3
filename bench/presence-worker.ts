/**
 * A load-generator process for the presence benchmark: the members
 * `from` … `to - 1` of one room (a custom topic with presence), each a
 * `/live` connection with `sub: "<i>"` that subscribes to the room and, once
 * subscribed, tracks: as it opens (`room`), or when told (`storm`): all at
 * once, or each at a random moment of a window. Told to, members then track again (meta updates) or send
 * `new-message`s, round-robin at a steady rate.
 *
 * A member that applies frames keeps its view as Phoenix.Presence's
 * `syncState`/`syncDiff` do, reduced to this room's shape (one meta per
 * key: every member has one connection): key → `phx_ref`. A state replaces
 * the view; a diff's leaves must name the meta the view holds and its joins
 * a key it does not hold (an update leaves the old meta and joins the new),
 * or the diff is counted as not continuing the view. The view is complete
 * when it holds every member's key. Identical frames reach every member (a diff is built
 * once per batch), so each distinct frame is parsed once per process and
 * applied to each member that receives it: the load generator spends its
 * CPU on sockets, not on parsing the same JSON thousands of times. Members
 * that do not apply frames only count them (never decoded). Reports go to
 * the parent every 250 ms (bench/lib/presence-fleet.ts).
 */
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import type { MemberSummary, PresenceCommand, PresenceJob, PresenceReport } from './lib/presence-fleet.js';

const job = JSON.parse(process.argv[2]!) as PresenceJob;
const now = () => performance.timeOrigin + performance.now();
const report = (message: PresenceReport) => process.send!(message);

/** A presence frame parsed once: the metas it joins and takes away, and the `t` of each joined meta that has one. */
interface ParsedPresence {
  readonly state: boolean;
  /** `[key, phx_ref]` of each meta (the key is a member number). */
  readonly joins: Array<[number, string]>;
  readonly leaves: Array<[number, string]>;
  readonly stamps: number[];
  /** With a frame per key it changes (an unbatched server): frames, and their payload bytes. */
  readonly unbatchedFrames: number;
  readonly unbatchedBytes: number;
}

interface Member {
  readonly index: number;
  readonly socket: WebSocket;
  frames: number;
  bytes: number;
  /** Its view: key → the `phx_ref` of its meta (a member here has one connection, so one meta); null for a member that only counts. */
  readonly view: Array<string | null> | null;
  keys: number;
  completeMs: number | null;
  unbatchedFrames: number;
  unbatchedBytes: number;
}

// The first letters after `{"type":"`: presence, response, event / error, session / subscription.
const TYPE_AT = 9;
const P = 'p'.charCodeAt(0);
const R = 'r'.charCodeAt(0);
const E = 'e'.charCodeAt(0);
const S = 's'.charCodeAt(0);
const SE = 'e'.charCodeAt(0);
const V = 'v'.charCodeAt(0);

const members: Member[] = [];
let stormAt = 0;
let events = 0;
let eventBytes = 0;
let tracked = 0;
let messaged = 0;
let failed = 0;
let firstFailure: string | null = null;
let complete = 0;
let closed = 0;
/** Diffs that did not continue a member's view: a leave of a meta it does not hold, a join of a key it holds. */
let inconsistent = 0;
let firstInconsistency: string | null = null;
let stopping = false;
let samples: number[] = [];
let nextId = 2;

type PresenceState = Record<string, { metas: Array<{ phx_ref: string; t?: number }> }>;

/** The last distinct frames parsed, newest last (a batch reaches every member within moments of each other). */
const parsed: Array<[Buffer, ParsedPresence]> = [];
const envelopeBytes = `{"type":"presence","topic":${JSON.stringify(job.topic)},"event":"diff","data":{"joins":{},"leaves":{}}}`.length;

/** The frame parsed: the bytes compared with the frames parsed lately (no decoding), else parsed and kept. */
function parse(bytes: Buffer): ParsedPresence {
  for (let i = parsed.length - 1; i >= 0; i--) {
    const [seen, frame] = parsed[i]!;
    if (seen.length === bytes.length && seen.equals(bytes)) return frame;
  }
  const text = bytes.toString();
  const { event, data } = JSON.parse(text) as { event: 'state'; data: PresenceState } | { event: 'diff'; data: { joins: PresenceState; leaves: PresenceState } };
  const [joinsOf, leavesOf] = event === 'state' ? [data, {}] : [data.joins, data.leaves];
  const metas = (state: PresenceState) => Object.entries(state).flatMap(([key, entry]) => entry.metas.map((meta): [number, string] => [Number(key), meta.phx_ref]));
  const stamps = Object.values(joinsOf).flatMap((entry) => entry.metas.flatMap((meta) => (typeof meta.t === 'number' && meta.t > 0 ? [meta.t] : [])));
  // One frame per key changed: the envelope, the key's joins and its leaves.
  const entryBytes = (key: string, state: PresenceState) => (state[key] ? JSON.stringify(key).length + 1 + JSON.stringify(state[key]).length : 0);
  const changed = new Set([...Object.keys(joinsOf), ...Object.keys(leavesOf)]);
  let unbatchedBytes = 0;
  for (const key of changed) unbatchedBytes += envelopeBytes + entryBytes(key, joinsOf) + entryBytes(key, leavesOf);
  const frame: ParsedPresence = {
    state: event === 'state',
    joins: metas(joinsOf),
    leaves: metas(leavesOf),
    stamps,
    unbatchedFrames: event === 'state' ? 1 : changed.size,
    unbatchedBytes: event === 'state' ? text.length : unbatchedBytes,
  };
  parsed.push([bytes, frame]);
  if (parsed.length > 16) parsed.shift();
  return frame;
}

function inconsistency(member: Member, what: string): void {
  inconsistent++;
  firstInconsistency ??= `member ${member.index}: ${what}`;
}

/** Applies a state (replaces the view) or a diff (its leaves, then its joins: an update's new meta replaces the one it leaves). */
function apply(member: Member, frame: ParsedPresence): void {
  const view = member.view!;
  if (frame.state) {
    view.fill(null);
    member.keys = 0;
  }
  for (const [key, ref] of frame.leaves) {
    if (view[key] !== ref) inconsistency(member, `a leave of ${key}'s meta ${ref}, which it does not hold (it holds ${view[key]})`);
    else {
      view[key] = null;
      member.keys--;
    }
  }
  for (const [key, ref] of frame.joins) {
    if (view[key] !== null) inconsistency(member, `a join of ${key}'s meta ${ref} while it holds ${view[key]}`);
    else member.keys++;
    view[key] = ref;
  }
  if (member.completeMs === null && member.keys === job.expect && stormAt > 0) {
    member.completeMs = now() - stormAt;
    complete++;
  }
  member.unbatchedFrames += frame.unbatchedFrames;
  member.unbatchedBytes += frame.unbatchedBytes;
  if (frame.stamps.length > 0) {
    const at = now();
    for (const t of frame.stamps) samples.push(Math.max(1, Math.round((at - t) * 1000)));
  }
}

/** Counts (and, for a member that applies frames, applies) one frame; says when it answered the member's subscribe or track. */
function onFrame(member: Member, data: Buffer): 'subscribed' | 'tracked' | null {
  const type = data[TYPE_AT];
  if (type === P) {
    member.frames++;
    member.bytes += data.length;
    if (member.view) apply(member, parse(data));
  } else if (type === E && data[TYPE_AT + 1] === V) {
    events++;
    eventBytes += data.length;
    if (member.view) {
      const text = data.toString();
      const at = text.indexOf('"t":');
      if (at >= 0) samples.push(Math.max(1, Math.round((now() - Number.parseFloat(text.slice(at + 4))) * 1000)));
    }
  } else if (type === R) {
    const text = data.toString();
    if (!text.includes('"ok":true')) {
      failed++;
      firstFailure ??= text.slice(0, 300);
    } else if (text.includes('"method":"subscribe"')) {
      // Subscribe, then track: the join of a room member or of a storm.
      request(member, 'track', { meta: {} });
      return 'subscribed';
    } else if (text.includes('"method":"track"')) {
      tracked++;
      return 'tracked';
    } else if (text.includes('"method":"new-message"')) messaged++;
  }
  return null;
}

function request(member: Member, method: string, attributes: Record<string, unknown>): void {
  member.socket.send(JSON.stringify({ id: nextId++, method, attributes: { topicName: job.topic, ...attributes } }));
}

/**
 * Opens member `i`. In a room it is subscribed (its state frame received)
 * and tracked when this resolves; in a storm it has only its session, and
 * subscribes, then tracks, when told.
 */
function open(i: number): Promise<Member> {
  const token = jwt.sign({ sub: String(i) }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const socket = new WebSocket(`${job.urls[i % job.urls.length]}?token=${token}&client=presencebench`, { perMessageDeflate: false });
  const applies = job.apply === 'all' || i === job.from;
  const member: Member = {
    index: i,
    socket,
    frames: 0,
    bytes: 0,
    view: applies ? new Array<string | null>(job.expect).fill(null) : null,
    keys: 0,
    completeMs: null,
    unbatchedFrames: 0,
    unbatchedBytes: 0,
  };
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.on('close', (code) => {
      if (!stopping) {
        closed++;
        reject(new Error(`member ${i} was closed (${code}) while opening`));
      }
    });
    socket.on('message', (data: Buffer) => {
      if (data[TYPE_AT] === S && data[TYPE_AT + 1] === SE) {
        if (job.mode === 'storm') resolve(member);
        else subscribe(member);
      } else if (onFrame(member, data) === 'tracked' && job.mode === 'room') resolve(member);
    });
  });
}

function subscribe(member: Member): void {
  member.socket.send(JSON.stringify({ id: 0, method: 'subscribe', attributes: { topicName: job.topic } }));
}

let pacing: NodeJS.Timeout | null = null;

/** `rate` requests a second, round-robin over this worker's members, in 10 ms ticks that catch up when late. */
function pace(method: 'track' | 'new-message', rate: number, pad: number): void {
  if (pacing) clearInterval(pacing);
  const started = performance.now();
  const padding = 'x'.repeat(pad);
  let sent = 0;
  pacing = setInterval(() => {
    const due = Math.floor(((performance.now() - started) * rate) / 1000);
    for (; sent < due; sent++) {
      const member = members[sent % members.length]!;
      if (method === 'track') request(member, 'track', { meta: { t: now(), n: sent } });
      else request(member, 'new-message', { message: { t: now(), pad: padding } });
    }
  }, 10);
}

function summary(): MemberSummary[] {
  return members.map((m) => ({
    frames: m.frames,
    bytes: m.bytes,
    keys: m.keys,
    completeMs: m.completeMs,
    unbatched: m.view ? { frames: m.unbatchedFrames, bytes: m.unbatchedBytes } : null,
  }));
}

async function main(): Promise<void> {
  const parallel = 100;
  for (let i = job.from; i < job.to; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, job.to - i) }, (_, k) => open(i + k));
    members.push(...(await Promise.all(batch)));
  }
  for (const member of members) {
    member.socket.removeAllListeners('close');
    member.socket.on('close', () => {
      if (!stopping) closed++;
    });
  }
  report({ type: 'ready', members: members.length });
  setInterval(() => {
    let witnessKeys = Number.POSITIVE_INFINITY;
    for (const member of members) if (member.view) witnessKeys = Math.min(witnessKeys, member.keys);
    const presenceFrames = members.reduce((n, m) => n + m.frames, 0);
    const presenceBytes = members.reduce((n, m) => n + m.bytes, 0);
    report({
      type: 'report',
      samples,
      cpu: process.cpuUsage(),
      presenceFrames,
      presenceBytes,
      events,
      eventBytes,
      tracked,
      messaged,
      failed,
      firstFailure,
      complete,
      witnessKeys,
      inconsistent,
      firstInconsistency,
      closed,
    });
    samples = [];
  }, 250);
  process.on('message', (command: PresenceCommand) => {
    switch (command.type) {
      case 'storm':
        stormAt = command.at;
        for (const member of members) {
          if (command.spreadMs === 0) subscribe(member);
          else setTimeout(() => subscribe(member), Math.random() * command.spreadMs);
        }
        break;
      case 'pace':
        pace(command.method, command.rate, command.pad);
        break;
      case 'pace-stop':
        if (pacing) clearInterval(pacing);
        pacing = null;
        break;
      case 'summary':
        report({ type: 'summary', members: summary() });
        break;
      case 'stop':
        stopping = true;
        for (const member of members) member.socket.terminate();
        process.exit(0);
    }
  });
}

main().catch((error: unknown) => {
  report({ type: 'error', message: String(error) });
  process.exit(1);
});
