import type { Config } from '../config/config.js';
import type { ClientLimits } from '../core/client-limits.js';

/** The bounds on what one client controls, from the configuration. */
export function clientLimits(config: Config): ClientLimits {
  return Object.freeze({
    maxFrameDepth: config.MAX_FRAME_DEPTH,
    maxPendingRequests: config.MAX_PENDING_REQUESTS,
    maxPendingBytes: config.MAX_BACKPRESSURE_BYTES,
    maxSubscriptionsPerUser: config.MAX_SUBSCRIPTIONS_PER_USER,
    maxFilterGroupsPerTopic: config.MAX_FILTER_GROUPS_PER_TOPIC,
    maxFilterGroupsPerPartition: config.MAX_FILTER_GROUPS_PER_PARTITION,
    maxFilterGroupsPerConnection: config.MAX_FILTER_GROUPS_PER_CONNECTION,
    presence: Object.freeze({
      maxMetaBytes: config.PRESENCE_MAX_META_BYTES,
      maxMembers: config.PRESENCE_MAX_MEMBERS,
      maxMetasPerKey: config.PRESENCE_MAX_METAS_PER_KEY,
      tracksPerSecond: config.PRESENCE_TRACK_RATE,
      maxStateBytes: Math.floor(config.MAX_BACKPRESSURE_BYTES / 2),
    }),
    filter: Object.freeze({
      maxValues: config.MAX_FILTER_VALUES,
      maxValueLength: config.MAX_FILTER_VALUE_LENGTH,
      maxKeyBytes: config.MAX_FILTER_KEY_BYTES,
    }),
  });
}
