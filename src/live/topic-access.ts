import { customTopicPartitions, grantedPartitions } from '../policies/audience-partitions.js';
import type { CustomTopic, TableTopic, TopicRegistry } from '../topics/topic-registry.js';
import type { Connection } from './connection.js';

/** The topic called `name`: a table topic, else a custom one. */
export function topicNamed(context: { readonly registry: TopicRegistry }, name: string): TableTopic | CustomTopic | undefined {
  return context.registry.get(name) ?? context.registry.custom(name);
}

/** The partitions `conn` may subscribe to on `topic`, or `null` when it may not read it. */
export function grantOf(topic: TableTopic | CustomTopic, conn: Connection): readonly string[] | null {
  return topic.kind === 'table' ? grantedPartitions(topic.name, topic.policy, conn.principal) : customTopicPartitions(topic, conn.principal);
}

/** A custom topic as `get-topic` and `create-topic` describe it. */
export function describeCustom(topic: CustomTopic, subscribers: number) {
  return {
    name: topic.name,
    kind: topic.kind,
    description: topic.description,
    history: topic.history,
    maxSubscribers: topic.maxSubscribers,
    readers: topic.readers,
    writers: topic.writers,
    subscribers,
    createdBy: topic.createdBy,
    createdAt: topic.createdAt,
  };
}

