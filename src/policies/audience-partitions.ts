import { claimValue, MAX_CLAIM_GROUPS } from '../auth/claim-value.js';
import type { Principal } from '../auth/principal.js';
import type { ReadPolicy } from './read-policy.js';
import type { Row } from '../replication/transaction.js';

/**
 * Audience partitions (docs/protocol.md): the uWS topics an event of table topic
 * `t` is published to. `t|*` public, `t|u|<owner>`, `t|g|<group>`, and
 * `t|all` for admins. An event goes to its row's partitions plus `t|all`; a
 * connection subscribes to the partitions its principal is granted. The cost
 * of an event is the number of its partitions, never the number of
 * subscribers.
 */

/**
 * A name or value as it appears inside a partition: `|`, `#` and `%` are
 * percent-encoded (and nothing else), so a value can never forge another
 * partition's name or a filter group's topic (`<partition>#<group id>`).
 * Total: unlike `encodeURIComponent` it cannot throw, whatever the text
 * (a lone surrogate included).
 */
function part(text: string): string {
  return UNSAFE.test(text) ? text.replace(UNSAFE_ALL, escapeChar) : text;
}

const UNSAFE = /[|#%]/;
const UNSAFE_ALL = /[|#%]/g;
const escapeChar = (c: string) => (c === '|' ? '%7C' : c === '#' ? '%23' : '%25');

/**
 * An owner or group column's value as text, whatever its type (a `jsonb`
 * column holds objects, and `String` throws on some): this runs on the
 * replication stream's path.
 */
function rowText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object') return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return '';
  }
}

/** The fixed partitions of a topic, built once per topic rather than per event. */
interface TopicParts {
  /** `t|all` */
  readonly admin: string;
  /** `[t|*]` */
  readonly everyone: readonly string[];
  /** `t|` — the owner and group partitions continue it. */
  readonly prefix: string;
}

const topicParts = new Map<string, TopicParts>();

function partsOf(topic: string): TopicParts {
  let parts = topicParts.get(topic);
  if (!parts) {
    const prefix = `${part(topic)}|`;
    parts = { admin: `${prefix}all`, everyone: Object.freeze([`${prefix}*`]), prefix };
    topicParts.set(topic, parts);
  }
  return parts;
}

/** The partition every admin of topic `topic` subscribes to. */
export function adminPartition(topic: string): string {
  return partsOf(topic).admin;
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
      return partsOf(topic).everyone;
    case 'owner': {
      const owner = row[policy.ownerColumn];
      return owner === null || owner === undefined ? NONE : [`${partsOf(topic).prefix}u|${part(rowText(owner))}`];
    }
    case 'group': {
      const group = row[policy.groupColumn];
      return group === null || group === undefined ? NONE : [`${partsOf(topic).prefix}g|${part(rowText(group))}`];
    }
    case 'admin':
      return NONE;
  }
}

/**
 * The partitions `principal` may subscribe to on `topic`, or `null` when it
 * may not read the topic at all. The anonymous principal reads `public`
 * tables only; a signed-in user without the group claim may subscribe to a
 * `group` table but sees none of its rows.
 */
export function grantedPartitions(topic: string, policy: ReadPolicy, principal: Principal): readonly string[] | null {
  if (principal.isAdmin) return [adminPartition(topic)];
  if (principal.sub === null && policy.read !== 'public') return null;
  switch (policy.read) {
    case 'public':
      return partsOf(topic).everyone;
    case 'owner':
      return [`${partsOf(topic).prefix}u|${part(principal.sub!)}`];
    case 'group': {
      // Checked when the token was verified, unless the policy named this claim only later: values that cannot be groups are ignored.
      const groups = principal.claims[policy.groupClaim];
      if (!Array.isArray(groups)) return NONE;
      const partitions: string[] = [];
      for (const group of groups.slice(0, MAX_CLAIM_GROUPS)) {
        const value = claimValue(group);
        if (value !== null) partitions.push(`${partsOf(topic).prefix}g|${part(value)}`);
      }
      return partitions;
    }
    case 'admin':
      return null;
  }
}

const NONE: readonly string[] = Object.freeze([]);

/** The partition of user `sub`'s direct messages on the inbox topic `inbox` (`@me`): only they subscribe to it. */
export function inboxPartition(inbox: string, sub: string): string {
  return `${partsOf(inbox).prefix}u|${part(sub)}`;
}

/** The audience of a custom topic: one partition, which every reader (admins too) subscribes to. */
export function customTopicAudience(name: string): readonly string[] {
  return partsOf(name).everyone;
}
