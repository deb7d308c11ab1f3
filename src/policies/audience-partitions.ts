import type { Principal } from '../auth/principal.js';
import type { ReadPolicy } from './read-policy.js';
import type { Row } from '../replication/transaction.js';

/**
 * Audience partitions (DESIGN.md §4): the uWS topics an event of table topic
 * `t` is published to. `t|*` public, `t|u|<owner>`, `t|g|<group>`, and
 * `t|all` for admins. An event goes to its row's partitions plus `t|all`; a
 * connection subscribes to the partitions its principal is granted. The cost
 * of an event is the number of its partitions, never the number of
 * subscribers.
 */

/** The partition every admin of topic `topic` subscribes to. */
export function adminPartition(topic: string): string {
  return `${topic}|all`;
}

/**
 * The partitions of `row` under `policy`, without `t|all`. A row whose owner
 * or group column is null belongs to no user partition (admins only).
 *
 * @example
 * audiencePartitions('order', { read: 'owner', ownerColumn: 'user_id' }, { user_id: 42 }) // ['order|u|42']
 */
export function audiencePartitions(topic: string, policy: ReadPolicy, row: Row): readonly string[] {
  switch (policy.read) {
    case 'public':
      return [`${topic}|*`];
    case 'owner': {
      const owner = row[policy.ownerColumn];
      return owner === null || owner === undefined ? NONE : [`${topic}|u|${String(owner)}`];
    }
    case 'group': {
      const group = row[policy.groupColumn];
      return group === null || group === undefined ? NONE : [`${topic}|g|${String(group)}`];
    }
    case 'admin':
      return NONE;
  }
}

/**
 * The partitions `principal` may subscribe to on `topic`, or `null` when it
 * may not read the topic at all.
 */
export function grantedPartitions(topic: string, policy: ReadPolicy, principal: Principal): readonly string[] | null {
  if (principal.isAdmin) return [adminPartition(topic)];
  switch (policy.read) {
    case 'public':
      return [`${topic}|*`];
    case 'owner':
      return principal.sub === null ? null : [`${topic}|u|${principal.sub}`];
    case 'group': {
      const groups = principal.claims[policy.groupClaim];
      if (!Array.isArray(groups)) return NONE;
      return groups.map((g) => `${topic}|g|${String(g)}`);
    }
    case 'admin':
      return null;
  }
}

const NONE: readonly string[] = Object.freeze([]);
