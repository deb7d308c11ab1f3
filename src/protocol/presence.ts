/**
 * Presence on the wire (docs/presence.md), in Phoenix.Presence's shape on
 * every door: who is present on a topic, by key, each key with one meta per
 * connection (tab) that tracks it.
 */

/**
 * One connection's presence: the meta it tracked, with the fields the server
 * sets. `phx_ref` is unique per meta; an update carries the `phx_ref_prev`
 * of the meta it replaces; `sub` is the tracker's token `sub` (`null` when
 * anonymous), whatever the client put there.
 */
export type PresenceMeta = Readonly<Record<string, unknown>> & {
  readonly phx_ref: string;
  readonly phx_ref_prev?: string;
  readonly sub: string | null;
};

/** Who is present: key → its metas. */
export type PresenceState = Readonly<Record<string, { readonly metas: readonly PresenceMeta[] }>>;

/** What changed since the last state or diff: an update is a join with `phx_ref_prev` and a leave of the old meta. */
export interface PresenceDiff {
  readonly joins: PresenceState;
  readonly leaves: PresenceState;
}
