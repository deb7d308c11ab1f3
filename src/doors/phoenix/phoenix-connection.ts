import type { Principal } from '../../auth/principal.js';
import type { SubscriptionHandle } from '../../core/session-types.js';
import type { Session } from '../../core/session.js';
import type { Bucket } from '../rate-limiter.js';
import type { RequestQueue } from '../request-queue.js';
import type { PhoenixMessage, Vsn } from './phoenix-wire.js';

/** A joined channel: `table:<name>` and `topic:<name>` hold a subscription; `rowcast` takes requests. */
export interface Channel {
  readonly joinRef: string | null;
  /** The rowcast topic (`''` for `rowcast`). */
  readonly name: string;
  readonly handle: SubscriptionHandle | null;
}

/** The state of one `/socket/websocket` connection, kept as the uWS socket's user data. */
export interface PhoenixConnection {
  readonly id: string;
  readonly client: string;
  readonly principal: Principal;
  readonly vsn: Vsn;
  session: Session | null;
  queue: RequestQueue<PhoenixMessage> | null;
  /** Joined channels by Phoenix topic. */
  readonly channels: Map<string, Channel>;
  readonly bucket: Bucket;
  closed: boolean;
}
