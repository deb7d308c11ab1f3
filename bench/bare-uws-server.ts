/**
 * The fan-out benchmark's ceiling: a bare uWebSockets.js server, same package
 * and build as rowcast's, that accepts any connection on /live, answers
 * `subscribe` by subscribing the socket to one uWS topic, and, when the
 * parent says so over IPC, publishes event frames of rowcast's shape and size
 * to that topic at a steady rate. No tokens, no database, no permission
 * index: what is left is uWS's own fan-out, on the same sockets.
 *
 * Usage (forked): bare-uws-server.ts <port>; IPC {type: 'publish', rate} /
 * {type: 'stop-publishing'}; it sends {type: 'listening'} and, on stop,
 * {type: 'published', count}.
 */
import { performance } from 'node:perf_hooks';
import uWS from 'uWebSockets.js';
import { pace, type Pacer } from './lib/measure.js';

const port = Number(process.argv[2]);
const TOPIC = 'bench_public';
const app = uWS.App();
app.ws('/live', {
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  open: (ws) => {
    ws.send(JSON.stringify({ type: 'session', connectionId: 'bare' }));
  },
  message: (ws, message) => {
    const request = JSON.parse(Buffer.from(message).toString()) as { id: number; method: string; attributes: { topicName: string } };
    if (request.method === 'subscribe') ws.subscribe(request.attributes.topicName);
    ws.send(JSON.stringify({ type: 'response', id: request.id, method: request.method, ok: true, data: {} }));
  },
});

/** A frame the size and shape of rowcast's for a `bench_public` insert. */
function frame(id: number): string {
  const writtenAt = performance.timeOrigin + performance.now();
  const seq = `${(0x1000000 + id).toString(16).padStart(16, '0').toUpperCase()}-00000000`;
  return JSON.stringify({
    type: 'event',
    topic: TOPIC,
    event: 'create',
    seq,
    ts: new Date(writtenAt).toISOString(),
    data: { type: TOPIC, id: String(id), attributes: { id: String(id), amount: id, written_at: writtenAt } },
  });
}

let publishing: Pacer | undefined;
process.on('message', (message: { type: string; rate?: number }) => {
  if (message.type === 'publish') {
    publishing = pace(message.rate!, async (i) => {
      app.publish(TOPIC, frame(i + 1), false);
    });
  }
  if (message.type === 'stop-publishing' && publishing) {
    void publishing.stop().then((count) => process.send!({ type: 'published', count }));
    publishing = undefined;
  }
});

app.listen('0.0.0.0', port, (token) => {
  if (!token) {
    console.error(`bare uWS server: cannot listen on ${port}`);
    process.exit(1);
  }
  process.send!({ type: 'listening' });
});
