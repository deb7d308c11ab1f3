import type { SubscriptionHandle } from '../../core/session-types.js';
import type { ClientRequest } from '../../protocol/index.js';
import type { DoorConnection } from '../door-socket.js';

/** The state of one `/live` connection, kept as the uWS socket's user data. */
export interface LiveConnection extends DoorConnection<ClientRequest> {
  /** Its subscriptions: one per topic (subscribing again replaces). */
  readonly subscriptions: Map<string, SubscriptionHandle>;
}
