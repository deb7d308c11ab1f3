import type { Attributes, Method, ResponseData } from '../protocol/index.js';
import type { Session } from './session.js';

/**
 * The methods every door answers the same way, given the `/live`
 * attributes: a door that speaks another framing translates into these
 * requests (`subscribe`, `unsubscribe` and `ping` are the door's own:
 * subscriptions are handles it keeps).
 */
export type SessionMethod = Exclude<Method, 'subscribe' | 'unsubscribe' | 'ping'>;

/** Whether `method` is a {@link SessionMethod}. */
export function isSessionMethod(method: Method): method is SessionMethod {
  return method !== 'subscribe' && method !== 'unsubscribe' && method !== 'ping';
}

/** Each method's operation, typed against its attributes and its response data. */
const OPERATIONS: { readonly [M in SessionMethod]: (session: Session, attributes: Attributes[M]) => ResponseData[M] | Promise<ResponseData[M]> } = {
  'new-message': (session, a) => session.publish(a.topicName, a.message),
  'direct-message': (session, a) => session.directMessage(a.to, a.message),
  'create-topic': (session, a) => session.createTopic(a),
  'destroy-topic': (session, a) => session.destroyTopic(a.name),
  'list-topic': (session) => session.listTopics(),
  'get-topic': (session, a) => session.getTopic(a.topicName),
  history: (session, a) => session.history(a.topicName, a.before, a.limit),
  'refresh-token': (session, a) => session.refreshToken(a.token),
  track: (session, a) => session.track(a.topicName, a.meta ?? {}),
  untrack: (session, a) => session.untrack(a.topicName),
  presence: (session, a) => session.presence(a.topicName),
};

/**
 * Runs one of the {@link SessionMethod}s for `session`: its response data,
 * synchronously or not, or a thrown `RowcastError`.
 *
 * @example
 * await runSessionMethod(session, { method: 'list-topic', id: 1, attributes: {} }) // { topics: [...] }
 */
export function runSessionMethod<M extends SessionMethod>(
  session: Session,
  request: { readonly method: M; readonly attributes: Attributes[M] },
): ResponseData[M] | Promise<ResponseData[M]> {
  const operation = OPERATIONS[request.method] as (session: Session, attributes: Attributes[M]) => ResponseData[M] | Promise<ResponseData[M]>;
  return operation(session, request.attributes);
}
