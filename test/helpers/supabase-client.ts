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

export { Inbox } from './inbox.js';
