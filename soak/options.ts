import { parseArgs } from 'node:util';

/** The size and shape of a soak run. */
export interface SoakOptions {
  /** `full` (the size), `ci` (about a minute), or `custom` (full size with flags overriding it). */
  readonly size: 'full' | 'ci' | 'custom';
  /** Client connections of the fleet (the witnesses come on top). */
  readonly connections: number;
  readonly nodes: number;
  /** Changes per second into the owner table. */
  readonly rate: number;
  /** Length of the steady phase (traffic, chat and churn), after the ramp. */
  readonly minutes: number;
  /** Messages per second to each chat topic (the room and the ephemeral one). */
  readonly chatPerSecond: number;
  /** Share of the open connections dropped per minute, in %: each comes back a moment later and resumes with `since`. */
  readonly churnPercentPerMinute: number;
  /** Fleet connections per user (a user on several devices: several connections receive each of its rows). */
  readonly connectionsPerUser: number;
  /** One fleet connection in this many also subscribes to both chat topics (and publishes). */
  readonly chatEvery: number;
  /** Seconds between samples. */
  readonly sampleSeconds: number;
  /** Each witness is cut about this often (seconds) and resumes with `since`. */
  readonly witnessCutSeconds: number;
  /** At most this many connections per load-generator process. */
  readonly maxPerWorker: number;
  readonly redisUrl: string;
  /** Server configuration for every node (`--env KEY=VALUE`), on top of the defaults. */
  readonly env: Readonly<Record<string, string>>;
}

/** The size: 48,000 connections over three nodes, 1,000 changes/s plus chat, 30 minutes. */
export const FULL: Omit<SoakOptions, 'size' | 'redisUrl' | 'env'> = {
  connections: 48_000,
  nodes: 3,
  rate: 1000,
  minutes: 30,
  chatPerSecond: 10,
  churnPercentPerMinute: 2,
  connectionsPerUser: 2,
  chatEvery: 100,
  sampleSeconds: 10,
  witnessCutSeconds: 60,
  maxPerWorker: 12_000,
};

/** About a minute on a 2-core machine, light on CPU. */
export const CI: Omit<SoakOptions, 'size' | 'redisUrl' | 'env'> = {
  ...FULL,
  connections: 3000,
  rate: 200,
  minutes: 0.75,
  chatPerSecond: 5,
  churnPercentPerMinute: 5,
  sampleSeconds: 5,
  witnessCutSeconds: 10,
};

export const USAGE = `usage: npx tsx soak/main.ts [--ci] [--minutes M] [--connections N] [--rate R] [--nodes K]
       [--chat-rate R] [--churn P] [--sample-seconds S] [--env KEY=VALUE …]
  --ci              about a minute: ${CI.connections.toLocaleString('en')} connections, ${CI.rate} changes/s, ${CI.minutes * 60} s steady
  (default)         full size: ${FULL.connections.toLocaleString('en')} connections over ${FULL.nodes} nodes, ${FULL.rate.toLocaleString('en')} changes/s, ${FULL.minutes} minutes
  --minutes M       length of the steady phase (after the ramp)
  --connections N   fleet connections, spread evenly over the nodes
  --rate R          changes per second into the owner table
  --nodes K         cluster nodes (default ${FULL.nodes})
  --chat-rate R     messages per second to each chat topic
  --churn P         % of the open connections dropped (and resumed) per minute
  --sample-seconds S
  --env KEY=VALUE   server configuration for every node (repeatable), e.g. --env HISTORY_EVENTS=50000
Redis: REDIS_URL (default redis://127.0.0.1:6379). Postgres: DATABASE_URL, else an embedded one.`;

/** Reads the command line (`--help` prints {@link USAGE} and exits). */
export function parseSoakOptions(argv: readonly string[]): SoakOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ci: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      minutes: { type: 'string' },
      connections: { type: 'string' },
      rate: { type: 'string' },
      nodes: { type: 'string' },
      'chat-rate': { type: 'string' },
      churn: { type: 'string' },
      'sample-seconds': { type: 'string' },
      env: { type: 'string', multiple: true, default: [] },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const base = values.ci ? CI : FULL;
  const number = (flag: string, value: string | undefined, fallback: number, min = 0) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${flag} ${value}: expected a number ≥ ${min}\n${USAGE}`);
    return n;
  };
  const overridden =
    values.env.length > 0 || ['minutes', 'connections', 'rate', 'nodes', 'chat-rate', 'churn', 'sample-seconds'].some((flag) => values[flag as keyof typeof values] !== undefined);
  return {
    ...base,
    size: values.ci ? 'ci' : overridden ? 'custom' : 'full',
    minutes: number('minutes', values.minutes, base.minutes, 0.1),
    connections: Math.round(number('connections', values.connections, base.connections, 1)),
    rate: number('rate', values.rate, base.rate, 1),
    nodes: Math.round(number('nodes', values.nodes, base.nodes, 1)),
    chatPerSecond: number('chat-rate', values['chat-rate'], base.chatPerSecond),
    churnPercentPerMinute: number('churn', values.churn, base.churnPercentPerMinute),
    sampleSeconds: number('sample-seconds', values['sample-seconds'], base.sampleSeconds, 1),
    redisUrl: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
    env: Object.fromEntries(
      values.env.map((pair) => {
        const at = pair.indexOf('=');
        if (at < 1) throw new Error(`--env ${pair}: expected KEY=VALUE\n${USAGE}`);
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    ),
  };
}
