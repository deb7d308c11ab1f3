import { Socket, type Channel } from 'phoenix';
import WebSocket from 'ws';
import { Inbox } from './inbox.js';

/** phoenix.js has no V1 serializer built in: these are its JSON-object `encode`/`decode` for `vsn: '1.0.0'`. */
const V1 = {
  encode: (msg: { join_ref: string | null; ref: string | null; topic: string; event: string; payload: unknown }, callback: (text: string) => void) =>
    callback(JSON.stringify({ topic: msg.topic, event: msg.event, payload: msg.payload, ref: msg.ref, join_ref: msg.join_ref })),
  decode: (raw: string, callback: (msg: unknown) => void) => {
    const { topic, event, payload, ref, join_ref: joinRef = null } = JSON.parse(raw) as Record<string, unknown>;
    callback({ topic, event, payload, ref, join_ref: joinRef });
  },
};

/** A real phoenix.js Socket on Node 20 (`ws` as transport), connected to rowcast's Phoenix door. */
export function phoenixSocket(port: number, token: string, vsn: '1.0.0' | '2.0.0' = '2.0.0'): Socket {
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
    transport: WebSocket,
    params: { token },
    heartbeatIntervalMs: 30_000,
    reconnectAfterMs: () => 100,
    rejoinAfterMs: () => 100,
    ...(vsn === '1.0.0' ? { vsn, ...V1 } : {}),
  } as ConstructorParameters<typeof Socket>[1]);
  socket.connect();
  return socket;
}

/** Joins `channel`: the ok reply, or a rejection with the error reply. */
export function join(channel: Channel, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    channel
      .join(timeoutMs)
      .receive('ok', (reply) => resolve(reply as Record<string, unknown>))
      .receive('error', (reply) => reject(Object.assign(new Error(`join failed: ${JSON.stringify(reply)}`), { reply })))
      .receive('timeout', () => reject(new Error(`join of ${channel.topic} timed out`)));
  });
}

/** Pushes `event` on `channel`: the ok reply's response, or a rejection carrying the error reply. */
export function pushAndWait(channel: Channel, event: string, payload: object, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    channel
      .push(event, payload, timeoutMs)
      .receive('ok', (reply) => resolve(reply as Record<string, unknown>))
      .receive('error', (reply) => reject(Object.assign(new Error(`${event} failed: ${JSON.stringify(reply)}`), { reply })))
      .receive('timeout', () => reject(new Error(`${event} on ${channel.topic} timed out`)));
  });
}

/** Collects a channel's pushes of the given events, and waits for a number of them (`atLeast`). */
export class Collected<T = Record<string, any>> extends Inbox<{ event: string; payload: T }> {
  constructor(channel: Channel, events: readonly string[]) {
    super();
    for (const event of events) channel.on(event, (payload) => this.add({ event, payload: payload as T }));
  }
}
