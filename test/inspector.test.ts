/**
 * Issue 9, the inspector page at `GET /`, in real headless Chromium (Debian's
 * `chromium`, driven by playwright-core; `npm test` installs it): paste a
 * token, subscribe to a table with a click, see its rows in the grid (the
 * snapshot's, then a row inserted by the test, highlighted for a moment,
 * updated, deleted) and the events in the log, see who is present on a
 * custom topic, publish to it. Screenshots are written to
 * .rowcast/test-output/ (inspector-rows.png, inspector.png) and their paths logged.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { chromium } from 'playwright-core';
import { signToken, withServer } from './helpers/with-server.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
// As the machine's notes advise: without the background-networking flags Chromium tries to reach Google and is refused.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const TABLES = `
  CREATE TABLE orders (id int PRIMARY KEY, owner_id text NOT NULL, item text NOT NULL);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('orders', 'owner', 'owner_id');`;

test('the inspector: paste a token, subscribe to a table, see its rows and a row inserted by the test; see who is present on a custom topic and publish to it', withServer, { sql: TABLES }, async (t, { server, db, connect }) => {
  if (!existsSync(CHROMIUM)) t.fail(`no Chromium at ${CHROMIUM}: run \`sudo apt-get install chromium\` (npm test does when it can), or set CHROMIUM_PATH`);
  const admin = await connect({ sub: 'ops', role: 'admin' });
  await admin.call('create-topic', { name: 'lobby', writers: 'authenticated', presence: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));

  await page.goto(`http://127.0.0.1:${server.port}/`);
  await page.fill('#token', signToken({ sub: 'alice' }));
  await page.click('#connect button');
  await page.locator('#state.open').waitFor({ timeout: 10_000 });
  t.regex((await page.textContent('#who')) ?? '', /sub alice/);

  // Rows before the subscribe: the grid starts from the snapshot of those alice may read.
  await db.query(`INSERT INTO orders VALUES (10, 'alice', 'in the snapshot'), (11, 'bob', 'bob in the snapshot')`);
  await page.click('button[data-topic="orders"]');
  await page.locator('button[data-topic="orders"]', { hasText: 'unsubscribe' }).waitFor({ timeout: 10_000 });
  const grid = page.locator('#grids .grid[data-topic="orders"]');
  await grid.locator('tr[data-id="10"]').waitFor({ timeout: 10_000 });
  t.deepEqual(await grid.locator('thead th').allTextContents(), ['id', 'owner_id', 'item']);
  t.deepEqual(await grid.locator('tr[data-id="10"] td').allTextContents(), ['10', 'alice', 'in the snapshot']);
  t.is(await grid.locator('tbody tr').count(), 1, "bob's row is not alice's");
  t.regex((await grid.locator('h3').textContent()) ?? '', /orders · 1 row$/);
  t.is(await grid.locator('tr.changed').count(), 0, 'the snapshot is not a change');

  await db.query(`INSERT INTO orders VALUES (1, 'alice', 'inserted by the test'), (2, 'bob', 'not for alice')`);
  const row = page.locator('#events tr', { hasText: 'inserted by the test' });
  await row.waitFor({ timeout: 10_000 });
  t.regex((await row.textContent()) ?? '', /[0-9A-F]{16}-[0-9A-F]{8}ordersCreate1/i);
  // In the grid too, highlighted, then not after a moment.
  await grid.locator('tr.changed[data-id="1"]', { hasText: 'inserted by the test' }).waitFor({ timeout: 10_000 });
  await grid.locator('tr[data-id="1"]:not(.changed)').waitFor({ timeout: 10_000 });
  t.is(await grid.locator('tbody tr').count(), 2);
  await db.query(`UPDATE orders SET item = 'updated by the test' WHERE id = 10`);
  await grid.locator('tr.changed[data-id="10"]', { hasText: 'updated by the test' }).waitFor({ timeout: 10_000 });
  const dir = path.resolve('.rowcast/test-output');
  mkdirSync(dir, { recursive: true });
  const rows = path.join(dir, 'inspector-rows.png');
  await page.screenshot({ path: rows, fullPage: true });
  t.log(`screenshot of the rows, one highlighted: ${rows}`);
  await db.query(`DELETE FROM orders WHERE id = 1`);
  await grid.locator('tr[data-id="1"]').waitFor({ state: 'detached', timeout: 10_000 });
  t.regex((await grid.locator('h3').textContent()) ?? '', /orders · 1 row$/);
  t.false(((await grid.textContent()) ?? '').includes('not for alice'));

  await page.click('button[data-topic="lobby"]');
  await page.locator('button[data-topic="lobby"]', { hasText: 'unsubscribe' }).waitFor({ timeout: 10_000 });
  // Who is present on the topic, live: a member joins with its meta, and leaves when its connection closes.
  const bob = await connect({ sub: 'bob' });
  await bob.subscribe('lobby');
  await bob.call('track', { topicName: 'lobby', meta: { status: 'online' } });
  await page.locator('#presence li[data-key="bob"]', { hasText: '"status":"online"' }).waitFor({ timeout: 10_000 });
  bob.close();
  await page.locator('#presence li[data-key="bob"]').waitFor({ state: 'detached', timeout: 10_000 });
  await page.fill('#publish-message', '{"text": "hello from the inspector"}');
  await page.click('#publish button');
  await page.locator('#events tr', { hasText: 'hello from the inspector' }).waitFor({ timeout: 10_000 });
  // The live counts come from /status, which is for operators: a user's token is not enough.
  await page.locator('#connections', { hasText: 'admin token needed' }).waitFor({ timeout: 10_000 });
  t.false(((await page.textContent('#events')) ?? '').includes('not for alice'));

  // With an admin token: a rate once two readings of /status exist, and a line of them.
  await page.fill('#token', signToken({ sub: 'ops', role: 'admin' }));
  await page.click('#connect button');
  await page.locator('#state.open').waitFor({ timeout: 10_000 });
  await page.waitForFunction(
    `/^\\d+$/.test(document.querySelector('#rate').textContent) && (document.querySelector('#chart polyline')?.getAttribute('points') ?? '').includes(' ')`,
    null,
    { timeout: 10_000 },
  );
  t.regex((await page.textContent('#connections')) ?? '', /^[1-9]\d*$/);

  const screenshot = path.join(dir, 'inspector.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  t.log(`screenshot: ${screenshot}`);
  t.deepEqual(problems, []);
});
