/**
 * The README's client examples, run as written. Its code blocks are the
 * files of examples/ (checked byte for byte), and those files run against a
 * real `rowcast serve` (the build) with a known JWT_SECRET, on a database
 * set up by the README's own commands: the `order` table and its policy
 * from the quick start, the `lobby` topic by the README's admin call.
 *
 * - examples/react-app is built with Vite (its vite.config.ts, whose plugin
 *   serves the token endpoint) and served by `vite preview`;
 * - examples/vanilla/index.html is served by examples/vanilla/server.mjs
 *   with its token endpoint.
 *
 * Both pages open in headless Chromium (playwright-core; see
 * inspector.test.ts) at once. They connect to ws://localhost:6336 as
 * written: Chromium maps localhost:6336 to the test server's ephemeral port
 * (--host-resolver-rules). In each: the lobby is TOPIC_NOT_FOUND before an
 * admin creates it and a message sent then is refused and shown (no
 * unhandled rejection); rows appear (the snapshot, then inserts), change
 * on update, leave on delete, and a row updated out of the filter leaves
 * the filtered list while it stays in the other; a message sent by clicking
 * the button is shown in both pages. Screenshots: test/results/readme-examples/.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import test from 'ava';
import { chromium, type Page } from 'playwright-core';
import { codeBlocks, readme, readmeCommand, repoFile, ROOT } from './helpers/readme.js';
import { operatorHeaders, TEST_SECRET } from './helpers/tokens.js';
import { withServerProcess } from './helpers/with-server-process.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
// As in inspector.test.ts: without the background-networking flags Chromium tries to reach Google and is refused.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** How long any one state may take to show in a page. */
const SHOW_MS = 15_000;
const SCREENSHOTS = path.join(ROOT, 'test/results/readme-examples');
const REACT_APP = path.join(ROOT, 'examples/react-app');

