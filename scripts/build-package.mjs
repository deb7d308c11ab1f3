#!/usr/bin/env node
// Builds one client package (run in its folder by its `build` script): one ES module bundle
// (dist/index.js, for browsers and Node, with the protocol's constants inlined) and one
// bundled declaration file (dist/index.d.ts, the protocol's types inlined), so the package
// depends on nothing of the server. Its dependencies and peer dependencies stay imports.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

const dir = process.cwd();
const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
const external = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})];
rmSync(path.join(dir, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: [path.join(dir, 'src/index.ts')],
  outfile: path.join(dir, 'dist/index.js'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  sourcemap: true,
  external,
  logLevel: 'warning',
});
const generator = createRequire(import.meta.url).resolve('dts-bundle-generator/dist/bin/dts-bundle-generator.js');
execFileSync(
  process.execPath,
  [generator, '--silent', '--no-banner', '--project', path.join(dir, 'tsconfig.json'), '-o', path.join(dir, 'dist/index.d.ts'), path.join(dir, 'src/index.ts'), ...external.flatMap((name) => ['--external-imports', name])],
  { stdio: 'inherit' },
);
