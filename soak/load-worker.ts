/**
 * A load-generator process of the soak (started by soak/load-fleet.ts):
 * holds connections `from … to - 1` of the fleet, each subscribed to the
 * `owner` table as its user; every `chatEvery`-th one also to the two chat
 * topics. Once told to `start`, it drops a share of its connections every
 * second at random (half closed cleanly, half cut) and brings each back a
 * moment later on a random node, resuming with `since` the last `seq` it saw;
 * and it publishes chat messages from random chat connections.
 *
 * Frames are parsed only as far as needed (topic, `seq`, `part` off the
 * text); responses, which are rare, are parsed as JSON. Counters go to the
 * harness every 2 s (see soak/worker-protocol.ts).
 */
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { userOf, type HarnessMessage, type WorkerCounts, type WorkerJob, type WorkerMessage } from './worker-protocol.js';

const job = JSON.parse(process.argv[2]!) as WorkerJob;
const REPORT_EVERY_MS = 2000;
/** Request ids: subscribes use these three, chat messages count up from PUBLISH_IDS. */
const SUBSCRIBE_TABLE = 1;
const SUBSCRIBE_ROOM = 2;
const SUBSCRIBE_PINGS = 3;
const PUBLISH_IDS = 100;
/** A dropped connection stays away this long (uniform), then reconnects. */
const OFFLINE_MS = [200, 3000] as const;
/** After a failure (refused, closed by the server) a connection tries again after this long (uniform). */
const RETRY_MS = [500, 2000] as const;

type State = 'offline' | 'connecting' | 'subscribing' | 'open';

/** One connection of the fleet, across its reconnects. */
interface Connection {
  readonly index: number;
  readonly user: string;
  readonly chat: boolean;
  socket: WebSocket | null;
  state: State;
  /** Why the worker closed the current socket: churn, or to retry after a refused subscribe (null: it did not). */
  closing: 'drop' | 'retry' | null;
  /** `since` for the next subscribe: the last event's seq (with `/part`), else the last answer's seq. */
  tableSince: string | undefined;
  roomSince: string | undefined;
  subscribesLeft: number;
  /** Ids of chat requests sent on the current socket without an answer yet. */
  readonly unanswered: Set<number>;
  /** Resolves the first time the connection is open and subscribed (the ramp waits for it). */
  readonly opened: Promise<void>;
  markOpened: () => void;
}

const counts = {
  open: 0,
  sessions: 0,
  received: { table: 0, room: 0, pings: 0 },
  drops: 0,
  tableResumed: 0,
  tableNotResumed: 0,
  roomResumed: 0,
  roomNotResumed: 0,
  failedConnects: 0,
  failedSubscribes: 0,
  serverCloses: {} as Record<string, number>,
  otherFrames: 0,
  chat: { sent: 0, acked: 0, failed: {} as Record<string, number>, unanswered: 0 },
};
let ackedRoomIds: string[] = [];
let stopping = false;
let nextRequestId = PUBLISH_IDS;
/** Request id → topic of a chat message in flight. */
const publishing = new Map<number, 'room' | 'pings'>();

const expiresAt = Math.floor(Date.now() / 1000) + job.tokenSeconds;
const tokens = new Map<string, string>();
const tokenOf = (user: string): string => {
  let token = tokens.get(user);
  if (token === undefined) {
    token = jwt.sign({ sub: user, exp: expiresAt }, job.secret, { algorithm: 'HS256' });
    tokens.set(user, token);
  }
  return token;
};

const connections: Connection[] = [];
for (let index = job.from; index < job.to; index++) {
  let markOpened!: () => void;
  const opened = new Promise<void>((resolve) => (markOpened = resolve));
  connections.push({
    index,
    user: userOf(index, job.connectionsPerUser),
    chat: index % job.chatEvery === 0,
    socket: null,
    state: 'offline',
    closing: null,
    tableSince: undefined,
    roomSince: undefined,
    subscribesLeft: 0,
    unanswered: new Set(),
    opened,
    markOpened,
  });
}

const between = ([low, high]: readonly [number, number]) => low + Math.random() * (high - low);
const bump = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);