/** The SQL of the README's `psql … -c '<sql>'` command that matches `pattern`. */
function readmeSql(pattern: RegExp): string {
  const command = readmeCommand(pattern);
  const sql = /-c '(.*)'$/.exec(command)?.[1] ?? /-c "(.*)"$/.exec(command)?.[1]?.replace(/\\"/g, '"');
  if (sql === undefined) throw new Error(`no -c '<sql>' in the README's ${command}`);
  return sql;
}

test('the README shows the examples as they are in examples/, whole', (t) => {
  const blocks = codeBlocks(readme());
  const shows = (lang: string, file: string) => t.true(blocks.some((block) => block.lang === lang && block.code === repoFile(file)), `the README has a \`\`\`${lang} block equal to ${file}`);
  shows('js', 'examples/vanilla/server.mjs');
  shows('html', 'examples/vanilla/index.html');
  shows('tsx', 'examples/react-app/src/App.tsx');
  // The install is the packs the script makes, and the admin call creates the topic both examples use.
  t.regex(readmeCommand(/^npm install .*\.tgz/), /^npm install \S*\/rowcast-client-0\.1\.0\.tgz \S*\/rowcast-react-0\.1\.0\.tgz$/);
  t.like(JSON.parse(/-d '([^']*)'/.exec(readmeCommand(/\/admin\/topics/))![1]!), { name: 'lobby' });
});

const QUICK_START_SQL = `${readmeSql(/CREATE TABLE "order"/)};\n${readmeSql(/rowcast\.table_policies/)};`;

test('the README examples in Chromium: rows appear, change, leave, cross the filter; the lobby refuses before it exists, then chats', withServerProcess, { sql: QUICK_START_SQL }, async (t, { db, start }) => {
  if (!existsSync(CHROMIUM)) t.fail(`no Chromium at ${CHROMIUM}: run \`sudo apt-get install chromium\` (npm test does when it can), or set CHROMIUM_PATH`);
  const rowcast = await start({ JWT_SECRET: TEST_SECRET });
  await db.query(`INSERT INTO "order" (owner_id, amount, status) VALUES (42, 19.90, 'paid')`); // #1: in the snapshot

  const vanillaUrl = await startVanillaServer(t);
  const reactUrl = await buildAndPreviewReactApp(t);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...FLAGS, `--host-resolver-rules=MAP localhost:6336 127.0.0.1:${rowcast.port}`] });
  t.teardown(() => browser.close());
  const problems: string[] = [];
  const open = async (name: string, url: string) => {
    const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
    page.on('pageerror', (error) => problems.push(`${name}: ${error.message}`));
    await page.goto(url);
    return page;
  };
  const react = { page: await open('react', reactUrl), list: (title: string) => reactList(title, 'li'), lobby: reactList('Lobby', 'p') };
  const vanilla = { page: await open('vanilla', vanillaUrl), list: (_title: string, id: string) => vanillaList(id), lobby: vanillaList('lobby') };
  const pages = [react, vanilla] as const;
  const shows = (what: string, lists: (page: (typeof pages)[number]) => Array<[string, string[]]>) =>
    Promise.all(pages.flatMap((p) => lists(p).map(([items, expected]) => waitForList(p.page, `${p === react ? 'react' : 'vanilla'}: ${what}`, items, expected))));

  // Before the admin creates the lobby: the page says so, and a message sent anyway is refused and shown, not thrown.
  await shows('the snapshot, and the lobby refused', (p) => [
    [p.list('All orders', 'all'), ['#1 19.90 paid']],
    [p.list('Paid orders', 'paid'), ['#1 19.90 paid']],
    [p.lobby, ['TOPIC_NOT_FOUND']],
  ]);
  await react.page.getByRole('button', { name: 'send' }).click();
  await waitForList(react.page, 'react: the refused message', react.lobby, ['TOPIC_NOT_FOUND', 'not sent: TOPIC_NOT_FOUND']);
  await vanilla.page.click('#send');
  await waitForList(vanilla.page, 'vanilla: the refused message', vanilla.lobby, ['not sent: TOPIC_NOT_FOUND']);

  // The README's admin call, then the pages anew.
  const body = /-d '([^']*)'/.exec(readmeCommand(/\/admin\/topics/))![1]!;
  const created = await fetch(`http://127.0.0.1:${rowcast.port}/admin/topics`, { method: 'POST', headers: operatorHeaders(), body });
  t.is(created.status, 201, await created.clone().text());
  await Promise.all(pages.map((p) => p.page.reload()));
  await Promise.all([react.page.getByText('rowcast: open').waitFor({ timeout: SHOW_MS }), vanilla.page.getByText('rowcast: open').waitFor({ timeout: SHOW_MS })]);

  await db.query(`INSERT INTO "order" (owner_id, amount, status) VALUES (43, 5.00, 'open')`);
  await shows('an inserted row, outside the filter', (p) => [
    [p.list('All orders', 'all'), ['#1 19.90 paid', '#2 5.00 open']],
    [p.list('Paid orders', 'paid'), ['#1 19.90 paid']],
  ]);
  await db.query(`UPDATE "order" SET status = 'paid' WHERE id = 2`);
  await db.query(`UPDATE "order" SET amount = 21.00 WHERE id = 1`);
  await shows('a row updated into the filter, a row changed', (p) => [
    [p.list('All orders', 'all'), ['#1 21.00 paid', '#2 5.00 paid']],
    [p.list('Paid orders', 'paid'), ['#1 21.00 paid', '#2 5.00 paid']],
  ]);
  await db.query(`UPDATE "order" SET status = 'refunded' WHERE id = 1`);
  await shows('a row updated out of the filter: gone from the filtered list, still in the other', (p) => [
    [p.list('All orders', 'all'), ['#1 21.00 refunded', '#2 5.00 paid']],
    [p.list('Paid orders', 'paid'), ['#2 5.00 paid']],
  ]);

  // Chat: each page sends by clicking its button; both pages show both messages, in order.
  await react.page.locator('section', { hasText: 'Lobby' }).locator('input').fill('hello from react');
  await react.page.getByRole('button', { name: 'send' }).click();
  await shows('the message sent from the React page', (p) => [[p.lobby, ['demo: hello from react']]]);
  await vanilla.page.fill('#text', 'hello from vanilla');
  await vanilla.page.click('#send');
  await shows('the message sent from the vanilla page', (p) => [[p.lobby, ['demo: hello from react', 'demo: hello from vanilla']]]);

  await mkdir(SCREENSHOTS, { recursive: true });
  for (const [name, p] of [['react', react], ['vanilla', vanilla]] as const) {
    const file = path.join(SCREENSHOTS, `${name}.png`);
    await p.page.screenshot({ path: file, fullPage: true });
    t.log(`screenshot: ${path.relative(ROOT, file)}`);
  }
  await db.query(`DELETE FROM "order" WHERE id = 2`);
  await shows('a deleted row', (p) => [
    [p.list('All orders', 'all'), ['#1 21.00 refunded']],
    [p.list('Paid orders', 'paid'), []],
  ]);

  t.deepEqual(problems, [], 'no uncaught error or unhandled rejection in either page');
});

