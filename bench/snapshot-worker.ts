/**
 * A load-generator process for the snapshot benchmark (bench/snapshot.ts):
 * one `/live` connection per user of its job (user u authenticates as
 * `sub: "<u>"`), open with its session and subscribed to nothing. Told to,
 * the named users subscribe to the job's table topic with `snapshot: true`,
 * all at once; each reads its pages as a client would (every page parsed),
 * counting rows, distinct ids and rows it does not own, until the last page
 * (`done: true`). Once every one of them is done (or failed), the worker
 * reports each one's account: times in epoch ms, so that the parent can
 * compare them across workers (one machine, one clock). Told to
 * unsubscribe, every subscribed connection does, so that the next round is
 * a fresh snapshot.
 *
 * A `live` job instead holds plain subscribers of the topic (no snapshot),
 * subscribed as they open, that report each event's `written_at` (epoch
 * ms, read off the text as bench/client-worker.ts does, without parsing the
 * frame) and its commit-to-receive latency every 250 ms: the other users
 * whose latency the snapshots must not hurt. Protocol in
 * bench/lib/snapshot-fleet.ts.
 */
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import type { SnapshotCommand, SnapshotJob, SnapshotReport, SnapshotResult } from './lib/snapshot-fleet.js';

const job = JSON.parse(process.argv[2]!) as SnapshotJob;
const now = () => performance.timeOrigin + performance.now();
const report = (message: SnapshotReport) => process.send!(message);

interface Connection {
  readonly user: number;
  readonly socket: WebSocket;
  /** Its subscription was answered ok (so `unsubscribe` has something to end). */
  subscribed: boolean;
  /** The round it takes part in now, until it is done or failed. */
  round: Round | null;
}

interface Round {
  readonly sentAt: number;
  answeredAt: number | null;
  doneAt: number | null;
  pages: number;
  rows: number;
  readonly ids: Set<string>;
  foreign: number;
  bytes: number;
  error: string | null;
}

// The first letters after `{"type":"`: snapshot / session / subscription, response, event / error.
const TYPE_AT = 9;
const S = 's'.charCodeAt(0);
const N = 'n'.charCodeAt(0);
const SE = 'e'.charCodeAt(0);
const R = 'r'.charCodeAt(0);
const E = 'e'.charCodeAt(0);
const V = 'v'.charCodeAt(0);

const connections = new Map<number, Connection>();
let running: Connection[] = [];
let unsubscribing = 0;
let nextId = 1;
let stopping = false;
/** Live subscribers: `[written_at, latency ms]` pairs since the last report, events received, connections the server closed. */
let samples: number[] = [];
let received = 0;
let closed = 0;
const WRITTEN_AT = '"written_at":';

function onLiveEvent(data: Buffer): void {
  received++;
  const text = data.toString();
  const at = text.lastIndexOf(WRITTEN_AT);
  if (at < 0) return;
  const writtenAt = Number.parseFloat(text.slice(at + WRITTEN_AT.length));
  samples.push(writtenAt, now() - writtenAt);
}

function send(connection: Connection, method: string, attributes: Record<string, unknown>): void {
  connection.socket.send(JSON.stringify({ id: nextId++, method, attributes: { topicName: job.topic, ...attributes } }));
}

const finished = (c: Connection) => c.round !== null && (c.round.doneAt !== null || c.round.error !== null);

/** Reports the round once each of its connections is done or failed. */
function checkRound(): void {
  if (running.length === 0 || !running.every(finished)) return;
  const results: SnapshotResult[] = running.map(({ user, round }) => {
    const { ids, ...rest } = round!;
    return { user, ...rest, distinct: ids.size };
  });
  for (const c of running) c.round = null;
  running = [];
  report({ type: 'done', results, cpu: process.cpuUsage() });
}

function fail(connection: Connection, error: string): void {
  const round = connection.round;
  if (round && round.doneAt === null && round.error === null) {
    round.error = error.slice(0, 300);
    checkRound();
  }
}

