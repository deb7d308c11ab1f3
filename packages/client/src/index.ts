/**
 * `rowcast/client`: the browser and Node client of rowcast's /live protocol.
 *
 * @example
 * import { createClient, liveAggregate, liveRows } from '@rowcast/client';
 * const client = createClient({ url: 'ws://localhost:6336/live', token });
 */
export {
  createClient,
  RowcastClient,
  RowcastClientError,
  type AggregateOptions,
  type ClientErrorCode,
  type ClientOptions,
  type ConnectionState,
  type LiveEvent,
  type SnapshotPage,
  type SocketConstructor,
  type SocketLike,
  type SubscribeAnswer,
  type SubscribeOptions,
  type Unsubscribe,
} from './client.js';
export { liveRows, type LiveRows, type LiveRowsOptions, type Row, type Snapshot } from './live-rows.js';
export type { AggregateCounts } from './aggregate.js';
export { liveAggregate, type LiveAggregate, type LiveAggregateOptions } from './live-aggregate.js';
export type { Presence, PresenceJoinListener, PresenceLeaveListener, PresenceMetaInput, PresenceMetas } from './presence.js';
export type {
  AggregateFrame,
  AggregateGroup,
  AggregateSpec,
  CloseCode,
  CustomTopicDetail,
  CustomTopicSummary,
  DirectFrame,
  ErrorCode,
  EventData,
  EventFrame,
  PresenceDiff,
  PresenceFrame,
  PresenceMeta,
  PresenceState,
  ResponseData,
  SnapshotFrame,
  StoredMessage,
  TableTopicDetail,
  TableTopicSummary,
  TopicAccess,
  TopicColumn,
} from '../../../src/protocol/index.js';
export { CLOSE_CODES } from '../../../src/protocol/index.js';
