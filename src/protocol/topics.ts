/**
 * Each user's inbox of direct messages: a topic every signed-in user may
 * subscribe to (with `since`) and read with `history`, each seeing only
 * their own messages.
 */
export const INBOX_TOPIC = '@me';

/** Who may read or write a custom topic. */
export const TOPIC_ACCESS = ['anyone', 'authenticated', 'admin'] as const;

/** One of {@link TOPIC_ACCESS}. */
export type TopicAccess = (typeof TOPIC_ACCESS)[number];

/** Who may read a table's rows: its read policy's mode. */
export const READ_MODES = ['public', 'owner', 'group', 'admin'] as const;

/** One of {@link READ_MODES}. */
export type ReadMode = (typeof READ_MODES)[number];

/** A column of a table topic. */
export interface TopicColumn {
  readonly name: string;
  /** The SQL type as Postgres formats it (`integer`, `numeric(10,2)`, …). */
  readonly type: string;
}

/** A table topic as `list-topic` shows it. */
export interface TableTopicSummary {
  readonly name: string;
  readonly kind: 'table';
  readonly schema: string;
  readonly table: string;
  readonly read: ReadMode;
}

/** A table topic as `get-topic` describes it. */
export interface TableTopicDetail extends TableTopicSummary {
  readonly primaryKey: readonly string[];
  readonly columns: readonly TopicColumn[];
}

/** A custom topic as `list-topic` shows it. */
export interface CustomTopicSummary {
  readonly name: string;
  readonly kind: 'custom';
  readonly description: string;
  readonly subscribers: number;
}

/** A custom topic as `get-topic` and `create-topic` describe it. */
export interface CustomTopicDetail extends CustomTopicSummary {
  /** Messages kept; 0: ephemeral (never stored). */
  readonly history: number;
  readonly maxSubscribers: number | null;
  readonly readers: TopicAccess;
  readonly writers: TopicAccess;
  /** Whether its readers may track presence on it. */
  readonly presence: boolean;
  readonly createdBy: string | null;
  readonly createdAt: string;
}

/** A stored message of a custom topic, as `history` returns it; `seq` is null until the stream has delivered it. */
export interface StoredMessage {
  readonly id: string;
  readonly seq: string | null;
  readonly sender: string | null;
  readonly message: unknown;
  readonly createdAt: string;
}
