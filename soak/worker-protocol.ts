/**
 * What the soak harness (soak/load-fleet.ts) and its load-generator
 * processes (soak/load-worker.ts) say to each other over IPC.
 */

/** The connections one load worker holds, and what they do. */
export interface WorkerJob {
  /** One `/live` URL per node; connection `c` first connects to node `c % urls.length`, later reconnects to a random one. */
  readonly urls: readonly string[];
  /** HS256 secret the worker signs its users' tokens with. */
  readonly secret: string;
  /** Token lifetime: the whole run and then some (connections are closed with 4001 at `exp`). */
  readonly tokenSeconds: number;
  /** The `owner`-policy table every connection subscribes to as its own user. */
  readonly table: string;
  /** The custom topic with history (stored messages, resumable with `since`). */
  readonly room: string;
  /** The ephemeral custom topic (`history: 0`). */
  readonly pings: string;
  /** Connection indexes `from … to - 1`. */
  readonly from: number;
  readonly to: number;
  /** Connection `c` is user `u<floor(c / connectionsPerUser)>` (a user on several devices). */
  readonly connectionsPerUser: number;
  /** Connection `c` also subscribes to both chat topics (and may publish) when `c % chatEvery === 0`. */
  readonly chatEvery: number;
  /** Connections opening at once during the ramp. */
  readonly rampConcurrency: number;
}

/** The user a connection index connects as: owners in soak_orders are these names. */
export const userOf = (connection: number, connectionsPerUser: number): string => `u${Math.floor(connection / connectionsPerUser)}`;

/** Sent by the harness. */
export type HarnessMessage =
  /** Start the steady phase: drop `churnPercentPerMinute` % of the open connections per minute, publish `chatPerSecond` messages/s to each chat topic. */
  | { readonly type: 'start'; readonly churnPercentPerMinute: number; readonly chatPerSecond: number }
  /** Stop dropping and publishing; answer `quiesced` once every connection is back and subscribed (or after `timeoutMs`). */
  | { readonly type: 'quiesce'; readonly timeoutMs: number }
  /** Close everything and exit. */
  | { readonly type: 'stop' };

/** Counters of one worker since it started. */
export interface WorkerCounts {
  /** Connections assigned to this worker. */
  readonly connections: number;
  /** Connected and subscribed right now. */
  readonly open: number;
  /** Sessions opened (first connects and reconnects). */
  readonly sessions: number;
  /** Events received per topic. */
  readonly received: { readonly table: number; readonly room: number; readonly pings: number };
  /** Connections this worker dropped on purpose (churn): half closed cleanly, half cut (terminate). */
  readonly drops: number;
  /** Table resubscriptions with `since`: answered `resumed: true` / `resumed: false` (a `since` older than the node's replay window). */
  readonly tableResumed: number;
  readonly tableNotResumed: number;
  /** The same for the room (resumed from stored messages). */
  readonly roomResumed: number;
  readonly roomNotResumed: number;
  /** Connection attempts that failed before a session (refused upgrade, socket error). */
  readonly failedConnects: number;
  /** `subscribe` requests answered with an error. */
  readonly failedSubscribes: number;
  /** Closes the worker did not ask for, by close code (the server closed or cut an open connection). */
  readonly serverCloses: Readonly<Record<string, number>>;
  /** Frames other than events, responses and the session (`subscription` revocations, `error` frames). */
  readonly otherFrames: number;
  readonly chat: {
    readonly sent: number;
    readonly acked: number;
    /** Error answers, by code. */
    readonly failed: Readonly<Record<string, number>>;
    /** Requests whose connection closed before the answer (the message may or may not be stored). */
    readonly unanswered: number;
  };
  /** This process's CPU (user + system) and RSS. */
  readonly cpuMs: number;
  readonly rssMiB: number;
}

/** Sent by a worker. `ackedRoomIds`: ids of room messages acknowledged since the last message (the chat witness must receive each). */
export type WorkerMessage =
  | { readonly type: 'ready'; readonly counts: WorkerCounts; readonly rampSeconds: number }
  | { readonly type: 'report'; readonly counts: WorkerCounts; readonly ackedRoomIds: string[] }
  | { readonly type: 'quiesced'; readonly counts: WorkerCounts; readonly ackedRoomIds: string[]; readonly settled: boolean }
  | { readonly type: 'error'; readonly message: string };
