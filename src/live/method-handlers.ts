import type { WebSocket } from 'uWebSockets.js';
import { RowcastError } from '../errors.js';
import { grantedPartitions } from '../policies/audience-partitions.js';
import type { TableTopic, TopicRegistry } from '../topics/topic-registry.js';
import type { Connection } from './connection.js';
import type { ClientRequest, Method, RequestOf } from './protocol.js';

/** What method handlers may use. */
export interface HandlerContext {
  readonly registry: TopicRegistry;
  readonly maxSubscriptions: number;
  /** Reloads the registry, at most once per interval, when a client names a topic it does not know. */
  readonly refreshTopics: () => Promise<void>;
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
  if (filter !== undefined) throw new RowcastError('INVALID_ATTRIBUTES', 'filter: not supported by this server yet');
  if (events !== undefined) throw new RowcastError('INVALID_ATTRIBUTES', 'events: not supported by this server yet');
  const names = splitNames(request.attributes.topicName);
  let topics = names.map((name) => context.registry.get(name));
  if (topics.includes(undefined)) {
    await context.refreshTopics();
    topics = names.map((name) => context.registry.get(name));
  }
  // All-or-nothing: every name is checked before anything is subscribed.
  const grants: Array<[TableTopic, readonly string[]]> = [];
  for (let i = 0; i < names.length; i++) {
    const topic = topics[i];
    const partitions = topic ? grantedPartitions(topic.name, topic.policy, conn.principal) : null;
    if (!topic || !partitions) throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(names[i])}`);
    grants.push([topic, partitions]);
  }
  const added = grants.filter(([topic]) => !conn.subscriptions.has(topic.name)).length;
  if (conn.subscriptions.size + added > context.maxSubscriptions) {
    throw new RowcastError('LIMIT_EXCEEDED', `at most ${context.maxSubscriptions} subscriptions per connection`);
  }
  if (conn.closed) return null;
  for (const [topic, partitions] of grants) {
    for (const partition of conn.subscriptions.get(topic.name) ?? []) ws.unsubscribe(partition);
    for (const partition of partitions) ws.subscribe(partition);
    conn.subscriptions.set(topic.name, partitions);
  }
  // Replay with `since` is not offered yet: say so rather than pretend.
  return since === undefined ? { topics: names } : { topics: names, resumed: false };
}

function unsubscribe(_context: HandlerContext, ws: WebSocket<Connection>, conn: Connection, request: RequestOf<'unsubscribe'>) {
  const removed: string[] = [];
  for (const name of splitNames(request.attributes.topicName)) {
    const partitions = conn.subscriptions.get(name);
    if (!partitions) continue;
    for (const partition of partitions) ws.unsubscribe(partition);
    conn.subscriptions.delete(name);
    removed.push(name);
  }
  return { topics: removed };
}

function listTopics(context: HandlerContext, _ws: WebSocket<Connection>, conn: Connection) {
  const topics = context.registry
    .list()
    .filter((topic) => grantedPartitions(topic.name, topic.policy, conn.principal) !== null)
    .map(describe)
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

function describe(topic: TableTopic) {
  return { name: topic.name, kind: topic.kind, schema: topic.schema, table: topic.table, read: topic.policy.read };
}

/** `"order, document,order"` → `['order', 'document']`. */
function splitNames(list: string): string[] {
  return [...new Set(list.split(',').map((n) => n.trim()).filter((n) => n.length > 0))];
}
