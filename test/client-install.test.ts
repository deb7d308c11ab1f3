/**
 * The README's install, as a frontend developer follows it while the client
 * packages are not on the registry: `npm run pack:client` packs
 * `@rowcast/client` and `@rowcast/react` (here into a temporary folder
 * instead of packs/), and in an empty app (`npm init -y`) the README's own
 * `npm install <client tarball> <react tarball>` installs them, with React
 * (their peer) from the registry. What the app then has is those two
 * packages and React, nothing of the server (which once brought 84 packages
 * and 200 MB into a frontend), and plain Node imports both from the app.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { run as runIn, tempDir } from './helpers/npm-run.js';
import { readmeCommand, ROOT } from './helpers/readme.js';

/** npm may fetch React from the registry: generous, but a hang still fails. */
const COMMAND_TIMEOUT_MS = 180_000;
const run = (command: string, args: readonly string[], cwd: string) => runIn(command, args, cwd, COMMAND_TIMEOUT_MS);

/** The newest modification time of the files under `root`. */
async function newest(root: string): Promise<number> {
  if (!(await stat(root)).isDirectory()) return (await stat(root)).mtimeMs;
  let time = 0;
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) time = Math.max(time, (await stat(path.join(entry.parentPath, entry.name))).mtimeMs);
  }
  return time;
}

/** Every package name in `npm ls --all --json`'s tree, sorted, each once. */
function namesIn(tree: { dependencies?: Record<string, unknown> }): string[] {
  const names = new Set<string>();
  const walk = (node: { dependencies?: Record<string, unknown> }) => {
    for (const [name, child] of Object.entries(node.dependencies ?? {})) {
      names.add(name);
      walk(child as { dependencies?: Record<string, unknown> });
    }
  };
  walk(tree);
  return [...names].sort();
}

/** The packages in a `node_modules` folder (scoped and nested ones too), sorted. */
async function packagesIn(modules: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of (await readdir(modules).catch(() => [] as string[])).filter((name) => !name.startsWith('.'))) {
    const scoped = entry.startsWith('@') ? (await readdir(path.join(modules, entry))).map((name) => `${entry}/${name}`) : [entry];
    for (const name of scoped) names.push(name, ...(await packagesIn(path.join(modules, name, 'node_modules'))));
  }
  return names.sort();
}

test("the README's install: pack:client's tarballs installed into an empty app bring the two packages and React, nothing of the server; Node imports them", async (t) => {
  // `npm run pack:client` is: build the two packages, make packs/, npm pack them there.
  const manifest = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const steps = manifest.scripts['pack:client']!.split(' && ');
  const packStep = steps.at(-1)!.split(' ');
  t.deepEqual(packStep, ['npm', 'pack', '-w', '@rowcast/client', '-w', '@rowcast/react', '--pack-destination', 'packs']);
  t.is(steps[0], 'npm run build -w @rowcast/client -w @rowcast/react');
  // The build step, only when a bundle is older than its sources (`npm test` has just built them; rebuilding would
  // pull the bundles from under the tests running beside this one).
  for (const name of ['client', 'react']) {
    const dir = path.join(ROOT, 'packages', name);
    const built = await stat(path.join(dir, 'dist/index.js')).then((s) => s.mtimeMs, () => 0);
    const sources = Math.max(await newest(path.join(dir, 'src')), name === 'client' ? await newest(path.join(ROOT, 'src/protocol')) : 0);
    if (built > sources) continue;
    t.log(`packages/${name}: its bundle is older than its sources; building it`);
    await run('npm', ['run', 'build', '-w', `@rowcast/${name}`], ROOT);
  }
  const packs = await tempDir(t, 'rowcast-packs-');
  await run(packStep[0]!, [...packStep.slice(1, -1), packs], ROOT);
  t.deepEqual((await readdir(packs)).sort(), ['rowcast-client-0.1.0.tgz', 'rowcast-react-0.1.0.tgz']);

  // The app: npm init -y, then the README's command with its tarballs' folder replaced by the one packed here.
  const app = await tempDir(t, 'rowcast-app-');
  await run('npm', ['init', '-y'], app);
  const [npm, ...args] = readmeCommand(/^npm install .*\.tgz/).split(/\s+/);
  const started = Date.now();
  await run(npm!, [...args.map((arg) => (arg.endsWith('.tgz') ? path.join(packs, path.basename(arg)) : arg)), '--prefer-offline'], app);
  t.log(`npm install took ${Date.now() - started} ms`);

  const tree = JSON.parse(await run('npm', ['ls', '--all', '--json'], app)) as { dependencies?: Record<string, unknown> };
  const installed = namesIn(tree);
  t.log(`installed (npm ls --all): ${installed.join(', ')}`);
  t.deepEqual(installed, ['@rowcast/client', '@rowcast/react', 'react'], 'the two packages and their peer, React');
  t.deepEqual(await packagesIn(path.join(app, 'node_modules')), installed, 'node_modules holds the same, nothing else');
  const { dependencies } = JSON.parse(await readFile(path.join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  t.deepEqual(Object.keys(dependencies).sort(), ['@rowcast/client', '@rowcast/react']);
  const size = (await run('du', ['-sk', path.join(app, 'node_modules')], app)).split('\t')[0];
  t.log(`node_modules: ${size} KiB`);

  // Plain Node, in the app, imports both from its node_modules.
  const script = `const client = await import('@rowcast/client');
    const react = await import('@rowcast/react');
    console.log(JSON.stringify({ client: import.meta.resolve('@rowcast/client'), createClient: typeof client.createClient, liveRows: typeof client.liveRows, useLiveRows: typeof react.useLiveRows }));`;
  const imported = JSON.parse(await run(process.execPath, ['--input-type=module', '-e', script], app)) as Record<string, string>;
  t.deepEqual(imported, {
    client: `file://${path.join(app, 'node_modules/@rowcast/client/dist/index.js')}`,
    createClient: 'function',
    liveRows: 'function',
    useLiveRows: 'function',
  });
});
