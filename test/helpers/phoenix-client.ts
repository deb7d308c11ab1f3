import { Socket, type Channel } from 'phoenix';
import WebSocket from 'ws';

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

/** Collects a channel's pushes of the given events, and waits for a number of them. */
export class Collected<T = Record<string, any>> {
  readonly items: Array<{ event: string; payload: T }> = [];
  #waiters: Array<() => void> = [];

  constructor(channel: Channel, events: readonly string[]) {
    for (const event of events) {
      channel.on(event, (payload) => {
        this.items.push({ event, payload: payload as T });
        for (const wake of this.#waiters.splice(0)) wake();
      });
    }
  }

  /** Resolves once `count` items arrived; fails loudly after `timeoutMs`. */
  async atLeast(count: number, timeoutMs = 10_000): Promise<Array<{ event: string; payload: T }>> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} pushes, got ${this.items.length}: ${JSON.stringify(this.items)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.items;
  }
}
