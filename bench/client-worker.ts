/**
 * A load-generator process for the benchmarks: opens connections for users
 * `from` … `to - 1` (user i gets the token `sub: "<i>"` and the URL
 * `urls[i % urls.length]`), subscribes each to one topic, and reports to the
 * parent over IPC: commit-to-receive latency samples (µs, from the frame's
 * `written_at` in epoch ms), events received, connections closed, and its own
 * CPU. Frames are not parsed: `written_at` is read off the text, so the
 * generator spends as little as it can per frame.
 *
 * A job may instead make one user hold many connections (`user`), each
 * subscribed with its own hostile filter (`filters`), opening until the
 * server refuses one with `LIMIT_EXCEEDED` (`untilRefused`): the hostile
 * tenant of bench/hostile-tenant.ts.
 */
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { hostileFilter, type HostileFilterPlan } from './lib/hostile-filters.js';

interface Job {
  readonly urls: string[];
  readonly secret: string;
  readonly topic: string;
  readonly from: number;
  readonly to: number;
  /** Every connection authenticates as this user (default: connection i as user i). */
  readonly user?: string;
  /** Connection i subscribes with `hostileFilter(filters, i)` (default: no filter). */
  readonly filters?: HostileFilterPlan;
  /** A subscribe refused with LIMIT_EXCEEDED stops the opening (its connection is closed) instead of failing the job. */
  readonly untilRefused?: boolean;
  /** `phoenix`: connect to the Phoenix door (the URLs' `/live` becomes `/socket/websocket`) and join `table:<topic>`. */
  readonly door?: 'live' | 'phoenix';
}

const job = JSON.parse(process.argv[2]!) as Job;
const sockets = new Set<WebSocket>();
let samples: number[] = [];
let received = 0;
let closed = 0;
let stopping = false;
const WRITTEN_AT = '"written_at":';

/** Wall-clock time in ms with sub-ms precision (Date.now() has whole ms only). */
const now = () => performance.timeOrigin + performance.now();

function onEvent(text: string): void {
  received++;
  const at = text.lastIndexOf(WRITTEN_AT);
  if (at >= 0) samples.push(Math.max(1, Math.round((now() - Number.parseFloat(text.slice(at + WRITTEN_AT.length))) * 1000)));
}

/** Opens connection `i` and subscribes it; resolves with null once subscribed, or with the refusal (`untilRefused`). */
async function open(i: number): Promise<string | null> {
  if (job.door === 'phoenix') return openPhoenix(i);
  const token = jwt.sign({ sub: job.user ?? String(i) }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const url = `${job.urls[i % job.urls.length]}?token=${token}&client=bench`;
  const socket = new WebSocket(url, { perMessageDeflate: false });
  sockets.add(socket);
  socket.on('close', () => {
    if (!stopping && sockets.has(socket)) closed++;
  });
  const subscribe = { id: 1, method: 'subscribe', attributes: { topicName: job.topic, ...(job.filters ? { filter: hostileFilter(job.filters, i) } : {}) } };
  return new Promise<string | null>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', (code) => reject(new Error(`connection ${i} was closed (${code}) before its subscribe was answered`)));
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"type":"event"')) onEvent(text);
      else if (text.includes('"method":"subscribe"')) {
        if (text.includes('"ok":true')) resolve(null);
        else if (job.untilRefused && text.includes('"code":"LIMIT_EXCEEDED"')) {
          sockets.delete(socket); // closed on purpose: not counted as closed by the server
          socket.close();
          resolve(text);
        } else reject(new Error(text));
      } else if (text.startsWith('{"type":"session"')) {
        socket.send(JSON.stringify(subscribe));
      }
    });
  });
}

/** Connection `i` on the Phoenix door (vsn 2.0.0): joins `table:<topic>`; heartbeats keep it open past Phoenix's 60 s idle close. */
async function openPhoenix(i: number): Promise<null> {
  const token = jwt.sign({ sub: job.user ?? String(i) }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const url = `${job.urls[i % job.urls.length]!.replace(/\/live$/, '/socket/websocket')}?vsn=2.0.0&token=${token}`;
  const socket = new WebSocket(url, { perMessageDeflate: false });
  sockets.add(socket);
  socket.on('close', () => {
    if (!stopping && sockets.has(socket)) closed++;
  });
  return new Promise<null>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', (code) => reject(new Error(`connection ${i} was closed (${code}) before its join was answered`)));
    socket.once('open', () => {
      socket.send(JSON.stringify(['1', '1', `table:${job.topic}`, 'phx_join', {}]));
      const heartbeat = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify([null, 'hb', 'phoenix', 'heartbeat', {}])), 25_000);
      socket.once('close', () => clearInterval(heartbeat));
    });
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('[null,null,')) onEvent(text);
      else if (text.startsWith('["1","1",')) {
        if (text.includes('"status":"ok"')) resolve(null);
        else reject(new Error(text));
      }
    });
  });
}

async function main(): Promise<void> {
  const ids = Array.from({ length: job.to - job.from }, (_, i) => job.from + i);
  const parallel = 100;
  let refused: string | null = null;
  for (let i = 0; i < ids.length && refused === null; i += parallel) {
    const answers = await Promise.all(ids.slice(i, i + parallel).map(open));
    refused = answers.find((answer) => answer !== null) ?? null;
  }
  process.send!({ type: 'ready', connections: sockets.size, refused });
  setInterval(() => {
    process.send!({ type: 'report', samples, received, closed, cpu: process.cpuUsage() });
    samples = [];
  }, 250);
  process.on('message', (message: { type: string }) => {
    if (message.type === 'stop') {
      stopping = true;
      for (const socket of sockets) socket.terminate();
      process.exit(0);
    }
  });
}

main().catch((error: unknown) => {
  process.send!({ type: 'error', message: String(error) });
  process.exit(1);
});
