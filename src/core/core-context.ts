import type { Logger } from 'pino';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Database } from '../db/database.js';
import type { Event } from '../events/event.js';
import type { ReplayWindow } from '../log/replay-window.js';
import type { MessagePositions } from '../log/message-positions.js';
import type { MessageReplay } from '../log/message-replay.js';
import type { MessageWriter } from '../topics/message-writer.js';
import type { CustomTopic, TopicRegistry } from '../topics/topic-registry.js';
import type { ClientLimits } from './client-limits.js';
import type { Hooks } from './hooks.js';
import type { PresenceStore } from './presence/presence-store.js';
import type { PresenceTracking } from './presence/presence-tracking.js';
import type { SessionState, SnapshotService } from './session-types.js';
import type { SubscriptionIndex } from './subscription-index.js';

/** What the core's operations work with: built once by the core, shared by every session. */
export interface CoreContext {
  readonly registry: TopicRegistry;
  readonly index: SubscriptionIndex;
  readonly limits: ClientLimits;
  /** Subscriptions per session (`MAX_SUBSCRIPTIONS`). */
  readonly maxSubscriptions: number;
  /** Largest `new-message` payload, in bytes of JSON. */
  readonly maxChatMessageBytes: number;
  /** Who may send direct messages (`DIRECT_MESSAGES`), and how many each inbox keeps (`DIRECT_HISTORY`). */
  readonly direct: DirectMessages;
  /** Most bytes of frames one replay may send (below what a socket may buffer). */
  readonly maxReplayBytes: number;
  /**
   * Brings the registry up to the database's present: reads the tables again
   * and waits until the stream has routed every commit made so far (policy
   * rows included). Used before answering that a topic is unknown or
   * forbidden, so a client that just created a table or set a policy is not
   * refused by a server a few milliseconds behind.
   */
  readonly catchUp: () => Promise<void>;
  /** Resolves once the stream has routed every commit made before the call (or after 5 s, if it cannot). */
  readonly streamCaughtUp: () => Promise<void>;
  /**
   * Whether the stream has reached the change `seq` names (waiting while it
   * makes progress). After a restart the stream re-reads the slot; a client
   * may have seen events it has not reached yet, and a replay then would send
   * them twice.
   */
  readonly streamPassed: (seq: string) => Promise<boolean>;
  /** The node's last events, for `since` on table topics. */
  readonly window: ReplayWindow;
  /** Replays custom topics from `rowcast.messages` (`since`). */
  readonly replay: MessageReplay;
  /** Positions of stored messages not yet written back (for `history`). */
  readonly positions: MessagePositions;
  readonly db: Database;
  readonly messages: MessageWriter;
  /** Hands an ephemeral topic's message to the event log. */
  readonly publishEphemeral: (topic: CustomTopic, sender: string | null, message: unknown, origin: string | null) => Promise<Event>;
  /** Resolves with the `seq` of stored message `id` once the stream has delivered it (`null` if it has not within 10 s). */
  readonly delivered: (id: string) => Promise<string | null>;
  readonly verifyToken: TokenVerifier;
  /** The session's principal changed (`refresh-token`): watch its new expiry. */
  readonly tokenRefreshed: (session: SessionState) => void;
  /** The host app's hooks (library mode; no-ops otherwise). */
  readonly hooks: Hooks;
  /** Snapshots for `subscribe` with `snapshot: true` (`null`: this node serves none). */
  readonly snapshots: SnapshotService | null;
  /** Presence: who is where (the store), and each session's own (tracking). */
  readonly presenceStore: PresenceStore;
  readonly presence: PresenceTracking;
  readonly logger: Logger;
}

/** `DIRECT_MESSAGES` and `DIRECT_HISTORY`. */
export interface DirectMessages {
  readonly who: 'off' | 'admin' | 'authenticated';
  readonly history: number;
}
