import { sql } from 'kysely';
import { RowcastError } from '../errors.js';
import type { Event } from '../events/event.js';
import { unstorableText } from '../protocol/storable-text.js';
import { INBOX_TOPIC, type Attributes, type ResponseData, type TableTopicDetail, type TableTopicSummary } from '../protocol/index.js';
import { adminPartition } from '../policies/audience-partitions.js';
import { visibleColumns } from '../policies/read-policy.js';
import { mayAccess } from '../topics/custom-topic-access.js';
import { isoCreatedAt, STORED_MESSAGE_COLUMNS, type StoredMessageRow } from '../log/stored-message.js';
import { customTopicFromRow, type CustomTopic, type TableTopic } from '../topics/topic-registry.js';
import type { CoreContext } from './core-context.js';
import type { SessionState } from './session-types.js';
import { describeCustom, grantOf, topicNamed } from './topic-access.js';

/** `create-topic`'s attributes. */
export type CreateTopic = Attributes['create-topic'];

/** Custom topic names: 1–128 of `[A-Za-z0-9_.:-]`, starting with a letter or digit. */
const TOPIC_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** `list-topic`: the topics this user may subscribe to, by name. */
export function listTopics(context: CoreContext, session: SessionState): ResponseData['list-topic'] {
  const tables = context.registry
    .list()
    .filter((topic) => grantOf(topic, session.principal) !== null)
    .map(summary);
  // The inbox is everyone's and no one's to list: a client knows it by name.
  const custom = context.registry
    .customTopics()
    .filter((topic) => topic.name !== INBOX_TOPIC && grantOf(topic, session.principal) !== null)
    .map((topic) => ({ name: topic.name, kind: topic.kind, description: topic.description, subscribers: context.index.stats(topic.name).subscribers }));
  return { topics: [...tables, ...custom].sort((a, b) => a.name.localeCompare(b.name)) };
}

/** `get-topic`: one readable topic in full. */
export function getTopic(context: CoreContext, session: SessionState, name: string): ResponseData['get-topic'] {
  const topic = topicNamed(context.registry, name);
  const partitions = topic ? grantOf(topic, session.principal) : null;
  if (!topic || partitions === null) {
    throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(name)}`);
  }
  return topic.kind === 'table' ? describe(topic, partitions.includes(adminPartition(topic.name))) : describeCustom(topic, context.index.stats(topic.name).subscribers);
}

/** `create-topic` (admins): stores the topic; every connection can use it at once. */
export async function createTopic(context: CoreContext, session: SessionState, a: CreateTopic): Promise<ResponseData['create-topic']> {
  if (!session.principal.isAdmin) throw new RowcastError('FORBIDDEN', 'only admins may create topics');
  if (!TOPIC_NAME.test(a.name)) {
    throw new RowcastError('INVALID_ATTRIBUTES', 'name: 1–128 characters of A-Z a-z 0-9 _ . : -, starting with a letter or digit');
  }
  if (context.registry.get(a.name)) throw new RowcastError('TOPIC_EXISTS', `${a.name} is a table topic`);
  const { rows } = await sql<Record<string, never>>`
    INSERT INTO rowcast.topics (name, description, history, max_subscribers, readers, writers, presence, created_by)
    VALUES (${a.name}, ${a.description ?? ''}, ${a.history ?? 100}, ${a.maxSubscribers ?? null},
            ${a.readers ?? 'authenticated'}, ${a.writers ?? 'authenticated'}, ${a.presence ?? false}, ${session.principal.sub})
    ON CONFLICT (name) DO NOTHING
    RETURNING name, description, history, max_subscribers, readers, writers, presence, created_by,
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at`.execute(context.db);
  if (rows.length === 0) throw new RowcastError('TOPIC_EXISTS', `a topic named ${a.name} exists`);
  // The stream brings the same row to every node; this node need not wait for it.
  const topic = customTopicFromRow(rows[0] as never);
  context.registry.applyCustomTopic(topic);
  return describeCustom(topic, 0);
}

/** `destroy-topic` (admins): removes the topic and its messages; subscribers are told. */
export async function destroyTopic(context: CoreContext, session: SessionState, name: string): Promise<ResponseData['destroy-topic']> {
  if (!session.principal.isAdmin) throw new RowcastError('FORBIDDEN', 'only admins may destroy topics');
  if (name === INBOX_TOPIC) throw new RowcastError('FORBIDDEN', `${INBOX_TOPIC} holds every user's direct messages: it cannot be destroyed`);
  const result = await context.db.deleteFrom('rowcast.topics').where('name', '=', name).executeTakeFirst();
  if (result.numDeletedRows === 0n) throw new RowcastError('TOPIC_NOT_FOUND', `no custom topic named ${JSON.stringify(name)}`);
  context.registry.removeCustomTopic(name);
  return { name };
}

