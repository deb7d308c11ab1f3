import { RowcastError } from '../errors.js';
import type { CustomTopic, TableTopic } from '../topics/topic-registry.js';
import type { CoreContext } from './core-context.js';
import type { GroupSpec, SessionState, SubscribeRequest, SubscriptionHandle } from './session-types.js';

/** A topic granted to a subscribe request: what to subscribe and how. */
export interface Grant {
  readonly topic: TableTopic | CustomTopic;
  readonly partitions: readonly string[];
  readonly group: GroupSpec;
}

/**
 * Throws `LIMIT_EXCEEDED` (or `TOPIC_FULL`) unless the grants fit every
 * limit as things stand, counting the subscriptions they replace as gone:
 * subscriptions of the session (`MAX_SUBSCRIPTIONS`) and of its user over
 * all its sessions (`MAX_SUBSCRIPTIONS_PER_USER`), filtered subscriptions
 * of the session (`MAX_FILTER_GROUPS_PER_CONNECTION`), distinct filters per
 * topic (`MAX_FILTER_GROUPS_PER_TOPIC`) and per audience partition, which
 * is what one event costs (`MAX_FILTER_GROUPS_PER_PARTITION`), and each
 * custom topic's `maxSubscribers`. Synchronous, so that the check and the
 * subscription it allows happen in one step and concurrent subscribes
 * cannot over-admit.
 */
export function admit(context: CoreContext, session: SessionState, grants: readonly Grant[], request: SubscribeRequest): void {
  const { index, limits, maxSubscriptions } = context;
  const replaced = grants.map(({ topic }) => request.replaces?.(topic.name)).filter((handle): handle is SubscriptionHandle => handle !== undefined);
  const added = grants.length - replaced.length;
  let held = 0;
  let filtered = grants.filter(({ group }) => group.key !== '').length;
  for (const member of session.connection) {
    held += member.handles.size;
    for (const handle of member.handles) if (handle.group.key !== '' && !replaced.includes(handle)) filtered++;
  }
  if (held + added > maxSubscriptions) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${maxSubscriptions} subscriptions per connection (MAX_SUBSCRIPTIONS)`);
  }
  const sub = session.principal.sub;
  if (sub !== null && added > 0 && index.subscriptionsOf(sub) + added > limits.maxSubscriptionsPerUser) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${limits.maxSubscriptionsPerUser} subscriptions per user over all connections (MAX_SUBSCRIPTIONS_PER_USER)`);
  }
  if (filtered > limits.maxFilterGroupsPerConnection) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${limits.maxFilterGroupsPerConnection} filtered subscriptions per connection (MAX_FILTER_GROUPS_PER_CONNECTION)`);
  }
  for (const grant of grants) admitGroup(context, grant, request, replaced);
  for (const { topic } of grants) {
    if (topic.kind !== 'custom' || topic.maxSubscribers === null || replaced.some((handle) => handle.topic === topic.name)) continue;
    if (index.stats(topic.name).subscribers >= topic.maxSubscribers) {
      throw new RowcastError('TOPIC_FULL', `topic ${topic.name} has its ${topic.maxSubscribers} subscribers`);
    }
  }
}

/** The filter-group limits of one grant: a group that exists already always fits; a replaced one that only it held is freed. */
function admitGroup(context: CoreContext, { topic, group, partitions }: Grant, request: SubscribeRequest, replaced: readonly SubscriptionHandle[]): void {
  if (group.key === '') return;
  const { index, limits } = context;
  const { encoder } = request;
  const own = replaced.find((handle) => handle.topic === topic.name);
  const freed = own !== undefined && own.group.key !== '' && own.group.key !== group.key && index.groupSize(topic.name, own.group.key, own.group.encoder) === 1 ? own : null;
  if (!index.hasGroup(topic.name, group.key, encoder) && index.groupCount(topic.name) - (freed ? 1 : 0) >= limits.maxFilterGroupsPerTopic) {
    throw new RowcastError('LIMIT_EXCEEDED', `topic ${topic.name} has ${limits.maxFilterGroupsPerTopic} distinct filters (MAX_FILTER_GROUPS_PER_TOPIC): use one of them, or no filter`);
  }
  for (const partition of partitions) {
    const holders = index.groupsIn(topic.name, partition);
    if (!holders || index.holds(topic.name, partition, group.key, encoder)) continue;
    let count = 0;
    for (const held of holders.keys()) if (held.key !== '') count++;
    if (freed && freed.partitions.includes(partition) && holders.get(freed.group) === 1) count--;
    if (count >= limits.maxFilterGroupsPerPartition) {
      throw new RowcastError(
        'LIMIT_EXCEEDED',
        `${limits.maxFilterGroupsPerPartition} distinct filters already read these rows of ${topic.name}, each run for every event of them (MAX_FILTER_GROUPS_PER_PARTITION): use one of them, or no filter`,
      );
    }
  }
}
