import { RealtimeClient, type RealtimeChannel } from '@supabase/realtime-js';
import WebSocket from 'ws';

/** A real `@supabase/realtime-js` client on Node 20 (`ws` as transport), pointed at rowcast's Supabase door. */
export function realtimeClient(port: number, apikey: string, vsn: '1.0.0' | '2.0.0' = '2.0.0', options: Record<string, unknown> = {}): RealtimeClient {
  return new RealtimeClient(`ws://127.0.0.1:${port}/realtime/v1`, {
    params: { apikey },
    transport: WebSocket as never,
    vsn,
    heartbeatIntervalMs: 25_000,
    reconnectAfterMs: () => 100,
    ...options,
  } as ConstructorParameters<typeof RealtimeClient>[1]);
}

/** Subscribes `channel`: resolves at SUBSCRIBED, rejects with the status and error otherwise; `later` hears the statuses after (CLOSED, …). */
export function subscribed(channel: RealtimeChannel, timeoutMs = 10_000, later?: (status: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    channel.subscribe(
      (status, error) => {
        if (done) return void later?.(status);
        done = true;
        if (status === 'SUBSCRIBED') resolve();
        else reject(Object.assign(new Error(`${channel.topic}: ${status}${error ? ` (${error.message})` : ''}`), { status }));
      },
      timeoutMs,
    );
  });
}

/** Collects what a callback receives, and waits for a number of items. */
export class Inbox<T = any> {
  readonly items: T[] = [];
  #waiters: Array<() => void> = [];

  /** The callback to give to `channel.on(…)`. */
  readonly add = (item: T): void => {
    this.items.push(item);
    for (const wake of this.#waiters.splice(0)) wake();
  };

  /** Resolves once `count` items arrived; fails loudly after `timeoutMs`. */
  async atLeast(count: number, timeoutMs = 10_000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} items, got ${this.items.length}: ${JSON.stringify(this.items)}`);
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
