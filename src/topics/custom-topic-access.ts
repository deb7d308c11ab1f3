import type { Principal } from '../auth/principal.js';
import { customTopicAudience, inboxPartition } from '../policies/audience-partitions.js';
import { INBOX_TOPIC, type TopicAccess } from '../protocol/index.js';
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

/**
 * The partitions `principal` may subscribe to on a custom topic, or `null`.
 * On the inbox `@me` a signed-in user reads their own messages only (admins too).
 */
export function customTopicPartitions(topic: CustomTopic, principal: Principal): readonly string[] | null {
  if (topic.name === INBOX_TOPIC) return principal.sub === null ? null : [inboxPartition(topic.name, principal.sub)];
  return mayAccess(topic.readers, principal) ? customTopicAudience(topic.name) : null;
}
