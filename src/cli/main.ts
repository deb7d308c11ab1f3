#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { RunningPostgres } from '../db/embedded-postgres.js';
import type { Config } from '../config/config.js';
import { RowcastError, StartupError } from '../errors.js';
import type { RowcastStarted } from '../library/create-rowcast.js';
import { VERSION } from '../version.js';
import { configure, mint } from './token-command.js';

/*
 * The server (uWebSockets.js, Postgres, kysely, pino, ...) is imported only
 * inside the commands that run it, with import(): `rowcast token` loads
 * commander, jsonwebtoken and the configuration alone, and starts at once.
 */

const program = new Command('rowcast')
  .description('Postgres row changes as live, permission-aware WebSocket topics')
  .version(VERSION);

program
  .command('serve')
  .description('run the server (embedded Postgres when DATABASE_URL is unset)')
  .option('--config <file>', 'JSON config file with the keys of the environment (also ROWCAST_CONFIG)')
  .action(async (options: { config?: string }) => {
    const { config } = configure(options.config);
    const [{ pino }, { rowcastOf }, { uwsEngine }] = await Promise.all([import('pino'), import('../library/create-rowcast.js'), import('../server/uws-engine.js')]);
    const pretty = process.stdout.isTTY ? (await import('pino-pretty')).default : null;
    // Synchronous writes: a log line written before a crash is never lost. Pretty on a terminal, JSON lines otherwise.
    const destination = pretty ? pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) : pino.destination({ dest: 1, sync: true });
    const logger = pino({ level: config.LOG_LEVEL }, destination);
    const rowcast = rowcastOf(config, logger);
    guardProcess(logger, () => rowcast.stop());
    process.stdout.write(banner(config, await rowcast.start(), uwsEngine));
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
      rowcast.stop().then(
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
  .description("mint a development token signed as the server checks it: JWT_SECRET, else the server's development secret (never creates one)")
  .requiredOption('--sub <sub>', 'the user id (sub claim)')
  .option('--role <role>', 'role claim, e.g. admin')
  .option('--groups <groups>', 'comma-separated groups claim', (v: string) => v.split(',').filter(Boolean))
  .option('--ttl <ttl>', 'lifetime such as 1h, 30m, 7d', '1h')
  .option('--dir <folder>', "the server's folder, when not run there: its .env and its data dir (DATA_DIR, default .rowcast) with jwt-secret")
  .option('--config <file>', 'JSON config file (also ROWCAST_CONFIG)')
  .action((options: { sub: string; role?: string; groups?: string[]; ttl: string; dir?: string; config?: string }) => {
    const cli = configure(options.config, options.dir);
    const claims: Record<string, unknown> = { sub: options.sub };
    if (options.groups) claims['groups'] = options.groups;
    process.stdout.write(`${mint(cli, claims, options.role, options.ttl, { command: 'token' })}\n`);
  });

/**
 * What happens to an exception nothing caught (docs/security.md). Every
 * request, frame and replicated change is handled inside a guard that
 * answers `INTERNAL` with a correlation id, so reaching here is a bug in
 * code outside them. A rejected promise nobody awaited changed no state
 * synchronously: it is logged with a correlation id and the process goes
 * on. An uncaught exception may have left state half-changed: it is logged
 * at fatal with a correlation id and the process exits with code 70 after
 * closing its sockets (1001), so that a supervisor restarts it and clients
 * resume with `since`.
 */
function guardProcess(logger: Logger, stop: () => Promise<void>): void {
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason, correlationId: randomUUID() }, 'a promise was rejected and nothing handled it: logged, the server goes on');
  });
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error, correlationId: randomUUID() }, 'an exception escaped every handler: exiting (70) so that a supervisor restarts a clean process');
    setTimeout(() => process.exit(70), SHUTDOWN_TIMEOUT_MS).unref();
    void stop().finally(() => process.exit(70));
  });
}

