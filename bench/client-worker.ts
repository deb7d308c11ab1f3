/**
 * A load-generator process for the benchmarks: opens connections for users
 * `from` … `to - 1`, subscribes each to one topic, and reports commit-to-
 * receive latency samples (µs, from the row's `written_at` in epoch ms) and
 * its own CPU to the parent over IPC.
 */
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

async function open(user: number): Promise<void> {
  const token = jwt.sign({ sub: String(user) }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const url = `${job.urls[user % job.urls.length]}?token=${token}&client=bench`;
  const socket = new WebSocket(url, { perMessageDeflate: false });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"type":"event"')) {
        const frame = JSON.parse(text);
        received++;
        samples.push(Math.max(0, Math.round((Date.now() - frame.data.attributes.written_at) * 1000)));
      } else if (text.includes('"method":"subscribe"')) {
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
    process.send!({ type: 'samples', samples, received, cpu: process.cpuUsage() });
    samples = [];
  }, 250);
  process.on('message', (message: { type: string }) => {
    if (message.type === 'stop') {
      for (const socket of sockets) socket.terminate();
      process.exit(0);
    }
  });
}

main().catch((error: unknown) => {
  process.send!({ type: 'error', message: String(error) });
  process.exit(1);
});