function connect(conn: Connection, node: number): void {
  if (stopping) return;
  const socket = new WebSocket(`${job.urls[node]}?client=soak`, { perMessageDeflate: false, headers: { authorization: `Bearer ${tokenOf(conn.user)}` } });
  conn.socket = socket;
  conn.state = 'connecting';
  conn.closing = null;
  socket.on('message', (data) => {
    if (conn.socket === socket) onFrame(conn, socket, data.toString());
  });
  socket.on('error', () => {
    if (conn.socket === socket && conn.state === 'connecting') counts.failedConnects++;
  });
  socket.on('close', (code) => {
    if (conn.socket === socket) onClose(conn, code);
  });
}

function onClose(conn: Connection, code: number): void {
  const was = conn.state;
  conn.socket = null;
  conn.state = 'offline';
  if (was === 'open') counts.open--;
  counts.chat.unanswered += conn.unanswered.size;
  for (const id of conn.unanswered) publishing.delete(id);
  conn.unanswered.clear();
  if (stopping) return;
  // Not ours: the server closed or cut a connection that had a session (a failed connect is counted on its error).
  if (conn.closing === null && (was === 'open' || was === 'subscribing')) bump(counts.serverCloses, String(code));
  const away = conn.closing === 'drop' ? OFFLINE_MS : RETRY_MS;
  setTimeout(() => connect(conn, Math.floor(Math.random() * job.urls.length)), between(away));
}

function onFrame(conn: Connection, socket: WebSocket, text: string): void {
  if (text.startsWith('{"type":"event"')) return onEvent(conn, text);
  if (text.startsWith('{"type":"response"')) return onResponse(conn, socket, JSON.parse(text) as Response);
  if (text.startsWith('{"type":"session"')) {
    counts.sessions++;
    conn.state = 'subscribing';
    const subscribe = (id: number, topicName: string, since: string | undefined) =>
      socket.send(JSON.stringify({ id, method: 'subscribe', attributes: { topicName, ...(since ? { since } : {}) } }));
    subscribe(SUBSCRIBE_TABLE, job.table, conn.tableSince);
    conn.subscribesLeft = 1;
    if (conn.chat) {
      subscribe(SUBSCRIBE_ROOM, job.room, conn.roomSince);
      // Ephemeral: nothing to resume from.
      subscribe(SUBSCRIBE_PINGS, job.pings, undefined);
      conn.subscribesLeft = 3;
    }
    return;
  }
  counts.otherFrames++;
}

const TOPIC_AT = '{"type":"event","topic":"'.length;

/** Counts the event and keeps its `seq` (and `part`) as the connection's `since` for its topic. */
function onEvent(conn: Connection, text: string): void {
  const topic = text.slice(TOPIC_AT, text.indexOf('"', TOPIC_AT));
  const seqAt = text.indexOf('"seq":"') + 7;
  const seqEnd = text.indexOf('"', seqAt);
  const seq = text.slice(seqAt, seqEnd);
  const since = text.startsWith(',"part":', seqEnd + 1) ? `${seq}/${text[seqEnd + 9]}` : seq;
  if (topic === job.table) {
    counts.received.table++;
    conn.tableSince = since;
  } else if (topic === job.room) {
    counts.received.room++;
    conn.roomSince = since;
  } else if (topic === job.pings) counts.received.pings++;
}

interface Response {
  readonly id: number;
  readonly ok: boolean;
  readonly data?: { seq?: string | null; resumed?: boolean; id?: string };
  readonly error?: { code: string };
}

function onResponse(conn: Connection, socket: WebSocket, response: Response): void {
  if (response.id >= PUBLISH_IDS) {
    const topic = publishing.get(response.id);
    publishing.delete(response.id);
    conn.unanswered.delete(response.id);
    if (response.ok) {
      counts.chat.acked++;
      if (topic === 'room') ackedRoomIds.push(response.data!.id!);
    } else bump(counts.chat.failed, response.error?.code ?? 'unknown');
    return;
  }
  if (!response.ok) {
    counts.failedSubscribes++;
    conn.closing = 'retry';
    socket.close();
    return;
  }
  const data = response.data!;
  if (response.id === SUBSCRIBE_TABLE) {
    if (conn.tableSince !== undefined) data.resumed ? counts.tableResumed++ : counts.tableNotResumed++;
    // Resumed: the replay that follows moves `since` on. Otherwise start from where the answer says.
    if (!data.resumed) conn.tableSince = data.seq ?? undefined;
  } else if (response.id === SUBSCRIBE_ROOM) {
    if (conn.roomSince !== undefined) data.resumed ? counts.roomResumed++ : counts.roomNotResumed++;
    if (!data.resumed) conn.roomSince = data.seq ?? undefined;
  }
  if (--conn.subscribesLeft === 0) {
    conn.state = 'open';
    counts.open++;
    conn.markOpened();
  }
}

