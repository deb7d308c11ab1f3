/**
 * `npm test`: runs the ava suite against DATABASE_URL, or, when it is unset,
 * against a throw-away embedded Postgres 18 started here. Each test file makes
 * its own database, slot and publication inside that server.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { dropStaleTestDatabases } from './helpers/database.js';
import { freePort } from './helpers/free-port.js';

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

const ava = spawn(process.execPath, [path.resolve('node_modules/ava/entrypoints/cli.mjs'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: process.env,
});
const code = await new Promise<number>((resolve) => ava.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await stop();
process.exit(code);
