/**
 * The ingest benchmark's subscriber, in its own process: one admin
 * connection subscribed to a topic, counting event frames without parsing
 * them (so the client is not what is measured), reporting to the parent when
 * `expect` events have arrived, with the time of the last one, its CPU, and
 * how many had arrived when (every 1,000 events).
 */
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';

interface Job {
  readonly url: string;
  readonly secret: string;
  readonly topic: string;
  readonly expect: number;
}

const job = JSON.parse(process.argv[2]!) as Job;
const token = jwt.sign({ sub: 'bench-admin', role: 'admin' }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
const socket = new WebSocket(`${job.url}?token=${token}&client=bench-ingest`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
let received = 0;
/** [epoch ms, events received] every 1,000 events: the throughput-over-time chart. */
const series: Array<[number, number]> = [];
socket.on('message', (data) => {
  const text = data.toString();
  if (text.startsWith('{"type":"event"')) {
    if (++received % 1000 === 0) series.push([Date.now(), received]);
    if (received === job.expect) process.send!({ type: 'done', at: Date.now(), received, cpu: process.cpuUsage(), series });
  } else if (text.startsWith('{"type":"session"')) {
    socket.send(JSON.stringify({ id: 1, method: 'subscribe', attributes: { topicName: job.topic } }));
  } else if (text.includes('"method":"subscribe"')) {
    process.send!(text.includes('"ok":true') ? { type: 'ready' } : { type: 'error', message: text });
  }
});
socket.on('close', (code) => process.send!({ type: 'error', message: `closed with ${code} after ${received} events` }));
process.on('message', (message: { type: string }) => {
  if (message.type === 'stop') {
    socket.terminate();
    process.exit(0);
  }
});
