/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or a server started by the
 * benchmarks with BENCH_PROFILE_DIR set): self time by function, the top N.
 *
 *   BENCH_PROFILE_DIR=.rowcast/profiles npm run bench:ingest
 *   npx tsx bench/profile-summary.ts .rowcast/profiles/<file>.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const { values: args, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true });
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
const total = profile.samples.length;
const selfByFunction = new Map<string, number>();
for (const node of profile.nodes) {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '')}:${lineNumber + 1}` : '';
  const key = `${functionName || '(anonymous)'} ${where}`.trim();
  selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + (node.hitCount ?? 0));
}
const seconds = (profile.endTime - profile.startTime) / 1e6;
console.log(`${path.basename(positionals[0]!)}: ${total} samples over ${seconds.toFixed(1)} s; self time by function:`);
const rows = [...selfByFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top));
for (const [name, hits] of rows) console.log(`${((hits / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
