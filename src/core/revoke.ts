import type { SubscriptionHandle } from './session-types.js';
import type { SubscriptionIndex } from './subscription-index.js';

/** Ends a subscription the server withdraws (policy or token change, topic destroyed) and has its door tell the client why. */
export function revoke(index: SubscriptionIndex, handle: SubscriptionHandle, reason: string): void {
  if (!index.unsubscribe(handle)) return;
  if (!handle.session.closed) handle.session.port.revoked(handle, reason);
}
