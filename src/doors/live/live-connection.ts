import type { Principal } from '../../auth/principal.js';
import type { Session } from '../../core/session.js';
import type { SubscriptionHandle } from '../../core/session-types.js';
import type { ClientRequest } from '../../protocol/index.js';
import type { RequestQueue } from '../request-queue.js';
import type { Bucket } from '../rate-limiter.js';

/**
 * The state of one `/live` connection, kept as the uWS socket's user data.
 * `closed` is set in the close handler: nothing may touch the socket after.
 */
export interface LiveConnection {
  readonly id: string;
  /** The sanitized `client=` name, or `''`. */
  readonly client: string;
  /** Who the upgrade authenticated (the session's principal follows `refresh-token` later). */
  readonly principal: Principal;
  /** The core's session, from `open` on. */
  session: Session | null;
  /** Its requests, in order (made at `open`). */
  queue: RequestQueue<ClientRequest> | null;
  /** Its subscriptions: one per topic (subscribing again replaces). */
  readonly subscriptions: Map<string, SubscriptionHandle>;
  readonly bucket: Bucket;
  closed: boolean;
}
