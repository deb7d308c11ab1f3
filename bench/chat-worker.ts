/**
 * A load-generator process for the chat benchmark. `subscribe`: opens
 * `count` connections subscribed to a topic and reports publish-to-receive
 * latency samples (µs; each message carries its send time). `publish`: opens
 * `count` connections that keep `window` new-message requests in flight each
 * until told to stop, and reports how many were acknowledged. Told to
 * drain, publishers send nothing more and report `drained` once every
 * request they sent has its answer (so that the benchmark can check that
 * every acknowledged message arrived).
 */
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';

interface Job {
  readonly role: 'subscribe' | 'publish';
  readonly url: string;
  readonly secret: string;
  readonly topic: string;
  readonly count: number;
  readonly window: number;
}

const job = JSON.parse(process.argv[2]!) as Job;
let samples: number[] = [];
let received = 0;
let acknowledged = 0;
let failed = 0;
let running = true;
/** Requests sent and not answered yet, over all connections. */
let outstanding = 0;
let draining = false;

function connect(i: number): Promise<WebSocket> {
  const token = jwt.sign({ sub: `${job.role}-${i}` }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const socket = new WebSocket(`${job.url}?token=${token}&client=chatbench`, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('message', () => resolve(socket));
  });
}

async function subscriber(socket: WebSocket, first: boolean): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"type":"event"')) {
        const frame = JSON.parse(text);
        if (first) {
          received++;
          samples.push(Math.max(1, Math.round((Date.now() - frame.data.attributes.message.t) * 1000)));
        }
      } else if (text.includes('"method":"subscribe"')) {
        if (text.includes('"ok":true')) resolve();
        else reject(new Error(text));
      }
    });
    socket.send(JSON.stringify({ id: 0, method: 'subscribe', attributes: { topicName: job.topic } }));
  });
}

function publisher(socket: WebSocket): void {
  let next = 1;
  const send = () => {
    if (!running) return;
    outstanding++;
    socket.send(JSON.stringify({ id: next++, method: 'new-message', attributes: { topicName: job.topic, message: { t: Date.now() } } }));
  };
  socket.on('message', (data) => {
    const text = data.toString();
    if (!text.startsWith('{"type":"response"')) return;
    outstanding--;
    if (text.includes('"ok":true')) acknowledged++;
    else failed++;
    send();
    if (draining && outstanding === 0) process.send!({ type: 'drained', samples: [], received, acknowledged, failed, cpu: process.cpuUsage() });
  });
  for (let i = 0; i < job.window; i++) send();
}

async function main(): Promise<void> {
  const sockets = await Promise.all(Array.from({ length: job.count }, (_, i) => connect(i)));
  if (job.role === 'subscribe') await Promise.all(sockets.map((s, i) => subscriber(s, i === 0)));
  process.send!({ type: 'ready' });
  process.on('message', (message: { type: string }) => {
    if (message.type === 'start' && job.role === 'publish') for (const s of sockets) publisher(s);
    if (message.type === 'drain') {
      running = false;
      draining = true;
      if (outstanding === 0) process.send!({ type: 'drained', samples: [], received, acknowledged, failed, cpu: process.cpuUsage() });
    }
    if (message.type === 'stop') {
      running = false;
      for (const s of sockets) s.terminate();
      process.exit(0);
    }
  });
  setInterval(() => {
    process.send!({ type: 'report', samples, received, acknowledged, failed, cpu: process.cpuUsage() });
    samples = [];
  }, 250);
}

main().catch((error: unknown) => {
  process.send!({ type: 'error', message: String(error) });
  process.exit(1);
});
