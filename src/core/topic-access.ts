import type { Principal } from '../auth/principal.js';
import { grantedPartitions } from '../policies/audience-partitions.js';
import type { CustomTopicDetail } from '../protocol/index.js';
import { customTopicPartitions } from '../topics/custom-topic-access.js';
import type { CustomTopic, TableTopic, TopicRegistry } from '../topics/topic-registry.js';

/** The topic called `name`: a table topic, else a custom one. */
export function topicNamed(registry: TopicRegistry, name: string): TableTopic | CustomTopic | undefined {
  return registry.get(name) ?? registry.custom(name);
}

/** The partitions `principal` may subscribe to on `topic`, or `null` when it may not read it. */
export function grantOf(topic: TableTopic | CustomTopic, principal: Principal): readonly string[] | null {
  return topic.kind === 'table' ? grantedPartitions(topic.name, topic.policy, principal) : customTopicPartitions(topic, principal);
}

/** A custom topic as `get-topic` and `create-topic` describe it. */
export function describeCustom(topic: CustomTopic, subscribers: number): CustomTopicDetail {
  return {
    name: topic.name,
    kind: topic.kind,
    description: topic.description,
    history: topic.history,
    maxSubscribers: topic.maxSubscribers,
    readers: topic.readers,
    writers: topic.writers,
    presence: topic.presence,
    subscribers,
    createdBy: topic.createdBy,
    createdAt: topic.createdAt,
  };
}
