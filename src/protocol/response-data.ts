import type { PresenceState } from './presence.js';
import type { CustomTopicDetail, CustomTopicSummary, StoredMessage, TableTopicDetail, TableTopicSummary } from './topics.js';

/**
 * The `data` of each method's successful response. The server's operations
 * are typed against it and the client SDK returns it, so the two cannot
 * drift apart.
 */
export interface ResponseData {
  readonly subscribe: {
    readonly topics: string[];
    /** The subscription's name, when it was asked with `as`. */
    readonly as?: string;
    /** Where the subscription starts: `since` this resumes a client that saw no event. */
    readonly seq: string;
    /** Present when the request had `since`: whether everything missed was replayed. */
    readonly resumed?: boolean;
    /** Present when `snapshot` frames follow (the request asked for one and was not resumed); `seq` is then the last frame's. */
    readonly snapshot?: true;
    /** Present for an aggregate subscription: `aggregate` frames follow, its state first. */
    readonly aggregate?: true;
  };
  readonly unsubscribe: { readonly topics: string[] };
  readonly 'list-topic': { readonly topics: Array<TableTopicSummary | CustomTopicSummary> };
  readonly 'get-topic': TableTopicDetail | CustomTopicDetail;
  readonly 'create-topic': CustomTopicDetail;
  readonly 'destroy-topic': { readonly name: string };
  readonly 'new-message': { readonly id: string; readonly seq: string | null };
  /** The stored message's id and its `seq` in the recipient's inbox `@me` (`null` if the stream has not delivered it in time). */
  readonly 'direct-message': { readonly id: string; readonly seq: string | null };
  readonly history: { readonly topic: string; readonly messages: StoredMessage[] };
  readonly 'refresh-token': { readonly sub: string | null; readonly role: string | null; readonly expiresAt: string | null; readonly revoked: string[] };
  /** `key`: who this presence is (the token's `sub`); `ref`: this meta's `phx_ref`. */
  readonly track: { readonly topic: string; readonly key: string; readonly ref: string };
  /** `untracked`: whether there was a presence to leave. */
  readonly untrack: { readonly topic: string; readonly untracked: boolean };
  readonly presence: { readonly topic: string; readonly state: PresenceState };
  readonly ping: null;
}
