/**
 * `npm test`: runs the ava suite against DATABASE_URL, or, when it is unset,
 * against a throw-away embedded Postgres 18 started here. Each test file makes
 * its own database, slot and publication inside that server.
 *
 * The inspector's browser test drives Debian's Chromium: when it is missing
 * this installs it first (as root, or with password-less sudo, through
 * apt-get), so that the README's test command passes on a fresh machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { dropStaleTestDatabases } from './helpers/database.js';
import { freePort } from './helpers/free-port.js';

ensureChromium();

let stop = async () => {};
if (!process.env['DATABASE_URL']) {
  await import('node:fs/promises').then((fs) => fs.mkdir('.rowcast', { recursive: true }));
  const dir = await mkdtemp(path.resolve('.rowcast', 'test-pg-'));
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port: await freePort() });
  process.env['DATABASE_URL'] = pg.url;
  stop = async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
  console.log(`test database: embedded Postgres at ${pg.url}`);
} else {
  console.log(`test database: ${process.env['DATABASE_URL']}`);
  await dropStaleTestDatabases(process.env['DATABASE_URL']);
}

/**
 * Files that measure the server's memory and throughput under a burst: they
 * run after the others, alone, so that the parallel suite's load (fuzzers,
 * clusters) does not decide their numbers. With arguments (a file, --match)
 * ava runs once, as asked.
 */
const ALONE = ['test/large-transaction.test.ts'];
const args = process.argv.slice(2);
const runs =
  args.length > 0
    ? [args]
    : [
        (await readdir('test')).filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`).filter((f) => !ALONE.includes(f)),
        ['--concurrency', '1', ...ALONE],
      ];
let code = 0;
for (const run of runs) {
  const ava = spawn(process.execPath, [path.resolve('node_modules/ava/entrypoints/cli.mjs'), ...run], { stdio: 'inherit', env: process.env });
  code = await new Promise<number>((resolve) => ava.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  if (code !== 0) break;
}
await stop();
process.exit(code);

/**
 * Installs Debian's `chromium` when the browser test's Chromium
 * (`CHROMIUM_PATH`, default /usr/bin/chromium) is missing and this machine
 * can: apt-get as root or through password-less sudo. Otherwise it says what
 * to run, and the browser test fails saying the same.
 */
function ensureChromium(): void {
  const chromium = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
  if (existsSync(chromium)) return;
  const hint = 'the browser test needs Chromium: run `sudo apt-get install chromium` (Debian/Ubuntu) or set CHROMIUM_PATH';
  if (process.env['CHROMIUM_PATH'] !== undefined || !existsSync('/usr/bin/apt-get')) {
    console.log(hint);
    return;
  }
  const root = process.getuid?.() === 0;
  if (!root && spawnSync('sudo', ['-n', 'true']).status !== 0) {
    console.log(hint);
    return;
  }
  console.log('installing Debian\'s chromium for the browser test (apt-get install chromium)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) =>
    (root ? spawnSync(args[0]!, args.slice(1), { stdio: 'inherit', env }) : spawnSync('sudo', ['-n', ...args], { stdio: 'inherit', env })).status === 0;
  if (!run(['apt-get', 'update', '-qq']) || !run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'chromium']) || !existsSync(chromium)) {
    console.log(`installing chromium failed: ${hint}`);
  }
}
