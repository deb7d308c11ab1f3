import type { SubscriptionHandle } from '../../core/session-types.js';
import type { DoorConnection } from '../door-socket.js';
import type { PhoenixMessage, Vsn } from './phoenix-wire.js';

/** A joined channel: `table:<name>` and `topic:<name>` hold a subscription; `rowcast` takes requests. */
export interface Channel {
  readonly joinRef: string | null;
  /** The rowcast topic (`''` for `rowcast`). */
  readonly name: string;
  readonly handle: SubscriptionHandle | null;
}

/** The state of one `/socket/websocket` connection, kept as the uWS socket's user data. */
export interface PhoenixConnection extends DoorConnection<PhoenixMessage> {
  readonly vsn: Vsn;
  /** Joined channels by Phoenix topic. */
  readonly channels: Map<string, Channel>;
}
