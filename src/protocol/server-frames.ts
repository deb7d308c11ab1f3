import type { EventKind, RequestId } from './client-frames.js';
import type { ErrorCode } from './error-codes.js';
import type { PresenceDiff, PresenceState } from './presence.js';
import type { ResponseData } from './response-data.js';

/** The bounds a connection works within: a request past one is refused with `LIMIT_EXCEEDED`. */
export interface SessionLimits {
  readonly maxMessageBytes: number;
  readonly messagesPerSecond: number;
  readonly maxSubscriptions: number;
  readonly maxSubscriptionsPerUser: number;
  readonly maxFrameDepth: number;
  readonly maxPendingRequests: number;
  readonly maxFilterValues: number;
  readonly maxFilterValueLength: number;
  readonly maxFilterKeyBytes: number;
  readonly maxFilterGroupsPerConnection: number;
  readonly maxPresenceMetaBytes: number;
  readonly presenceTracksPerSecond: number;
}

/** What a client is told about itself on open. */
export interface SessionData {
  readonly connectionId: string;
  readonly user: { readonly sub: string | null; readonly role: string | null };
  readonly serverTime: string;
  readonly limits: SessionLimits;
}

/** The `error` of a response or error frame; `retryAfter` (ms) with `RATE_LIMIT_EXCEEDED`. */
export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryAfter?: number;
}

/** A row change, or a custom topic's message, as `data` of an event frame. */
export interface EventData {
  /** The table name (or `message` for a custom topic's message). */
  readonly type: string;
  /** The primary key as a string (composite keys joined with `/`), or the message id. */
  readonly id: string;
  /** The row (for a delete, the old row); a message's `{message, sender, createdAt}`. */
  readonly attributes: unknown;
  /** An update's previous values, where the table's replica identity gives them. */
  readonly old?: unknown;
  /** An update's TOAST columns Postgres did not send and the old row could not supply (left out of `attributes`). */
  readonly unchanged?: readonly string[];
}

/** An event frame: a row change on a table topic or a message on a custom topic. */
export interface EventFrame {
  readonly type: 'event';
  readonly topic: string;
  readonly event: EventKind | 'new-message';
  /** `<16 hex digits of the commit LSN>-<8 hex digits of the index in the transaction>`: sorts in stream order. */
  readonly seq: string;
  /**
   * 1 on the `delete` and 2 on the `create` of a row that moved between two
   * audience partitions one subscription reads (two frames, one `seq`):
   * resume between them with `since: "<seq>/1"`.
   */
  readonly part?: 1 | 2;
  /** Commit time, ISO-8601. */
  readonly ts: string;
  readonly data: EventData;
  /** The subscription's name on this connection, when it was subscribed with `as`. */
  readonly as?: string;
}

/** What a table topic's admins get instead of an event that could not be serialized. */
export interface DroppedEventFrame {
  readonly type: 'error';
  readonly as?: string;
  readonly topic: string;
  readonly seq: string;
  readonly ts: string;
  readonly error: ErrorBody & { readonly code: 'EVENT_DROPPED' };
  readonly data: { readonly type: string; readonly id: string };
}

/**
 * Presence on a topic with presence: its `state` right after the subscribe
 * answer, then a `diff` (at most one per PRESENCE_BATCH_MS) whenever someone
 * joins, updates or leaves.
 */
export type PresenceFrame =
  | { readonly type: 'presence'; readonly topic: string; readonly event: 'state'; readonly data: PresenceState }
  | { readonly type: 'presence'; readonly topic: string; readonly event: 'diff'; readonly data: PresenceDiff };

/**
 * A page of the rows a `subscribe` with `snapshot: true` gives: each row as
 * an event's `data`. The last page has `done: true` and the `seq` the live
 * events continue from (`since` for a later resume); no event of the topic
 * comes before it.
 */
export type SnapshotFrame =
  | { readonly type: 'snapshot'; readonly as?: string; readonly topic: string; readonly data: EventData[]; readonly done: false }
  | { readonly type: 'snapshot'; readonly as?: string; readonly topic: string; readonly data: EventData[]; readonly done: true; readonly seq: string };

/** One group of an {@link AggregateFrame}: the `groupBy` column's value and how many readable rows have it. */
export interface AggregateGroup {
  readonly key: unknown;
  readonly count: number;
}

/**
 * An aggregate subscription's counts: its `state` (every group) right after
 * the answer, then a `diff` (only the groups that changed, a group that
 * emptied with `count: 0`) at most every 100 ms. `total` is always the
 * whole count; `groups` is empty without `groupBy`.
 */
export interface AggregateFrame {
  readonly type: 'aggregate';
  readonly as?: string;
  readonly topic: string;
  readonly event: 'state' | 'diff';
  readonly data: { readonly groups: AggregateGroup[]; readonly total: number };
}

/** The successful answer to a request. */
export type OkResponseFrame = {
  [M in keyof ResponseData]: { readonly type: 'response'; readonly id?: RequestId; readonly method: M; readonly ok: true; readonly data: ResponseData[M] };
}[keyof ResponseData];

/** A refused request (`method` when the frame named one). */
export interface ErrorResponseFrame {
  readonly type: 'response';
  readonly id?: RequestId;
  readonly method?: string;
  readonly ok: false;
  readonly error: ErrorBody;
}

/** Every frame the server sends on `/live`, as a union on `type` (and `ok` for responses). */
/**
 * A direct message to this user (their inbox `@me`, subscribed like a
 * topic): `from` is the sender's `sub` (`null` from the server itself), `seq`
 * its place in the inbox (`null` for one sent to this connection only,
 * which is not kept).
 */
export interface DirectFrame {
  readonly type: 'direct';
  readonly from: string | null;
  readonly id: string;
  readonly seq: string | null;
  readonly message: unknown;
  readonly createdAt: string;
}

export type ServerFrame =
  | { readonly type: 'session'; readonly status: 'open'; readonly data: SessionData }
  | OkResponseFrame
  | ErrorResponseFrame
  | EventFrame
  | DroppedEventFrame
  | PresenceFrame
  | SnapshotFrame
  | AggregateFrame
  | DirectFrame
  | { readonly type: 'pong'; readonly id?: RequestId }
  | { readonly type: 'subscription'; readonly as?: string; readonly topic: string; readonly status: 'revoked'; readonly reason: string }
  /** A frame that was not a request at all (no valid `id`). */
  | { readonly type: 'error'; readonly error: ErrorBody };
