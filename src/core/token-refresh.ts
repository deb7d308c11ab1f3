import { RowcastError } from '../errors.js';
import type { ResponseData } from '../protocol/index.js';
import type { CoreContext } from './core-context.js';
import { revoke } from './revoke.js';
import type { SessionState } from './session-types.js';
import { grantOf, topicNamed } from './topic-access.js';

/**
 * `refresh-token`: replaces the session's token before it expires (the
 * connection is closed at `exp` otherwise). The new token must be for the
 * same `sub`: a different user reconnects. Subscriptions the new token reads
 * differently (lost access, other groups, lost admin) are revoked, since the
 * client's cache was built under the old rights; the others go on untouched.
 */
export function refreshToken(context: CoreContext, session: SessionState, token: string): ResponseData['refresh-token'] {
  const principal = context.verifyToken(token);
  if (principal.sub !== session.principal.sub) {
    throw new RowcastError('FORBIDDEN', 'refresh-token must be for the same sub as the connection; connect again to change users');
  }
  session.principal = principal;
  context.tokenRefreshed(session);
  const revoked: string[] = [];
  for (const handle of [...session.handles]) {
    const topic = topicNamed(context.registry, handle.topic);
    const partitions = topic ? grantOf(topic, principal) : null;
    if (partitions !== null && samePartitions(partitions, handle.partitions)) continue;
    revoke(context.index, handle, partitions === null ? 'the new token does not allow reading this topic' : 'the new token reads this topic differently: subscribe again and refetch');
    revoked.push(handle.topic);
  }
  return { sub: principal.sub, role: principal.role, expiresAt: principal.expiresAt === null ? null : new Date(principal.expiresAt).toISOString(), revoked };
}

function samePartitions(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((partition) => b.includes(partition));
}