/** Opens every connection, `rampConcurrency` at a time; each retries until it is open and subscribed. */
async function ramp(): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < connections.length) {
      const conn = connections[next++]!;
      connect(conn, conn.index % job.urls.length);
      await conn.opened;
    }
  };
  await Promise.all(Array.from({ length: job.rampConcurrency }, lane));
}

function randomOpen(filter: (conn: Connection) => boolean, tries = 20): Connection | null {
  for (let i = 0; i < tries; i++) {
    const conn = connections[Math.floor(Math.random() * connections.length)]!;
    if (conn.state === 'open' && filter(conn)) return conn;
  }
  return null;
}

let timers: NodeJS.Timeout[] = [];

/** Churn: every second, drop about `percent`/60 % of the open connections. */
function startChurn(percentPerMinute: number): void {
  let owed = 0;
  timers.push(
    setInterval(() => {
      owed += (counts.open * percentPerMinute) / 100 / 60;
      for (; owed >= 1; owed--) {
        const conn = randomOpen(() => true);
        if (!conn) continue;
        conn.closing = 'drop';
        counts.drops++;
        if (Math.random() < 0.5) conn.socket!.close(1000, 'soak churn');
        else conn.socket!.terminate();
      }
    }, 1000),
  );
}

/** Chat: `perSecond` messages/s to each chat topic, each from a random open chat connection. */
function startChat(perSecond: number): void {
  const chatters = connections.filter((conn) => conn.chat).length;
  if (chatters === 0 || perSecond <= 0) return;
  let owed = 0;
  timers.push(
    setInterval(() => {
      owed += perSecond / 10;
      for (; owed >= 1; owed--) {
        for (const topic of ['room', 'pings'] as const) {
          const conn = randomOpen((c) => c.chat);
          if (!conn) continue;
          const id = nextRequestId++;
          publishing.set(id, topic);
          conn.unanswered.add(id);
          counts.chat.sent++;
          const message = { text: `soak message ${id} from ${conn.user}`, t: Date.now() };
          conn.socket!.send(JSON.stringify({ id, method: 'new-message', attributes: { topicName: topic === 'room' ? job.room : job.pings, message } }));
        }
      }
    }, 100),
  );
}

function snapshot(): WorkerCounts {
  const cpu = process.cpuUsage();
  return {
    connections: connections.length,
    ...counts,
    received: { ...counts.received },
    serverCloses: { ...counts.serverCloses },
    chat: { ...counts.chat, failed: { ...counts.chat.failed } },
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssMiB: process.memoryUsage.rss() / 2 ** 20,
  };
}

function send(message: WorkerMessage): void {
  process.send!(message);
}

function takeAcked(): string[] {
  const ids = ackedRoomIds;
  ackedRoomIds = [];
  return ids;
}

/** Stops churn and chat, then waits until every connection is back and subscribed (or `timeoutMs` passed). */
async function quiesce(timeoutMs: number): Promise<void> {
  for (const timer of timers) clearInterval(timer);
  timers = [];
  const deadline = Date.now() + timeoutMs;
  let settled = false;
  while (Date.now() < deadline) {
    if (counts.open === connections.length && publishing.size === 0) {
      settled = true;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  send({ type: 'quiesced', counts: snapshot(), ackedRoomIds: takeAcked(), settled });
}

process.on('message', (message: HarnessMessage) => {
  if (message.type === 'start') {
    startChurn(message.churnPercentPerMinute);
    startChat(message.chatPerSecond);
  } else if (message.type === 'quiesce') {
    void quiesce(message.timeoutMs);
  } else if (message.type === 'stop') {
    stopping = true;
    for (const conn of connections) conn.socket?.terminate();
    process.exit(0);
  }
});
// The harness went away (killed): do not linger holding sockets.
process.on('disconnect', () => process.exit(0));

try {
  const started = performance.now();
  await ramp();
  send({ type: 'ready', counts: snapshot(), rampSeconds: (performance.now() - started) / 1000 });
  setInterval(() => send({ type: 'report', counts: snapshot(), ackedRoomIds: takeAcked() }), REPORT_EVERY_MS).unref();
} catch (error) {
  send({ type: 'error', message: String(error) });
  process.exit(1);
}