/** How long SIGTERM/SIGINT may take before the process gives up and exits 1. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

program
  .command('migrate')
  .description('run the database migrations (the rowcast schema) and exit; serve runs them too')
  .option('--config <file>', 'JSON config file (also ROWCAST_CONFIG)')
  .action(async (options: { config?: string }) => {
    const { migrateToLatest } = await import('../db/migrate.js');
    await withDatabase(configure(options.config).config, async (db) => {
      await migrateToLatest(db);
      process.stdout.write('migrations are up to date\n');
    });
  });

const policy = program.command('policy').description('read policies of tables (rowcast.table_policies)');
policy
  .command('set <table>')
  .description('set the read policy of a table; the running server applies it at once')
  .requiredOption('--read <mode>', 'public, owner, group or admin', (mode: string) => {
    if (!['public', 'owner', 'group', 'admin'].includes(mode)) throw new InvalidArgumentError('use public, owner, group or admin');
    return mode as 'public' | 'owner' | 'group' | 'admin';
  })
  .option('--owner-column <column>', 'for owner: the column holding the sub of the row\'s owner')
  .option('--group-column <column>', 'for group: the column holding the group')
  .option('--group-claim <claim>', 'for group: the token claim (an array) listing the user\'s groups', 'groups')
  .option('--hidden <columns>', 'columns never sent to non-admins, comma-separated', (list: string) => list.split(',').map((column) => column.trim()).filter((column) => column !== ''))
  .option('--config <file>', 'JSON config file (also ROWCAST_CONFIG)')
  .action(async (name: string, options: { read: 'public' | 'owner' | 'group' | 'admin'; ownerColumn?: string; groupColumn?: string; groupClaim: string; hidden?: string[]; config?: string }) => {
    if (options.read === 'owner' && !options.ownerColumn) throw new InvalidArgumentError('--read owner needs --owner-column');
    if (options.read === 'group' && !options.groupColumn) throw new InvalidArgumentError('--read group needs --group-column');
    const { setPolicy } = await import('../policies/policy-store.js');
    await withDatabase(configure(options.config).config, async (db) => {
      const { read, ownerColumn, groupColumn, groupClaim, hidden } = options;
      const row = await setPolicy(db, name, { read, ownerColumn, groupColumn, groupClaim, hiddenColumns: hidden ?? [] });
      const hiding = row.hidden_columns.length > 0 ? `, hidden ${row.hidden_columns.join(', ')}` : '';
      process.stdout.write(`${row.table_schema}.${row.table_name}: read ${row.read}${hiding}\n`);
    });
  });
policy
  .command('list')
  .description('print every table policy, one JSON object per line')
  .option('--config <file>', 'JSON config file (also ROWCAST_CONFIG)')
  .action(async (options: { config?: string }) => {
    const { listPolicies } = await import('../policies/policy-store.js');
    await withDatabase(configure(options.config).config, async (db) => {
      for (const row of await listPolicies(db)) process.stdout.write(`${JSON.stringify(row)}\n`);
    });
  });

program
  .command('tail <topic>')
  .description('print the live events of a topic, one JSON object per line (pipe into jq)')
  .option('--filter <json>', 'a filter as in subscribe, e.g. \'{"status":{"eq":"paid"}}\'', (text: string) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new InvalidArgumentError('--filter must be JSON');
    }
  })
  .option('--url <url>', 'the /live endpoint (default ws://127.0.0.1:PORT/live)')
  .option('--token <jwt>', "a token (default: an admin token signed as rowcast token signs, with JWT_SECRET or the server's development secret)")
  .option('--dir <folder>', "the server's folder, when not run there (as for rowcast token)")
  .option('--config <file>', 'JSON config file (also ROWCAST_CONFIG)')
  .action(async (topic: string, options: { filter?: unknown; url?: string; token?: string; dir?: string; config?: string }) => {
    const cli = configure(options.config, options.dir);
    const { config } = cli;
    const token = options.token ?? mint(cli, { sub: 'rowcast-tail' }, 'admin', '12h', { command: 'tail' });
    const url = options.url ?? `ws://127.0.0.1:${config.PORT}/live`;
    await tail(`${url}?client=rowcast-tail`, token, topic, options.filter);
  });

program
  .command('bench')
  .description('run the benchmark suite (npm run bench; needs a source checkout)')
  .allowUnknownOption()
  .action((_options: unknown, command: Command) => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    if (!existsSync(path.join(root, 'bench'))) throw new InvalidArgumentError('the benchmarks live in the source checkout (bench/); run it from there');
    const child = spawn('npm', ['run', 'bench', '--', ...command.args], { cwd: root, stdio: 'inherit' });
    child.on('exit', (code) => process.exit(code ?? 1));
  });

/** Runs `fn` on the configured database (the embedded one when DATABASE_URL is unset, started if needed). */
async function withDatabase(config: Config, fn: (db: Database) => Promise<void>): Promise<void> {
  const { createDatabase } = await import('../db/database.js');
  let embedded: RunningPostgres | null = null;
  let url = config.DATABASE_URL;
  if (url === undefined) {
    const { startEmbeddedPostgres } = await import('../db/embedded-postgres.js');
    embedded = await startEmbeddedPostgres({ dataDir: path.join(config.DATA_DIR, 'pgdata'), port: config.EMBEDDED_PG_PORT });
    url = embedded.url;
  }
  const db = createDatabase(url, { max: 1 });
  try {
    await fn(db);
  } finally {
    await db.destroy();
    await embedded?.stop();
  }
}

