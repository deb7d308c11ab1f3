/**
 * `rowcast token` signs with the secret the server checks, and never makes
 * one: JWT_SECRET (environment, `.env`, config file), else the development
 * secret in the server's data dir, found in the working directory or in
 * `--dir <the server's folder>`; without either it exits 1 saying where it
 * looked. Runs the built CLI (dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import test from 'ava';
import jwt from 'jsonwebtoken';
import { freePort } from './helpers/free-port.js';
import { upgradeStatus } from './helpers/live-client.js';
import { TEST_SECRET, withServer } from './helpers/with-server.js';

const MAIN = path.resolve('dist/src/cli/main.js');
const FILE_SECRET = 'file-secret-of-the-server-0123456789';

/** Runs the built CLI in `cwd` with only `env` (and PATH) set. */
function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const folders: string[] = [];
test.after.always(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** An empty folder of the test's own (removed when the file's tests end). */
function folder(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `rowcast-${name}-`));
  folders.push(dir);
  return dir;
}

/** A server's folder as the server leaves it after its first start: `.rowcast/jwt-secret`. */
function serverFolder(secret = FILE_SECRET): string {
  const dir = folder('server');
  mkdirSync(path.join(dir, '.rowcast'));
  writeFileSync(path.join(dir, '.rowcast', 'jwt-secret'), `${secret}\n`, { mode: 0o600 });
  return dir;
}

function claimsOf(token: string, secret: string): jwt.JwtPayload {
  return jwt.verify(token, secret, { algorithms: ['HS256'] }) as jwt.JwtPayload;
}

test('without JWT_SECRET or a server folder it exits 1, says where it looked and how to fix it, and creates nothing', async (t) => {
  const app = folder('app');
  const result = await cli(['token', '--sub', '1'], app);
  t.is(result.code, 1);
  t.is(result.stdout, '');
  t.true(result.stderr.includes(path.join(app, '.env')), result.stderr);
  t.true(result.stderr.includes(path.join(app, '.rowcast', 'jwt-secret')), result.stderr);
  t.regex(result.stderr, /--dir/);
  t.regex(result.stderr, /JWT_SECRET/);
  t.regex(result.stderr, /server's folder/);
  t.false(existsSync(path.join(app, '.rowcast')));

  // A --dir without a secret in it: named, and nothing made there either.
  const empty = folder('empty-server');
  const elsewhere = await cli(['token', '--sub', '1', '--dir', empty], app);
  t.is(elsewhere.code, 1);
  t.true(elsewhere.stderr.includes(path.join(empty, '.rowcast', 'jwt-secret')), elsewhere.stderr);
  t.false(existsSync(path.join(empty, '.rowcast')));
  t.false(existsSync(path.join(app, '.rowcast')));

  const missing = await cli(['token', '--sub', '1', '--dir', path.join(app, 'nope')], app);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /--dir .*nope: no such folder/);
});

test('in the server folder, or with --dir naming it, it signs with the server\'s development secret', async (t) => {
  const server = serverFolder();
  const app = folder('app');
  const here = await cli(['token', '--sub', '1'], server);
  t.is(here.code, 0, here.stderr);
  t.like(claimsOf(here.stdout.trim(), FILE_SECRET), { sub: '1' });
  const there = await cli(['token', '--sub', '1', '--role', 'admin', '--groups', 'a,b', '--dir', server], app);
  t.is(there.code, 0, there.stderr);
  const claims = claimsOf(there.stdout.trim(), FILE_SECRET);
  t.like(claims, { sub: '1', role: 'admin', groups: ['a', 'b'] });
  t.true(claims.exp! > Date.now() / 1000);
  t.false(existsSync(path.join(app, '.rowcast')));

  // --dir reads the server's .env as the server does: its DATA_DIR, and its JWT_SECRET over the file.
  const moved = folder('server-moved');
  writeFileSync(path.join(moved, '.env'), 'DATA_DIR=state\n');
  mkdirSync(path.join(moved, 'state'));
  writeFileSync(path.join(moved, 'state', 'jwt-secret'), `${FILE_SECRET}-moved\n`);
  const fromState = await cli(['token', '--sub', '2', '--dir', moved], app);
  t.like(claimsOf(fromState.stdout.trim(), `${FILE_SECRET}-moved`), { sub: '2' });
  writeFileSync(path.join(moved, '.env'), `DATA_DIR=state\nJWT_SECRET=${FILE_SECRET}-env\n`);
  const fromEnvFile = await cli(['token', '--sub', '3', '--dir', moved], app);
  t.like(claimsOf(fromEnvFile.stdout.trim(), `${FILE_SECRET}-env`), { sub: '3' });
});

