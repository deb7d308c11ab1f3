/**
 * A load-generator process for the benchmarks: opens connections for users
 * `from` … `to - 1` (user i gets the token `sub: "<i>"` and the URL
 * `urls[i % urls.length]`), subscribes each to one topic, and reports to the
 * parent over IPC: commit-to-receive latency samples (µs, from the frame's
 * `written_at` in epoch ms), events received, connections closed, and its own
 * CPU. Frames are not parsed: `written_at` is read off the text, so the
 * generator spends as little as it can per frame.
 */
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';

interface Job {
  readonly urls: string[];
  readonly secret: string;
  readonly topic: string;
  readonly from: number;
  readonly to: number;
}

const job = JSON.parse(process.argv[2]!) as Job;
const sockets: WebSocket[] = [];
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

async function open(user: number): Promise<void> {
  const token = jwt.sign({ sub: String(user) }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const url = `${job.urls[user % job.urls.length]}?token=${token}&client=bench`;
  const socket = new WebSocket(url, { perMessageDeflate: false });
  sockets.push(socket);
  socket.on('close', () => {
    if (!stopping) closed++;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"type":"event"')) onEvent(text);
      else if (text.includes('"method":"subscribe"')) {
        if (!text.includes('"ok":true')) reject(new Error(text));
        else resolve();
      } else if (text.startsWith('{"type":"session"')) {
        socket.send(JSON.stringify({ id: 1, method: 'subscribe', attributes: { topicName: job.topic } }));
      }
    });
  });
}

async function main(): Promise<void> {
  const users = Array.from({ length: job.to - job.from }, (_, i) => job.from + i);
  const parallel = 100;
  for (let i = 0; i < users.length; i += parallel) await Promise.all(users.slice(i, i + parallel).map(open));
  process.send!({ type: 'ready', connections: sockets.length });
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
