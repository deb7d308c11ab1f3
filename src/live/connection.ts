import type { Principal } from '../auth/principal.js';
import type { ClientRequest } from './protocol.js';
import type { Bucket } from './rate-limiter.js';
import type { Subscription } from './subscription-index.js';

/**
 * The state of one /live connection, kept as the uWS socket's user data.
 * `closed` is set in the close handler: nothing may touch the socket after.
 */
export interface Connection {
  readonly id: string;
  /** The sanitized `client=` name, or `''`. */
  readonly client: string;
  principal: Principal;
  /** Topic name → its subscription (kept by the SubscriptionIndex). */
  readonly subscriptions: Map<string, Subscription>;
  closed: boolean;
  /** When its unsent bytes first passed the high-water mark (0: they are below it). */
  congestedSince: number;
  /** Unsent bytes at the last look while congested, and when they last went down. */
  congestedBytes: number;
  drainedAt: number;
  /** An asynchronous request is being answered: later ones wait in `queue`. */
  busy: boolean;
  /** Requests waiting, first in first out, and the bytes of their frames (bounded: `MAX_PENDING_REQUESTS`). */
  readonly queue: Array<{ readonly request: ClientRequest; readonly bytes: number }>;
  queuedBytes: number;
  /** Its rate limiter's token bucket. */
  readonly bucket: Bucket;
}
