import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '../config/config.js';
import type { Principal } from '../auth/principal.js';
import type { ConnectionInfo } from '../core/rowcast-core.js';
import type { NodeStatus } from '../http/node-status.js';
import type { Attributes, ResponseData } from '../protocol/index.js';
import type { RowcastHooks } from '../core/hooks.js';
import { startServer, type RowcastServer, type ServerOptions } from '../server/start-server.js';

/** `MAX_SUBSCRIPTIONS` → `maxSubscriptions`. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}` : Lowercase<S>;

/**
 * What {@link createRowcast} takes: every configuration key
 * (docs/operations.md) in camelCase with its parsed type (`port: 6336`,
 * `databaseUrl`, `jwtSecret`, `maxSubscriptions`, `allowAnonymous: true`,
 * `jwtAlgorithms: ['RS256']`, …), and the logger to use.
 */
export type RowcastOptions = { readonly [K in keyof Config as CamelCase<K>]?: Config[K] } & {
  /** The host app's pino logger (default: a new one at `logLevel`). */
  readonly logger?: Logger;
  /** The host's hooks (docs/library.md, "Hooks"), each given `hookTimeoutMs` (default 5,000) to answer. */
  readonly hooks?: RowcastHooks;
  readonly hookTimeoutMs?: number;
  /** Also read the environment's keys (`PORT`, `DATABASE_URL`, …) for what the options leave out (default: false). */
  readonly env?: Readonly<Record<string, string | undefined>>;
};

/** Where a started rowcast listens, and what it uses. */
export interface RowcastStarted {
  readonly port: number;
  readonly tlsPort: number | null;
  readonly databaseUrl: string;
  readonly embedded: boolean;
}

/**
 * rowcast inside a Node app (docs/library.md): the same server `rowcast
 * serve` runs, started and stopped by the host, which also gets the core
 * API: publish to a custom topic, list and close connections, list topics,
 * read the status.
 */
export interface Rowcast {
  /** Starts the server: the database (embedded when no `databaseUrl`), the stream and the ports. */
  start(): Promise<RowcastStarted>;
  /** Closes every connection (1001), the stream and the database. */
  stop(): Promise<void>;
  /** Publishes `message` to custom topic `topic`, as the host app (an admin), like the admin API. */
  publish(topic: string, message: unknown): Promise<ResponseData['new-message']>;
  /** Sends user `to` (a `sub`) a direct message from the host (`from: null`), kept in their inbox `@me` (unless `DIRECT_MESSAGES` is `off`). */
  sendDirect(to: string, message: unknown): Promise<ResponseData['direct-message']>;
  /** Sends connection `id` a `direct` frame, kept nowhere; `false` when there is no such `/live` connection. */
  messageConnection(id: string, message: unknown): boolean;
  /** Creates a custom topic, as an admin's `create-topic` does (`name`, `history`, `readers`, `writers`, `presence`, …). */
  createTopic(attributes: Attributes['create-topic']): Promise<ResponseData['create-topic']>;
  /** The topics (table and custom), as an admin's `list-topic` gives them. */
  topics(): Promise<ResponseData['list-topic']>;
  /** Open connections, on every door. */
  connections(): ConnectionInfo[];
  /** Closes connection `id` (1008, with `reason`); `false` when there is none. */
  closeConnection(id: string, reason: string): boolean;
  /** What `/status` reports. */
  status(): NodeStatus;
}

/**
 * Makes a rowcast for the host app; nothing runs until `start()`.
 *
 * @throws StartupError for an invalid option, naming its configuration key.
 *
 * @example
 * const rowcast = createRowcast({ databaseUrl: process.env.DATABASE_URL, jwtSecret: process.env.JWT_SECRET, port: 6336 });
 * await rowcast.start();
 * await rowcast.publish('announcements', { text: 'deploying at 5' });
 * await rowcast.stop();
 */
export function createRowcast(options: RowcastOptions = {}): Rowcast {
  const config = configOf(options);
  return rowcastOf(config, options.logger ?? pino({ level: config.LOG_LEVEL }), {
    ...(options.hooks ? { hooks: options.hooks } : {}),
    ...(options.hookTimeoutMs !== undefined ? { hookTimeoutMs: options.hookTimeoutMs } : {}),
  });
}

/** A {@link Rowcast} of a configuration already loaded (`rowcast serve`'s, from the environment and `--config`). */
export function rowcastOf(config: Config, logger: Logger, serverOptions: ServerOptions = {}): Rowcast {
  let server: RowcastServer | null = null;
  const running = (): RowcastServer => {
    if (!server) throw new Error('rowcast is not started: call start() first');
    return server;
  };
  const host: Principal = Object.freeze({ sub: null, role: config.ADMIN_ROLE, isAdmin: true, expiresAt: null, claims: Object.freeze({}) });
  return {
    async start() {
      if (server) throw new Error('rowcast is already started');
      server = await startServer(config, logger, serverOptions);
      return { port: server.port, tlsPort: server.tlsPort, databaseUrl: server.databaseUrl, embedded: server.embedded };
    },
    async stop() {
      const stopping = server;
      server = null;
      await stopping?.close();
    },
    publish: async (topic, message) => (await running().core.call(host, 'new-message', { topicName: topic, message })) as ResponseData['new-message'],
    sendDirect: async (to, message) => (await running().core.call(host, 'direct-message', { to, message })) as ResponseData['direct-message'],
    messageConnection: (id, message) => running().core.messageConnection(id, null, message) === 'sent',
    createTopic: async (attributes) => (await running().core.call(host, 'create-topic', attributes)) as ResponseData['create-topic'],
    topics: async () => (await running().core.call(host, 'list-topic', {})) as ResponseData['list-topic'],
    connections: () => running().core.connections(),
    closeConnection: (id, reason) => running().core.closeConnection(id, reason),
    status: () => running().status(),
  };
}

/** Options that are not configuration keys. */
const NOT_CONFIG = new Set(['logger', 'env', 'hooks', 'hookTimeoutMs']);

/** The options as the configuration's keys (`maxSubscriptions` → `MAX_SUBSCRIPTIONS`), checked like the environment. */
function configOf(options: RowcastOptions): Config {
  const file: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    if (NOT_CONFIG.has(name) || value === undefined) continue;
    file[name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  // An option wins over the environment's key of the same name.
  const env = Object.fromEntries(Object.entries(options.env ?? {}).filter(([key]) => !Object.hasOwn(file, key)));
  return loadConfig(env, file);
}
