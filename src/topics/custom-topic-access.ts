import type { Principal } from '../auth/principal.js';
import { customTopicAudience } from '../policies/audience-partitions.js';
import type { TopicAccess } from '../protocol/index.js';
import type { CustomTopic } from './topic-registry.js';

/** Whether `principal` passes a custom topic's `readers`/`writers` rule. */
export function mayAccess(access: TopicAccess, principal: Principal): boolean {
  switch (access) {
    case 'anyone':
      return true;
    case 'authenticated':
      return principal.sub !== null || principal.isAdmin;
    case 'admin':
      return principal.isAdmin;
  }
}

/** The partitions `principal` may subscribe to on a custom topic, or `null`. */
export function customTopicPartitions(topic: CustomTopic, principal: Principal): readonly string[] | null {
  return mayAccess(topic.readers, principal) ? customTopicAudience(topic.name) : null;
}
