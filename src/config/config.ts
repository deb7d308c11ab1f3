import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ALGORITHMS } from '../auth/token-verifier.js';
import { StartupError } from '../errors.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number) => z.coerce.number().int().min(min);
const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case Postgres identifier');

const schema = z.object({
  PORT: int(0).max(65535).default(6336),
  HOST: z.string().min(1).default('0.0.0.0'),
  TLS_PORT: int(0).max(65535).default(6443),
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
  DATABASE_URL: z.string().url().optional(),
  EMBEDDED_PG_PORT: int(1).max(65535).default(54329),
  DATA_DIR: z.string().min(1).default('.rowcast'),
  JWT_SECRET: z.string().min(16).optional(),
  JWT_PUBLIC_KEY_FILE: z.string().min(1).optional(),
  JWT_ALGORITHMS: z
    .string()
    .transform((list) => list.split(',').map((a) => a.trim()))
    .pipe(z.array(z.enum(ALGORITHMS, { message: `each must be one of ${ALGORITHMS.join(', ')} (never none)` })).min(1))
    .optional(),
  JWT_CLOCK_TOLERANCE_SECONDS: int(0).max(300).default(5),
  JWT_AUDIENCE: z.string().min(1).optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_REQUIRE_EXP: bool.default(true),
  ADMIN_ROLE: z.string().min(1).default('admin'),
  ROLE_CLAIM: z.string().min(1).default('role'),
  ALLOW_ANONYMOUS: bool.default(false),
  AUTH_FIRST_FRAME: bool.default(false),
  AUTH_TIMEOUT_SECONDS: int(1).max(300).default(10),
  OPEN_CHANNELS: bool.default(true),
  PUBLICATION_TABLES: z.string().min(1).default('*'),
  SLOT_NAME: identifier.default('rowcast'),
  PUBLICATION_NAME: identifier.default('rowcast'),
  MAX_CONNECTIONS: int(1).default(100_000),
  MAX_SUBSCRIPTIONS: int(1).default(100),
  MAX_MESSAGE_BYTES: int(1024).default(1_048_576),
  MAX_CHAT_MESSAGE_BYTES: int(1).default(65_536),
  /** Who may send direct messages: nobody, admins (and the host app), or every signed-in user. */
  DIRECT_MESSAGES: z.enum(['off', 'admin', 'authenticated']).default('admin'),
  /** Direct messages kept per user in their inbox `@me`. */
  DIRECT_HISTORY: int(1).max(100_000).default(100),
  RATE_LIMIT_PER_SECOND: int(1).default(100),
  RATE_LIMIT_BURST: int(1).default(200),
  IDLE_TIMEOUT_SECONDS: int(0).default(60),
  MAX_BACKPRESSURE_BYTES: int(1024).default(4_194_304),
  HISTORY_EVENTS: int(0).default(10_000),
  MAX_FRAME_DEPTH: int(4).max(1000).default(32),
  MAX_PENDING_REQUESTS: int(1).default(1000),
  MAX_SUBSCRIPTIONS_PER_USER: int(1).default(1000),
  MAX_FILTER_VALUES: int(1).default(100),
  MAX_FILTER_VALUE_LENGTH: int(1).max(65_536).default(256),
  MAX_FILTER_KEY_BYTES: int(64).default(4096),
  MAX_FILTER_GROUPS_PER_TOPIC: int(1).default(1000),
  MAX_FILTER_GROUPS_PER_PARTITION: int(1).default(100),
  MAX_FILTER_GROUPS_PER_CONNECTION: int(1).default(32),
  PRESENCE_MAX_META_BYTES: int(2).max(65_536).default(1024),
  PRESENCE_MAX_MEMBERS: int(1).default(10_000),
  PRESENCE_MAX_METAS_PER_KEY: int(1).default(20),
  PRESENCE_TRACK_RATE: int(1).default(10),
  PRESENCE_BATCH_MS: int(0).max(10_000).default(50),
  PRESENCE_NODE_TTL_MS: int(500).max(60_000).default(3000),
  SNAPSHOT_MAX_ROWS: int(1).default(100_000),
  SNAPSHOT_CONCURRENCY: int(1).max(100).default(4),
  AGGREGATE_MAX_ROWS: int(0).default(1_000_000),
  METRICS_TOKEN: z.string().min(16).optional(),
  STATUS_PUBLIC: bool.default(false),
  ALLOWED_ORIGINS: z.string().default('*'),
  REDIS_URL: z.string().url().optional(),
  CLUSTER_STREAM_LENGTH: int(1000).default(100_000),
  CLUSTER_FAILOVER_MS: int(100).max(60_000).default(1000),
  CLUSTER_SECRET: z.string().min(16).optional(),
  INSPECTOR: bool.default(true),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

/**
 * The server's configuration: docs/operations.md, resolved once from the
 * environment and frozen. Keys keep their environment names so the
 * docs' table, the env and the code read the same.
 *
 * Every key, its default and what it bounds is in docs/operations.md's
 * configuration table; the limits on what a client controls (frame depth,
 * filters, pending requests, subscriptions per user) and the security
 * switches (`JWT_REQUIRE_EXP`, `METRICS_TOKEN`, `STATUS_PUBLIC`,
 * `CLUSTER_SECRET`) are described in docs/security.md.
 */
export type Config = Readonly<z.infer<typeof schema>>;

/**
 * Validates `env` (usually `process.env`) over `file` (the JSON config file,
 * same keys; the environment wins) and returns the frozen config. Empty
 * strings count as unset. Throws a {@link StartupError} naming every invalid
 * key and the form it expects.
 *
 * @example
 * const config = loadConfig({ PORT: '7000' });
 */
export function loadConfig(env: Record<string, string | undefined>, file: Record<string, unknown> = {}): Config {
  const input: Record<string, string> = {};
  const unknown = Object.keys(file).filter((key) => !Object.hasOwn(schema.shape, key));
  if (unknown.length > 0) {
    throw new StartupError(`invalid configuration file: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (the keys are those of the environment, e.g. PORT)`);
  }
  for (const key of Object.keys(schema.shape)) {
    const value = env[key] ?? fileValue(key, file[key]);
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '?');
      return `  ${key}=${JSON.stringify(input[key] ?? '')}: ${issue.message}`;
    });
    throw new StartupError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return Object.freeze(parsed.data);
}

/** A config file value as the environment would spell it: strings, numbers and booleans only. */
function fileValue(key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new StartupError(`invalid configuration file: ${key} must be a string, number or boolean`);
}

/**
 * Reads the JSON config file (`--config` or `ROWCAST_CONFIG`): an object of
 * the same keys as the environment.
 *
 * @example
 * loadConfig(process.env, readConfigFile('rowcast.json'));
 */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new StartupError(`config file ${file}: cannot read it (${(error as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new StartupError(`config file ${file}: not JSON (${(error as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new StartupError(`config file ${file}: must be a JSON object of keys such as PORT`);
  return json as Record<string, unknown>;
}
