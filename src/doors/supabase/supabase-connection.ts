import type { Session } from '../../core/session.js';
import type { FrameEncoder } from '../../events/event.js';
import type { SubscriptionHandle } from '../../core/session-types.js';
import type { DoorConnection } from '../door-socket.js';
import type { PhoenixMessage, Vsn } from '../phoenix/phoenix-wire.js';
import type { Binding } from './postgres-changes.js';

/** A `postgres_changes` binding of a joined channel, with what the core gave it. */
export interface JoinedBinding {
  readonly binding: Binding;
  /** Its subscriptions: one per table (`table: "*"` may have several); none when it failed (it got a `system` error) or was revoked. */
  handles: SubscriptionHandle[];
}

/**
 * A joined `realtime:<name>` channel. It has its own core session, acting for
 * the join's `access_token` (or the socket's `apikey`): each channel of a
 * socket may act for another user, as Supabase's do.
 */
export interface SupabaseChannel {
  readonly topic: string;
  /** `<name>` of `realtime:<name>`. */
  readonly name: string;
  readonly joinRef: string | null;
  /** Set once, as the channel opens (its port needs the channel first). */
  session: Session;
  readonly bindings: JoinedBinding[];
  /** The subscription to the custom topic `<name>` when there is one (its messages arrive as broadcasts). */
  topicHandle: SubscriptionHandle | null;
  readonly broadcast: { readonly self: boolean; readonly ack: boolean };
  /** Who this channel is present as: `config.presence.key`, or a generated id when it is empty. */
  readonly presenceKey: string;
  /** Encoders taken for this channel (released when it ends). */
  readonly encoders: FrameEncoder[];
  /**
   * The uWS topics its subscriptions use, subscribed on the socket only once
   * the join is answered, so no event overtakes the reply; `null` after.
   */
  pending: string[] | null;
  /** Set while an `access_token` push runs: the bindings it revoked. */
  revokedByRefresh: string[] | null;
  closed: boolean;
}

/** The state of one `/realtime/v1/websocket` connection, kept as the uWS socket's user data. */
export interface SupabaseConnection extends DoorConnection<PhoenixMessage> {
  readonly vsn: Vsn;
  /** Joined channels by topic (`realtime:<name>`). */
  readonly channels: Map<string, SupabaseChannel>;
  /** uWS topic → channels of this socket using it (the socket is subscribed while any does). */
  readonly held: Map<string, number>;
}
