/**
 * The library-mode example (examples/cookie-sessions/server.mjs), run as
 * written: its cookie sessions authenticate WebSocket connections through
 * the `authenticate` hook, and its `onMessage` hook masks and refuses chat
 * messages. Needs the build (`import { createRowcast } from 'rowcast'`).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import test from 'ava';
import { createTestDatabase } from './helpers/database.js';
import { errorOf, LiveClient, upgradeStatus } from './helpers/live-client.js';

test('the cookie-sessions example: log in, connect with the cookie, chat through the moderation hook; no cookie or a stale one is refused', async (t) => {
  const db = await createTestDatabase();
  const child = spawn(process.execPath, ['examples/cookie-sessions/server.mjs'], {
    env: { ...process.env, DATABASE_URL: db.url, SLOT_NAME: db.name, PUBLICATION_NAME: db.name, APP_PORT: '0', ROWCAST_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const ports = await new Promise<{ app: number; rowcast: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the example did not start within 60 s: ${stderr}`)), 60_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (!line.includes('example listening')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { app: number; rowcast: number });
      });
      void exited.then((code) => reject(new Error(`the example exited with ${code}: ${stderr}`)));
    });
    const login = async (name: string) => {
      const response = await fetch(`http://127.0.0.1:${ports.app}/login`, { method: 'POST', body: JSON.stringify({ name }) });
      t.is(response.status, 204);
      return response.headers.get('set-cookie')!.split(';')[0]!;
    };
    const url = `ws://127.0.0.1:${ports.rowcast}/live`;
    const alice = await LiveClient.connect(url, { headers: { cookie: await login('alice') } });
    const bob = await LiveClient.connect(url, { headers: { cookie: await login('bob') } });
    t.is(alice.session.user.sub, 'alice');
    await bob.subscribe('lobby');

    await alice.call('new-message', { topicName: 'lobby', message: { text: 'darn, hello' } });
    const received = await bob.next((f) => f.type === 'event' && f.topic === 'lobby');
    t.like(received, { data: { attributes: { message: { text: '****, hello', from: 'alice' }, sender: 'alice' } } });
    t.like(errorOf(await alice.request('new-message', { topicName: 'lobby', message: { text: 'buy spam now' } })), { code: 'FORBIDDEN' });
    t.deepEqual((await (await fetch(`http://127.0.0.1:${ports.app}/who`)).json()) as string[], ['alice', 'bob']);

    t.is((await upgradeStatus(url)).status, 401);
    t.is((await upgradeStatus(url, undefined, { headers: { cookie: 'session=stale' } })).status, 401);
    alice.close();
    bob.close();
  } finally {
    child.kill('SIGTERM');
    await exited;
    await db.drop();
  }
});
