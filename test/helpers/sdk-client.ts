import type { ClientOptions, RowcastClientError } from '@rowcast/client';
import WebSocket from 'ws';

/** `ws` for the SDK on Node 20 (no global WebSocket), recording every frame the client sends into `sent`. */
export function recordingWebSocket(sent: string[]): ClientOptions['WebSocket'] {
  return class extends WebSocket {
    override send(data: string): void {
      sent.push(data);
      super.send(data);
    }
  } as unknown as ClientOptions['WebSocket'];
}

/** The error `promise` rejects with; fails loudly when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<RowcastClientError> {
  try {
    await promise;
  } catch (error) {
    return error as RowcastClientError;
  }
  throw new Error('expected the request to fail');
}