/** Subscribes and prints each event frame as one line until the connection ends (the token in a header, never in the URL). */
async function tail(url: string, token: string, topic: string, filter: unknown): Promise<void> {
  const { default: WebSocket } = await import('ws');
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new StartupError(`${url.split('?')[0]}: the upgrade was refused with HTTP ${res.statusCode}`)));
    socket.once('open', () =>
      socket.send(JSON.stringify({ id: 'tail', method: 'subscribe', attributes: { topicName: topic, ...(filter !== undefined ? { filter } : {}) } })),
    );
    socket.on('message', (data) => {
      const text = data.toString();
      const frame = JSON.parse(text) as { type: string; id?: string; ok?: boolean; error?: { message: string } };
      if (frame.type === 'event') process.stdout.write(`${text}\n`);
      else if (frame.type === 'response' && frame.id === 'tail' && !frame.ok) reject(new StartupError(`subscribe ${topic}: ${frame.error?.message}`));
      else if (frame.type === 'response' && frame.id === 'tail') process.stderr.write(`tailing ${topic}\n`);
      else if (frame.type === 'subscription') process.stderr.write(`${text}\n`);
    });
    socket.on('close', (code, reason) => {
      process.stderr.write(`connection closed (${code}${reason.length > 0 ? `: ${reason.toString()}` : ''})\n`);
      resolve();
    });
  });
}

function banner(config: Config, server: RowcastStarted, uwsEngine: 'native' | 'javascript-fallback'): string {
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
  const engine = uwsEngine === 'native' ? 'native uWebSockets.js' : 'JavaScript fallback of uWebSockets.js (slow!)';
  const database = server.embedded
    ? `${maskPassword(server.databaseUrl)}  (embedded Postgres: data in ${config.DATA_DIR}/pgdata, password in ${config.DATA_DIR}/pg-password)`
    : maskPassword(server.databaseUrl);
  return [
    '',
    `rowcast ${VERSION} is running on the ${engine} engine`,
    `  WebSocket:  ws://${host}:${server.port}/live  (token as subprotocol bearer.<JWT>, or Authorization: Bearer <JWT>)`,
    ...(server.tlsPort !== null ? [`  TLS:        wss://${host}:${server.tlsPort}/live`] : []),
    `  Status:     http://${host}:${server.port}/status`,
    ...(config.INSPECTOR ? [`  Inspector:  http://${host}:${server.port}/`] : []),
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

program.parseAsync().catch((error: unknown) => {
  if (error instanceof StartupError || error instanceof InvalidArgumentError || error instanceof RowcastError) {
    process.stderr.write(`rowcast: ${error.message}\n`);
  } else {
    process.stderr.write(`rowcast: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