/**
 * `new-message`: writers of a custom topic publish any JSON. A history topic
 * stores it (batched) and answers once the stream has delivered it, with its
 * `id` and `seq`; an ephemeral topic hands it straight to the event log.
 */
export async function publish(context: CoreContext, session: SessionState, topicName: string, message: unknown): Promise<ResponseData['new-message']> {
  const topic = writableTopic(context, session, topicName);
  checkMessage(context, message);
  const sender = session.principal.sub;
  const turn = takeTurn(session);
  let handed: Promise<Event> | Promise<string>;
  try {
    // The host's moderation (library mode): before anything is stored or delivered.
    const decided = await context.hooks.message(message, { topic: topic.name, principal: session.principal, connection: session.port.door === 'admin-api' ? null : session.id });
    if ('refusal' in decided) throw new RowcastError(decided.refusal.code, decided.refusal.message);
    message = decided.message;
    const json = checkMessage(context, message);
    await turn.previous;
    handed = topic.history === 0
      ? context.publishEphemeral(topic, sender, message, session.id)
      : context.messages.write({ topic: topic.name, history: topic.history, sender, json, origin: session.id });
  } finally {
    turn.release();
  }
  if (topic.history === 0) {
    const event = await (handed as Promise<Event>);
    return { id: event.id!, seq: event.seq }; // a message event always has its id
  }
  let id: string;
  try {
    id = await (handed as Promise<string>);
  } catch (error) {
    // The topic was destroyed while the message waited for its batch.
    if ((error as { code?: string }).code === '23503') throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(topicName)}`);
    throw error;
  }
  // Stored and durable; the seq once the stream has delivered it (null if the stream is down).
  const seq = await context.delivered(id);
  return { id, seq };
}

/**
 * `direct-message`: a message to every connection of user `to`, stored in
 * their inbox `@me` (the newest `DIRECT_HISTORY` kept) and delivered through
 * the stream like a topic's message, so it reaches them on any node and can
 * be resumed with `since`. Who may send is `DIRECT_MESSAGES`; the host's
 * `onMessage` hook decides first, as for `new-message`.
 */
export async function directMessage(context: CoreContext, session: SessionState, to: string, message: unknown): Promise<ResponseData['direct-message']> {
  const { principal } = session;
  const allowed = context.direct.who === 'authenticated' ? principal.sub !== null || principal.isAdmin : context.direct.who === 'admin' && principal.isAdmin;
  if (!allowed) {
    throw new RowcastError('FORBIDDEN', context.direct.who === 'off' ? 'direct messages are off on this server' : 'only admins may send direct messages here');
  }
  if (!context.registry.custom(INBOX_TOPIC)) throw new RowcastError('TOPIC_NOT_FOUND', `no inbox topic ${INBOX_TOPIC}: run the migrations`);
  checkMessage(context, message);
  const turn = takeTurn(session);
  let stored: Promise<string>;
  try {
    const decided = await context.hooks.message(message, { topic: INBOX_TOPIC, to, principal, connection: session.port.door === 'admin-api' ? null : session.id });
    if ('refusal' in decided) throw new RowcastError(decided.refusal.code, decided.refusal.message);
    const json = checkMessage(context, decided.message);
    await turn.previous;
    stored = context.messages.write({ topic: INBOX_TOPIC, history: context.direct.history, sender: principal.sub, json, origin: session.id, recipient: to });
  } finally {
    turn.release();
  }
  const id = await stored;
  const seq = await context.delivered(id);
  return { id, seq };
}

/**
 * A connection's messages run together (their hooks may take a while: see
 * RequestQueue) but are handed on in the order they came: each takes its
 * turn as it starts, and hands its message on only after the one before it
 * did (or failed). So a slow hook delays the messages after it, never
 * reorders them.
 */
function takeTurn(session: SessionState): { readonly previous: Promise<void>; release(): void } {
  const previous = turns.get(session) ?? DONE;
  let resolve!: () => void;
  const mine = new Promise<void>((r) => (resolve = r));
  turns.set(session, mine);
  // A message refused before its turn passes it on only once the one before it has gone.
  return { previous, release: () => void previous.then(resolve) };
}
const turns = new WeakMap<SessionState, Promise<void>>();
const DONE = Promise.resolve();

/**
 * `message` as JSON, when it has a JSON form that fits
 * `MAX_CHAT_MESSAGE_BYTES` (`LIMIT_EXCEEDED`) and Postgres can store (no
 * U+0000, no lone surrogate: `INVALID_ATTRIBUTES`). Checked as sent and
 * again after a modifying hook; the size first, so the walk is bounded.
 */
function checkMessage(context: CoreContext, message: unknown): string {
  const json = JSON.stringify(message) as string | undefined;
  if (json === undefined) throw new RowcastError('INVALID_ATTRIBUTES', 'message: a JSON value');
  const bytes = Buffer.byteLength(json);
  if (bytes > context.maxChatMessageBytes) {
    throw new RowcastError('LIMIT_EXCEEDED', `message is ${bytes} bytes; at most ${context.maxChatMessageBytes}`);
  }
  const unstorable = unstorableText(message, 'message');
  if (unstorable !== null) throw new RowcastError('INVALID_ATTRIBUTES', `${unstorable}: text must be well-formed Unicode without U+0000 (Postgres cannot store it)`);
  return json;
}

/**
 * `history`: a custom topic's stored messages, newest first, paged with
 * `before` (a message id). Each carries its `seq` (`null` for one the stream
 * has not delivered yet), so a client can load history and then subscribe
 * with `since` the newest `seq` it holds.
 */
export async function history(
  context: CoreContext,
  session: SessionState,
  topicName: string,
  before: string | number | undefined,
  limit: number | undefined,
): Promise<ResponseData['history']> {
  const topic = context.registry.custom(topicName);
  if (!topic || grantOf(topic, session.principal) === null) {
    throw new RowcastError('TOPIC_NOT_FOUND', `no custom topic named ${JSON.stringify(topicName)}`);
  }
  if (before !== undefined && !/^\d{1,19}$/.test(String(before))) {
    throw new RowcastError('INVALID_ATTRIBUTES', 'before: a message id');
  }
  // The inbox: this user's direct messages only (grantOf refused it to anyone without a sub).
  const mine = topic.name === INBOX_TOPIC ? sql`AND recipient = ${session.principal.sub!}` : sql``;
  const { rows } = await sql<StoredMessageRow>`
    SELECT ${STORED_MESSAGE_COLUMNS}
      FROM rowcast.messages
     WHERE topic = ${topic.name} ${mine} ${before === undefined ? sql`` : sql`AND messages.id < ${String(before)}::bigint`}
     ORDER BY messages.id DESC  -- the column, not the text alias
     LIMIT ${limit ?? 50}`.execute(context.db);
  return {
    topic: topic.name,
    messages: rows.map((r) => ({
      id: r.id,
      seq: r.seq ?? context.positions.seqOf(r.id) ?? null,
      sender: r.sender,
      message: r.message,
      createdAt: isoCreatedAt(r.created_at),
    })),
  };
}

function writableTopic(context: CoreContext, session: SessionState, name: string): CustomTopic {
  const topic = topicNamed(context.registry, name);
  if (topic?.kind === 'table') throw new RowcastError('READ_ONLY_TOPIC', `${name} is a table topic: write to the table instead`);
  if (name === INBOX_TOPIC) throw new RowcastError('READ_ONLY_TOPIC', `${INBOX_TOPIC} is your inbox: send direct messages with direct-message`);
  if (!topic || grantOf(topic, session.principal) === null) throw new RowcastError('TOPIC_NOT_FOUND', `no topic named ${JSON.stringify(name)}`);
  if (!mayAccess(topic.writers, session.principal)) throw new RowcastError('FORBIDDEN', `you may not write to topic ${name}`);
  return topic;
}

function summary(topic: TableTopic): TableTopicSummary {
  return { name: topic.name, kind: topic.kind, schema: topic.schema, table: topic.table, read: topic.policy.read };
}

/** A table topic as `get-topic` shows it: without its hidden columns to non-admins. */
function describe(topic: TableTopic, admin: boolean): TableTopicDetail {
  const columns = visibleColumns(topic.columns, topic.policy, admin);
  return { ...summary(topic), primaryKey: topic.primaryKey, columns: columns.map(({ name, type }) => ({ name, type })) };
}