function onPage(connection: Connection, data: Buffer): void {
  const round = connection.round;
  if (!round || round.doneAt !== null) {
    fail(connection, 'a snapshot page after the last one');
    return;
  }
  const page = JSON.parse(data.toString()) as { data: Array<{ id: string; attributes: { owner_id: number } }>; done: boolean };
  round.pages++;
  round.bytes += data.length;
  round.rows += page.data.length;
  for (const row of page.data) {
    round.ids.add(row.id);
    if (row.attributes.owner_id !== connection.user) round.foreign++;
  }
  if (page.done) {
    round.doneAt = now();
    checkRound();
  }
}

function onFrame(connection: Connection, data: Buffer): void {
  const type = data[TYPE_AT];
  const second = data[TYPE_AT + 1];
  if (type === S && second === N) onPage(connection, data);
  else if (type === R) {
    const text = data.toString();
    const response = JSON.parse(text) as { method: string; ok: boolean };
    if (response.method === 'subscribe') {
      if (response.ok) {
        connection.subscribed = true;
        if (connection.round) connection.round.answeredAt = now();
      } else fail(connection, text);
    } else if (response.method === 'unsubscribe') {
      connection.subscribed = false;
      if (--unsubscribing === 0) report({ type: 'unsubscribed' });
    }
  } else if (type === E && second === V) {
    // A live subscriber's event (the snapshot clients' table gets no writes).
    if (job.live) onLiveEvent(data);
  } else if (type === S && second !== SE) {
    // A `subscription` frame: the snapshot was revoked after its answer.
    connection.subscribed = false;
    fail(connection, data.toString());
  } else if (type === E) fail(connection, data.toString());
}

/** Opens user `user`'s connection; resolves once its session frame came (a live subscriber: once its subscribe was answered). */
function open(user: number): Promise<Connection> {
  const token = jwt.sign({ sub: String(user) }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const socket = new WebSocket(`${job.urls[user % job.urls.length]}?token=${token}&client=snapshotbench`, { perMessageDeflate: false });
  const connection: Connection = { user, socket, subscribed: false, round: null };
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.on('close', (code) => {
      if (stopping) return;
      closed++;
      reject(new Error(`user ${user}'s connection was closed (${code})`));
      fail(connection, `the server closed the connection (${code})`);
    });
    socket.on('message', (data: Buffer) => {
      if (data[TYPE_AT] === S && data[TYPE_AT + 1] === SE) {
        if (!job.live) resolve(connection);
        else send(connection, 'subscribe', {});
      } else if (job.live && data[TYPE_AT] === R && !connection.subscribed) {
        const text = data.toString();
        if (!text.includes('"ok":true')) reject(new Error(text));
        connection.subscribed = true;
        resolve(connection);
      } else onFrame(connection, data);
    });
  });
}

async function main(): Promise<void> {
  const parallel = 100;
  for (let i = 0; i < job.users.length; i += parallel) {
    for (const connection of await Promise.all(job.users.slice(i, i + parallel).map(open))) connections.set(connection.user, connection);
  }
  report({ type: 'ready', connections: connections.size });
  if (job.live) {
    setInterval(() => {
      report({ type: 'samples', samples, received, closed, cpu: process.cpuUsage() });
      samples = [];
    }, 250);
  }
  process.on('message', (command: SnapshotCommand) => {
    switch (command.type) {
      case 'snapshot': {
        const users = (command.users ?? job.users).filter((user) => connections.has(user));
        running = users.map((user) => connections.get(user)!);
        for (const connection of running) {
          connection.round = { sentAt: now(), answeredAt: null, doneAt: null, pages: 0, rows: 0, ids: new Set(), foreign: 0, bytes: 0, error: null };
          send(connection, 'subscribe', { snapshot: true });
        }
        break;
      }
      case 'unsubscribe': {
        const subscribed = [...connections.values()].filter((c) => c.subscribed);
        unsubscribing = subscribed.length;
        if (unsubscribing === 0) report({ type: 'unsubscribed' });
        for (const connection of subscribed) send(connection, 'unsubscribe', {});
        break;
      }
      case 'stop':
        stopping = true;
        for (const connection of connections.values()) connection.socket.terminate();
        process.exit(0);
    }
  });
}

main().catch((error: unknown) => {
  report({ type: 'error', message: String(error) });
  process.exit(1);
});
