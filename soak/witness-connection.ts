import WebSocket from 'ws';
import { createClient, type RowcastClient, type SocketConstructor } from '@rowcast/client';
import { signToken } from '../test/helpers/tokens.js';

/** The claims a witness connects with (signed with the test secret the nodes check). */
export type Claims = { readonly sub: string; readonly role?: string };

/**
 * A witness's connection: the client SDK (it reconnects and resubscribes
 * with `since` its last `seq` by itself, and reports `resumed: false` as a
 * resync), plus a way to cut the socket under it, as a network drop would.
 * With several URLs each reconnect goes to the next node.
 */
export class WitnessConnection {
  readonly client: RowcastClient;
  /** Sessions opened (the first and every reconnect). */
  sessions = 0;
  /** The slowest reconnect so far: from a cut to the next session, in ms. */
  slowestReconnectMs = 0;
  /** When the current session opened (epoch ms): events written before it may be replayed ones. */
  openedAt = Infinity;
  #socket: WebSocket | null = null;
  #cutAt: number | null = null;

  constructor(urls: readonly string[], claims: Claims) {
    const track = (socket: WebSocket) => (this.#socket = socket);
    // The SDK opens sockets with `new WebSocket(url, protocols)` (its token rides in them): this one remembers the latest.
    class TrackedSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { perMessageDeflate: false });
        track(this);
      }
    }
    this.client = createClient({
      url: urls,
      // A fresh token on every connect and before `exp`: runs longer than a token's hour stay connected.
      getToken: () => signToken(claims),
      WebSocket: TrackedSocket as unknown as SocketConstructor,
      backoff: { initialMs: 100, maxMs: 2000 },
      client: 'soak-witness',
    });
    this.client.onState((state) => {
      if (state.status !== 'open') return;
      this.sessions++;
      this.openedAt = Date.now();
      if (this.#cutAt !== null) {
        this.slowestReconnectMs = Math.max(this.slowestReconnectMs, Date.now() - this.#cutAt);
        this.#cutAt = null;
      }
    });
  }

  /** Cuts the socket without a close handshake; the SDK reconnects and resumes. */
  cut(): void {
    if (this.client.state.status !== 'open' || !this.#socket) return;
    this.#cutAt = Date.now();
    this.#socket.terminate();
  }

  /** Cuts the socket every `meanMs` or so (uniformly ½–1½ of it) until the returned function is called. */
  cutAtRandom(meanMs: number): () => void {
    let timer: NodeJS.Timeout;
    const next = () => {
      timer = setTimeout(() => {
        this.cut();
        next();
      }, meanMs * (0.5 + Math.random()));
    };
    next();
    return () => clearTimeout(timer);
  }

  close(): void {
    this.client.close();
  }
}
