import type { FilterLimits } from '../policies/row-filter.js';

/** Bounds on presence, each a configuration key. */
export interface PresenceLimits {
  /** Bytes of one meta as JSON (`PRESENCE_MAX_META_BYTES`). */
  readonly maxMetaBytes: number;
  /** Distinct keys present on one topic, over the cluster as this node sees it (`PRESENCE_MAX_MEMBERS`). */
  readonly maxMembers: number;
  /** Metas (connections, tabs) of one key on one topic (`PRESENCE_MAX_METAS_PER_KEY`). */
  readonly maxMetasPerKey: number;
  /** `track`, `untrack` and `presence` requests per second per connection (`PRESENCE_TRACK_RATE`; bursts of as many). */
  readonly tracksPerSecond: number;
  /**
   * Bytes of one topic's presence state as JSON: half of what a socket may
   * buffer (`MAX_BACKPRESSURE_BYTES`), since the state goes whole to each
   * joiner, who would otherwise be closed as a slow consumer.
   */
  readonly maxStateBytes: number;
}

/**
 * Bounds on what one client controls beyond frame size and rate, each a
 * configuration key, each refused with `LIMIT_EXCEEDED` naming it. Announced
 * to every connection in its `session` frame.
 */
export interface ClientLimits {
  /** Nesting of a frame or HTTP body (`MAX_FRAME_DEPTH`). */
  readonly maxFrameDepth: number;
  /** Requests waiting behind a slow one on one connection (`MAX_PENDING_REQUESTS`). */
  readonly maxPendingRequests: number;
  /** Bytes of frames waiting behind a slow one (`MAX_BACKPRESSURE_BYTES`). */
  readonly maxPendingBytes: number;
  /** Subscriptions of one user over all its connections on a node (`MAX_SUBSCRIPTIONS_PER_USER`); anonymous connections count per connection only. */
  readonly maxSubscriptionsPerUser: number;
  /** Distinct filter groups on one topic on a node (`MAX_FILTER_GROUPS_PER_TOPIC`). */
  readonly maxFilterGroupsPerTopic: number;
  /**
   * Distinct filter groups whose subscribers read the same audience
   * partition of a topic (a public table's rows, one user's, one group's):
   * each of them runs for every event of those rows, so this bounds what one
   * event costs (`MAX_FILTER_GROUPS_PER_PARTITION`).
   */
  readonly maxFilterGroupsPerPartition: number;
  /** Filtered subscriptions one connection holds (`MAX_FILTER_GROUPS_PER_CONNECTION`). */
  readonly maxFilterGroupsPerConnection: number;
  /** Presence (docs/presence.md): bytes of one meta, members (keys) per topic, metas per key, tracks per second per connection. */
  readonly presence: PresenceLimits;
  /** Size of one filter (`MAX_FILTER_VALUES`, `MAX_FILTER_VALUE_LENGTH`, `MAX_FILTER_KEY_BYTES`). */
  readonly filter: FilterLimits;
}
