import type { WebSocket } from 'uWebSockets.js';
import { RowcastError } from '../errors.js';
import type { EventKind } from '../events/event.js';
import { grantedPartitions } from '../policies/audience-partitions.js';
import { compileRowFilter } from '../policies/row-filter.js';
import type { TableTopic, TopicRegistry } from '../topics/topic-registry.js';
import type { Connection } from './connection.js';
import type { ClientRequest, Method, RequestOf } from './protocol.js';
import { PLAIN_GROUP, type SubscriptionGroup, type SubscriptionIndex } from './subscription-index.js';

/** What method handlers may use. */
export interface HandlerContext {
  readonly registry: TopicRegistry;
  readonly index: SubscriptionIndex;
  readonly maxSubscriptions: number;
  /**
   * Brings the registry up to the database's present: reads the tables again
   * and waits until the stream has routed every commit made so far (policy
   * rows included). Used before answering that a topic is unknown or
   * forbidden, so a client that just created a table or set a policy is not
   * refused by a server a few milliseconds behind.
   */
  readonly catchUp: () => Promise<void>;
}

/** A handler answers with the response `data`, synchronously or not, or throws a {@link RowcastError}. */
type Handler<M extends Method> = (
  context: HandlerContext,
  ws: WebSocket<Connection>,
  conn: Connection,
  request: RequestOf<M>,
) => unknown;

/**
 * One handler per method. `ping` is answered by the server itself with a
 * `pong` frame and never reaches here. Methods of later features answer
 * `UNKNOWN_METHOD` with a message saying this server does not offer them yet.
 */
export const methodHandlers: { [M in Method]: Handler<M> } = {
  subscribe,
  unsubscribe,
  'list-topic': listTopics,
  'get-topic': getTopic,
  'new-message': notYet,
  'create-topic': notYet,
  'destroy-topic': notYet,
  history: notYet,
  'refresh-token': notYet,
  ping: () => null,
};

/** Runs the handler of `request.method`. */
export function handle(context: HandlerContext, ws: WebSocket<Connection>, conn: Connection, request: ClientRequest): unknown {
  return (methodHandlers[request.method] as Handler<Method>)(context, ws, conn, request);
}

async function subscribe(context: HandlerContext, ws: WebSocket<Connection>, conn: Connection, request: RequestOf<'subscribe'>) {
  const { filter, events, since } = request.attributes;
  const names = splitNames(request.attributes.topicName);
  const grant = (name: string) => {
    const topic = context.registry.get(name);
    const partitions = topic ? grantedPartitions(topic.name, topic.policy, conn.principal) : null;
    return topic && partitions ? ([topic, partitions] as const) : null;
  };
  let granted = names.map(grant);
  if (granted.includes(null)) {
    await context.catchUp();
    granted = names.map(grant);
  }
  // All-or-nothing: every name is checked before anything is subscribed.
  const grants: Array<[TableTopic, readonly string[], SubscriptionGroup]> = [];
  for (let i = 0; i < names.length; i++) {
    const entry = granted[i];
    if (!entry) throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(names[i])}`);
    grants.push([entry[0], entry[1], subscriptionGroup(entry[0], filter, events)]);
  }
  const added = grants.filter(([topic]) => !conn.subscriptions.has(topic.name)).length;
  if (conn.subscriptions.size + added > context.maxSubscriptions) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${context.maxSubscriptions} subscriptions per connection`);
  }
  if (conn.closed) return null;
  for (const [topic, partitions, group] of grants) context.index.subscribe(ws, topic.name, { group, partitions });
  // Replay with `since` is not offered yet: say so rather than pretend.
  return since === undefined ? { topics: names } : { topics: names, resumed: false };
}

/** The group of a subscription: its filter compiled for the topic's columns, and its events. */
function subscriptionGroup(
  topic: TableTopic,
  filter: RequestOf<'subscribe'>['attributes']['filter'],
  events: readonly EventKind[] | undefined,
): SubscriptionGroup {
  const compiled = filter === undefined || Object.keys(filter).length === 0 ? null : compileRowFilter(filter, topic.columns);
  const kinds = events === undefined || new Set(events).size === 3 ? null : new Set(events);
  if (compiled === null && kinds === null) return PLAIN_GROUP;
  const key = JSON.stringify([compiled?.key ?? null, kinds ? [...kinds].sort() : null]);
  return { key, test: compiled?.test ?? null, events: kinds };
}

function unsubscribe(context: HandlerContext, ws: WebSocket<Connection>, _conn: Connection, request: RequestOf<'unsubscribe'>) {
  const removed = splitNames(request.attributes.topicName).filter((name) => context.index.unsubscribe(ws, name));
  return { topics: removed };
}

function listTopics(context: HandlerContext, _ws: WebSocket<Connection>, conn: Connection) {
  const topics = context.registry
    .list()
    .filter((topic) => grantedPartitions(topic.name, topic.policy, conn.principal) !== null)
    .map(summary)
    .sort((a, b) => a.name.localeCompare(b.name));
  return { topics };
}

function getTopic(context: HandlerContext, _ws: WebSocket<Connection>, conn: Connection, request: RequestOf<'get-topic'>) {
  const topic = context.registry.get(request.attributes.topicName);
  if (!topic || grantedPartitions(topic.name, topic.policy, conn.principal) === null) {
    throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(request.attributes.topicName)}`);
  }
  return describe(topic);
}

function notYet(_context: HandlerContext, _ws: WebSocket<Connection>, _conn: Connection, request: ClientRequest): never {
  throw new RowcastError('UNKNOWN_METHOD', `${request.method} is not supported by this server yet`);
}

function summary(topic: TableTopic) {
  return { name: topic.name, kind: topic.kind, schema: topic.schema, table: topic.table, read: topic.policy.read };
}

function describe(topic: TableTopic) {
  return { ...summary(topic), primaryKey: topic.primaryKey, columns: topic.columns };
}

/** `"order, document,order"` → `['order', 'document']`. */
function splitNames(list: string): string[] {
  return [...new Set(list.split(',').map((n) => n.trim()).filter((n) => n.length > 0))];
}