/** A page expression: the texts of the items (`li`, or the lobby's `p` lines) of the React page's section titled `title`. */
function reactList(title: string, item: string): string {
  return `[...([...document.querySelectorAll('section')].find((s) => s.querySelector('h2')?.textContent === ${JSON.stringify(title)})?.querySelectorAll(${JSON.stringify(item)}) ?? [])].map((e) => e.textContent)`;
}

/** A page expression: the texts of the vanilla page's list `#id`. */
function vanillaList(id: string): string {
  return `[...document.querySelectorAll(${JSON.stringify(`#${id} li`)})].map((e) => e.textContent)`;
}

/** Waits until the page expression `items` lists exactly `expected`; fails with what the page shows instead. */
async function waitForList(page: Page, what: string, items: string, expected: readonly string[]): Promise<void> {
  try {
    await page.waitForFunction(`JSON.stringify(${items}) === ${JSON.stringify(JSON.stringify(expected))}`, null, { timeout: SHOW_MS });
  } catch (error) {
    const shown = await page.evaluate(items).catch(() => '(the page is gone)');
    throw new Error(`${what}: expected ${JSON.stringify(expected)} within ${SHOW_MS} ms; the page shows ${JSON.stringify(shown)} (${(error as Error).message.split('\n')[0]})`);
  }
}

/** Runs examples/vanilla/server.mjs as the README says (JWT_SECRET, here PORT=0); resolves with the page's URL. */
async function startVanillaServer(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const child = spawn(process.execPath, [path.join(ROOT, 'examples/vanilla/server.mjs')], {
    env: { PATH: process.env['PATH'] ?? '', JWT_SECRET: TEST_SECRET, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`examples/vanilla/server.mjs printed no URL within 20 s: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    void exited.then(() => reject(new Error(`examples/vanilla/server.mjs exited: ${stderr}`)));
  });
}

/**
 * Builds examples/react-app with Vite and its own vite.config.ts (into a
 * temporary folder) and serves it with `vite preview`, whose plugin answers
 * /api/rowcast-token with JWT_SECRET; resolves with the page's URL. The
 * client packages are this repository's builds (packages/*\/dist), whatever
 * the example folder may have installed itself.
 */
async function buildAndPreviewReactApp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const { build, preview } = await import('vite');
  const outDir = await mkdtemp(path.join(tmpdir(), 'rowcast-react-app-'));
  t.teardown(() => rm(outDir, { recursive: true, force: true }));
  const config = {
    root: REACT_APP,
    configFile: path.join(REACT_APP, 'vite.config.ts'),
    logLevel: 'warn' as const,
    build: { outDir, emptyOutDir: true },
    resolve: {
      alias: [
        { find: /^@rowcast\/client$/, replacement: path.join(ROOT, 'packages/client/dist/index.js') },
        { find: /^@rowcast\/react$/, replacement: path.join(ROOT, 'packages/react/dist/index.js') },
      ],
      dedupe: ['react', 'react-dom'],
    },
  };
  await build(config);
  process.env['JWT_SECRET'] = TEST_SECRET; // the plugin reads it per request, as in `JWT_SECRET=… npm run dev`
  const server = await preview({ ...config, preview: { host: '127.0.0.1', port: 0, strictPort: true } });
  t.teardown(() => server.close());
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview has no local URL');
  return url;
}