test('a token minted from the server folder\'s secret is accepted by a server with that secret, one of another secret is not', withServer, { env: { JWT_SECRET: FILE_SECRET } }, async (t, { liveUrl }) => {
  const minted = await cli(['token', '--sub', '42', '--dir', serverFolder()], folder('app'));
  t.is((await upgradeStatus(`${liveUrl}?token=${minted.stdout.trim()}`)).status, 101);
  const other = await cli(['token', '--sub', '42', '--dir', serverFolder('another-secret-0123456789')], folder('app'));
  t.is((await upgradeStatus(`${liveUrl}?token=${other.stdout.trim()}`)).status, 401);
});

test('JWT_SECRET in the environment or in .env wins over any secret file', withServer, {}, async (t, { liveUrl }) => {
  const server = serverFolder();
  const fromEnv = await cli(['token', '--sub', '7'], server, { JWT_SECRET: TEST_SECRET });
  t.is(fromEnv.code, 0, fromEnv.stderr);
  t.like(claimsOf(fromEnv.stdout.trim(), TEST_SECRET), { sub: '7' });
  t.is((await upgradeStatus(`${liveUrl}?token=${fromEnv.stdout.trim()}`)).status, 101);

  const app = folder('app');
  writeFileSync(path.join(app, '.env'), `JWT_SECRET=${TEST_SECRET}\n`);
  const fromEnvFile = await cli(['token', '--sub', '8'], app);
  t.like(claimsOf(fromEnvFile.stdout.trim(), TEST_SECRET), { sub: '8' });
  t.false(existsSync(path.join(app, '.rowcast')));

  const fromConfig = folder('config');
  writeFileSync(path.join(fromConfig, 'rowcast.json'), JSON.stringify({ JWT_SECRET: TEST_SECRET, JWT_ISSUER: 'https://app.example', JWT_AUDIENCE: 'rowcast' }));
  const configured = await cli(['token', '--sub', '9', '--config', 'rowcast.json'], fromConfig);
  t.like(jwt.verify(configured.stdout.trim(), TEST_SECRET, { issuer: 'https://app.example', audience: 'rowcast' }), { sub: '9' });
});

test('for a server with a public key only, it says it cannot mint tokens', async (t) => {
  const result = await cli(['token', '--sub', '1'], serverFolder(), { JWT_PUBLIC_KEY_FILE: 'idp-public.pem' });
  t.is(result.code, 1);
  t.regex(result.stderr, /cannot mint tokens for a public-key-only server/);
  const rsOnly = await cli(['token', '--sub', '1'], folder('app'), { JWT_SECRET: TEST_SECRET, JWT_ALGORITHMS: 'RS256' });
  t.is(rsOnly.code, 1);
  t.regex(rsOnly.stderr, /JWT_ALGORITHMS=RS256/);
});

test('the embedded server makes its secret on first start; rowcast token --dir from another folder signs tokens it accepts', async (t) => {
  const server = folder('fresh-server');
  const app = folder('app');
  const child = spawn(process.execPath, [MAIN, 'serve'], {
    cwd: server,
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', HOST: '127.0.0.1', EMBEDDED_PG_PORT: String(await freePort()), LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => stop(child));
  const port = await startedPort(child);
  t.true(existsSync(path.join(server, '.rowcast', 'jwt-secret')));
  const secret = readFileSync(path.join(server, '.rowcast', 'jwt-secret'), 'utf8').trim();

  const refused = await cli(['token', '--sub', '42'], app);
  t.is(refused.code, 1);
  t.false(existsSync(path.join(app, '.rowcast')));

  const minted = await cli(['token', '--sub', '42', '--role', 'admin', '--dir', server], app);
  t.is(minted.code, 0, minted.stderr);
  t.like(claimsOf(minted.stdout.trim(), secret), { sub: '42', role: 'admin' });
  t.is((await upgradeStatus(`ws://127.0.0.1:${port}/live?token=${minted.stdout.trim()}`)).status, 101);
});

/** Waits for the server's "rowcast started" log line and returns its port. */
function startedPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => reject(new Error(`the server did not start within 120 s: ${stderr}`)), 120_000);
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const log = JSON.parse(line) as { msg?: string; port?: number };
      if (log.msg !== 'rowcast started') return;
      clearTimeout(timer);
      resolve(log.port!);
    });
  });
}

/** SIGTERM (the server stops its embedded Postgres), SIGKILL if it takes over 20 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}
