import type { SubscriptionHandle } from '../../core/session-types.js';
import type { ClientRequest } from '../../protocol/index.js';
import type { DoorConnection } from '../door-socket.js';

/** The state of one `/live` connection, kept as the uWS socket's user data. */
export interface LiveConnection extends DoorConnection<ClientRequest> {
  /** Its subscriptions, by topic, and by name for named ones (`as`: see subscriptionKey); subscribing again to a topic (with the same name) replaces. */
  readonly subscriptions: Map<string, SubscriptionHandle>;
  /** Opened without a token (`AUTH_FIRST_FRAME`) and its `auth` frame not come yet. */
  awaitingAuth: boolean;
  /** Ends the connection when the `auth` frame does not come in time. */
  authTimer: NodeJS.Timeout | null;
}
