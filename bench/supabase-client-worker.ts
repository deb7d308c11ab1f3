/**
 * A load-generator process for bench/doors.ts: connections on the Supabase
 * Realtime door (`/realtime/v1/websocket`, vsn 2.0.0) that join a channel the
 * way `@supabase/realtime-js` does — `phx_join` of `realtime:<name>` with
 * `config.postgres_changes` = one `{event: "*", schema: "public", table}`
 * binding — and count the `postgres_changes` events of that binding. Raw `ws`
 * sockets, as bench/client-worker.ts drives the Phoenix door, so a process
 * holds thousands; it speaks that worker's IPC (bench/lib/supabase-fleet.ts):
 * `ready` once every connection is joined, then a `report` every 250 ms
 * (commit-to-receive samples in µs from the row's `written_at`, events
 * received, connections closed, its CPU), plus anything unexpected.
 *
 * Connection i uses the token `sub: "<i>"` as its `apikey` and the URL
 * `urls[i % urls.length]` with `/live` replaced by `/realtime/v1/websocket`.
 * Its channel is `realtime:<channel>` (`distinct`: `realtime:<channel>-<i>`,
 * so no two sockets share frames).
 *
 * What realtime-js checks is checked here too, cheaply: the join reply echoes
 * the binding (event, schema, table) with an id, and an event belongs to the
 * binding when its `ids` hold that id (the frame starts
 * `[null,null,"realtime:<name>","postgres_changes",{"ids":[<id>]`, so that is
 * a prefix test, not a parse). The channel's presence frames are expected too
 * (it is an open channel). Frames that fit nothing expected — a `system`
 * error, an event for another id, a `phx_error`/`phx_close`, a failed
 * heartbeat — are counted and the first few kept, for the benchmark to report.
 */
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';

interface Job {
  readonly urls: string[];
  readonly secret: string;
  /** The table the binding names (schema `public`). */
  readonly table: string;
  /** The channel name (`realtime:<channel>`). */
  readonly channel: string;
  /** Each connection gets its own channel name (`<channel>-<i>`). */
  readonly distinct?: boolean;
  readonly from: number;
  readonly to: number;
}

const job = JSON.parse(process.argv[2]!) as Job;
const sockets = new Set<WebSocket>();
let samples: number[] = [];
let received = 0;
let closed = 0;
let unexpected = 0;
const unexpectedFrames: string[] = [];
let stopping = false;
const WRITTEN_AT = '"written_at":';
/** realtime-js heartbeats every 25 s; the door closes a socket silent for 60 s. */
const HEARTBEAT_MS = 25_000;

/** Wall-clock time in ms with sub-ms precision (Date.now() has whole ms only). */
const now = () => performance.timeOrigin + performance.now();

function strange(text: string): void {
  unexpected++;
  if (unexpectedFrames.length < 5) unexpectedFrames.push(text.slice(0, 400));
}

function onEvent(text: string): void {
  received++;
  const at = text.lastIndexOf(WRITTEN_AT);
  if (at >= 0) samples.push(Math.max(1, Math.round((now() - Number.parseFloat(text.slice(at + WRITTEN_AT.length))) * 1000)));
}

/** Opens connection `i` and joins its channel; resolves once the join is answered ok with the binding echoed. */
function open(i: number): Promise<void> {
  const token = jwt.sign({ sub: String(i) }, job.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const url = `${job.urls[i % job.urls.length]!.replace(/\/live$/, '/realtime/v1/websocket')}?apikey=${token}&vsn=2.0.0`;
  const topic = `realtime:${job.distinct ? `${job.channel}-${i}` : job.channel}`;
  const binding = { event: '*', schema: 'public', table: job.table };
  const join = ['1', '1', topic, 'phx_join', { config: { broadcast: { self: false, ack: false }, presence: { key: '', enabled: false }, postgres_changes: [binding], private: false } }];
  const replyPrefix = `["1","1",${JSON.stringify(topic)},"phx_reply",`;
  const systemPrefix = `[null,null,${JSON.stringify(topic)},"system",`;
  const changePrefix = `[null,null,${JSON.stringify(topic)},"postgres_changes",`;
  // The channel is an open channel, so it has presence: its state follows every join (nobody tracks here).
  const presencePrefix = `[null,null,${JSON.stringify(topic)},"presence_`;
  let eventPrefix: string | null = null;
  let ref = 1; // the join's
  const socket = new WebSocket(url, { perMessageDeflate: false });
  sockets.add(socket);
  socket.on('close', () => {
    if (!stopping && sockets.has(socket)) closed++;
  });
  return new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', (code) => reject(new Error(`connection ${i} was closed (${code}) before its join was answered`)));
    socket.once('open', () => {
      socket.send(JSON.stringify(join));
      const heartbeat = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify([null, String(++ref), 'phoenix', 'heartbeat', {}])), HEARTBEAT_MS);
      socket.once('close', () => clearInterval(heartbeat));
    });
    socket.on('message', (data) => {
      const text = data.toString();
      if (eventPrefix !== null && text.startsWith(eventPrefix)) return onEvent(text);
      if (text.startsWith(changePrefix)) return strange(text); // an event, but not for our binding's id (or before the join's reply)
      if (text.startsWith(replyPrefix)) {
        // The join's reply, as realtime-js reads it: status ok, and the binding echoed (with its id).
        const reply = JSON.parse(text) as [null, null, string, string, { status: string; response: { postgres_changes?: Array<Record<string, unknown>> } }];
        const echoed = reply[4].response.postgres_changes?.[0];
        if (reply[4].status !== 'ok') return reject(new Error(`connection ${i}: join refused: ${text}`));
        if (reply[4].response.postgres_changes?.length !== 1 || !echoed || echoed['event'] !== '*' || echoed['schema'] !== 'public' || echoed['table'] !== job.table || typeof echoed['id'] !== 'number') {
          return reject(new Error(`connection ${i}: the join reply does not echo the binding as realtime-js expects: ${text}`));
        }
        eventPrefix = `${changePrefix}{"ids":[${echoed['id']}]`;
        return resolve();
      }
      if (text.startsWith(presencePrefix)) return;
      if (text.startsWith(systemPrefix)) {
        if (!text.includes('"status":"ok"')) strange(text);
        return;
      }
      if (text.startsWith('[null,') && text.includes('"phoenix","phx_reply"') && text.includes('"status":"ok"')) return; // a heartbeat's reply
      strange(text);
    });
  });
}

async function main(): Promise<void> {
  const ids = Array.from({ length: job.to - job.from }, (_, i) => job.from + i);
  const parallel = 100;
  for (let i = 0; i < ids.length; i += parallel) await Promise.all(ids.slice(i, i + parallel).map(open));
  process.send!({ type: 'ready', connections: sockets.size });
  setInterval(() => {
    process.send!({ type: 'report', samples, received, closed, unexpected, unexpectedFrames, cpu: process.cpuUsage() });
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
