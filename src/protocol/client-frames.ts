import type { TopicAccess } from './topics.js';

/** What happened to a row, as a client sees it (a row moving into its view is a `create` for it). */
export type EventKind = 'create' | 'update' | 'delete';

/** Every kind of event frame: row changes and custom-topic messages. */
export type FrameKind = EventKind | 'new-message';

/** A filter value: what JSON can say about one column. */
export type FilterValue = string | number | boolean | null;

/** Conditions on one column, AND-ed: `eq` (`=`), `neq` (`<>`), `lt`, `lte`, `gt`, `gte`, `in`. */
export interface ColumnCondition {
  readonly eq?: FilterValue;
  readonly neq?: FilterValue;
  readonly lt?: FilterValue;
  readonly lte?: FilterValue;
  readonly gt?: FilterValue;
  readonly gte?: FilterValue;
  readonly in?: readonly FilterValue[];
}

/** What an aggregate subscription counts: the rows, per value of `groupBy` when given. */
export interface AggregateSpec {
  readonly count: true;
  /** A column of the table: counts per value of it. */
  readonly groupBy?: string;
}

/** A subscription filter: column → conditions, all AND-ed. */
export type FilterSpec = Readonly<Record<string, ColumnCondition>>;

/** The attributes of each method of the `/live` protocol. */
export interface Attributes {
  /** One topic name or several, comma-separated (all or nothing). */
  readonly subscribe: {
    readonly topicName: string;
    readonly filter?: FilterSpec;
    readonly events?: readonly EventKind[];
    /** The `seq` of the last frame seen (with `/part` when that frame had one). */
    readonly since?: string;
    /** One table topic: the rows this user may read first (`snapshot` frames), then the changes after them. */
    readonly snapshot?: boolean;
    /** One table topic: counts of the rows this user may read (`aggregate` frames) instead of its events. */
    readonly aggregate?: AggregateSpec;
    /**
     * One table topic: a name for this subscription on the connection, so
     * that it can hold several of one topic (other filters, `events`,
     * snapshots, aggregates). Its frames carry it as `as`.
     */
    readonly as?: string;
  };
  /** `as`: the named subscription of that one topic (without it, the unnamed one). */
  readonly unsubscribe: { readonly topicName: string; readonly as?: string };
  readonly 'new-message': { readonly topicName: string; readonly message: unknown };
  /** A message to every connection of user `to` (its `sub`), kept in their inbox `@me`. */
  readonly 'direct-message': { readonly to: string; readonly message: unknown };
  readonly 'create-topic': {
    readonly name: string;
    readonly description?: string;
    /** Messages kept (default 100); 0: ephemeral. */
    readonly history?: number;
    readonly maxSubscribers?: number;
    readonly readers?: TopicAccess;
    readonly writers?: TopicAccess;
    /** Whether its readers may track presence on it (default false). */
    readonly presence?: boolean;
  };
  readonly 'destroy-topic': { readonly name: string };
  readonly 'list-topic': Readonly<Record<string, unknown>>;
  readonly 'get-topic': { readonly topicName: string };
  readonly history: { readonly topicName: string; readonly before?: string | number; readonly limit?: number };
  readonly 'refresh-token': { readonly token: string };
  /** Joins (or, again, updates) this connection's presence on a topic it is subscribed to; `meta` is a small JSON object. */
  readonly track: { readonly topicName: string; readonly meta?: Readonly<Record<string, unknown>> };
  /** Leaves this connection's presence on a topic. */
  readonly untrack: { readonly topicName: string };
  /** Who is present on a topic this connection is subscribed to. */
  readonly presence: { readonly topicName: string };
  readonly ping: Readonly<Record<string, unknown>>;
}

/** Every method of the protocol. */
export type Method = keyof Attributes;

/** The methods, in the order the protocol lists them. */
export const METHODS = [
  'subscribe',
  'unsubscribe',
  'new-message',
  'direct-message',
  'create-topic',
  'destroy-topic',
  'list-topic',
  'get-topic',
  'history',
  'refresh-token',
  'track',
  'untrack',
  'presence',
  'ping',
] as const satisfies readonly Method[];

/** A request id, echoed in its response: a string of at most 128 characters or a finite number. */
export type RequestId = string | number;

/** A client frame that passed validation: a union on `method`. */
export type ClientRequest = {
  [M in Method]: { readonly method: M; readonly id: RequestId | undefined; readonly attributes: Attributes[M] };
}[Method];

/** The request of method `M`. */
export type RequestOf<M extends Method> = Extract<ClientRequest, { method: M }>;
