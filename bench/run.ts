/**
 * `npm run bench` / `rowcast bench`: the benchmark suite, one scenario after
 * another, each in its own process tree (its server, its load generators),
 * on the embedded Postgres unless DATABASE_URL is set.
 *
 *   npm run bench                      # full size
 *   npm run bench -- --quick           # reduced sizes (what CI runs, without thresholds)
 *   npm run bench -- --only ingest,chat
 *   npm run bench -- --publish         # also copy the table and charts to docs/benchmarks/ (what docs/benchmarks.md shows)
 *   npm run bench -- --render docs/benchmarks/latest.json   # only re-render a run's table and charts next to it
 *
 * Each scenario prints its own progress and table and writes
 * bench/results/<scenario>.json; this collects them into
 * bench/results/latest.json with the machine they ran on and the command,
 * and renders bench/results/latest.md (the summary table) and SVG charts.
 * Exits 1 if a scenario fails to complete or reports problems (failed
 * requests, connections lost: numbers that measured something else); targets
 * are reported, never enforced.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchPostgres } from './lib/bench-server.js';
import { charts, summaryTable, type SuiteResults } from './lib/report.js';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, publish: { type: 'boolean', default: false }, render: { type: 'string' } },
});

/** latest.md (the summary table, with the command and machine) and the charts of one suite run. */
function render(suite: SuiteResults): Record<string, string> {
  const table =
    `${summaryTable(suite)}\n` +
    `Measured with \`${suite.command}\` on ${suite.at.slice(0, 10)}: ${suite.machine.cpus} × ${suite.machine.model}, ` +
    `${suite.machine.memoryGiB} GiB, Node ${suite.machine.node}.\n`;
  return { 'latest.md': table, ...charts(suite) };
}

if (args.render) {
  const dir = path.dirname(path.resolve(args.render));
  for (const [name, content] of Object.entries(render(JSON.parse(readFileSync(args.render, 'utf8')) as SuiteResults))) {
    writeFileSync(path.join(dir, name), content);
  }
  console.log(`rendered ${dir}/latest.md and charts`);
  process.exit(0);
}

/** The scenarios: script, arguments at full size and at --quick size, and its results file. */
const SCENARIOS: ReadonlyArray<{ name: string; script: string; full: string[]; quick: string[] }> = [
  { name: 'ingest', script: 'bench/ingest.ts', full: [], quick: ['--quick'] },
  { name: 'ingest-cluster', script: 'bench/ingest.ts', full: ['--cluster'], quick: ['--quick', '--cluster'] },
  {
    name: 'latency',
    script: 'bench/scoped-fanout.ts',
    full: ['--connections', '1000', '--rate', '1000', '--seconds', '20', '--latency-at', '1000', '--out', 'latency'],
    quick: ['--connections', '1000', '--rate', '1000', '--seconds', '2', '--latency-at', '1000', '--out', 'latency'],
  },
  {
    // The latency scenario with hidden columns off and on (2 of 2 text columns hidden), phases alternating in one run.
    name: 'hidden-columns',
    script: 'bench/scoped-fanout.ts',
    full: ['--connections', '1000', '--rate', '1000', '--seconds', '20', '--hidden', '0,2', '--rounds', '10', '--out', 'hidden-columns'],
    quick: ['--connections', '1000', '--rate', '1000', '--seconds', '2', '--hidden', '0,2', '--rounds', '2', '--out', 'hidden-columns'],
  },
  { name: 'fanout', script: 'bench/fanout.ts', full: [], quick: ['--quick'] },
  { name: 'scoped-fanout', script: 'bench/scoped-fanout.ts', full: [], quick: ['--quick'] },
  { name: 'connections', script: 'bench/connections.ts', full: [], quick: ['--quick'] },
  { name: 'chat', script: 'bench/chat.ts', full: [], quick: ['--quick'] },
  { name: 'slow-consumer', script: 'bench/slow-consumer.ts', full: [], quick: ['--quick'] },
  { name: 'hostile-tenant', script: 'bench/hostile-tenant.ts', full: [], quick: ['--quick'] },
  { name: 'baseline', script: 'bench/baseline.ts', full: [], quick: ['--quick'] },
  { name: 'doors', script: 'bench/doors.ts', full: [], quick: ['--quick'] },
  { name: 'presence', script: 'bench/presence.ts', full: [], quick: ['--quick'] },
  { name: 'snapshot', script: 'bench/snapshot.ts', full: [], quick: ['--quick'] },
];
const only = args.only?.split(',');
const chosen = SCENARIOS.filter((s) => !only || only.includes(s.name));
if (chosen.length === 0) throw new Error(`--only: no scenario among ${SCENARIOS.map((s) => s.name).join(', ')}`);

const results: Record<string, unknown> = {};
const failed: string[] = [];
const started = Date.now();
// One Postgres for every scenario (each makes its own database on it): children inherit DATABASE_URL.
const postgres = await benchPostgres();
process.env['DATABASE_URL'] = postgres.url;
for (const [i, scenario] of chosen.entries()) {
  const scenarioArgs = args.quick ? scenario.quick : scenario.full;
  const elapsed = Math.round((Date.now() - started) / 1000);
  console.log(`\n[${i + 1}/${chosen.length}, ${elapsed} s] ${scenario.name}: tsx ${scenario.script} ${scenarioArgs.join(' ')}`);
  const file = path.resolve('bench/results', `${scenario.name}.json`);
  rmSync(file, { force: true }); // a result left by an earlier run must not pass for this one's
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', scenario.script, ...scenarioArgs], { stdio: 'inherit' });
    child.on('exit', (exitCode) => resolve(exitCode));
  });
  if (code !== 0 || !existsSync(file)) {
    failed.push(scenario.name);
    continue;
  }
  const result = JSON.parse(readFileSync(file, 'utf8')) as { problems?: string[] };
  results[scenario.name] = result;
  // A scenario that completed with failed requests or lost connections measured something else.
  if (result.problems && result.problems.length > 0) {
    console.error(`${scenario.name}: ${result.problems.join('; ')}`);
    failed.push(scenario.name);
  }
}

await postgres.stop();

const cpu = cpus();
const latest = {
  command: `npm run bench${args.quick || args.only ? ' --' : ''}${args.quick ? ' --quick' : ''}${args.only ? ` --only ${args.only}` : ''}`,
  at: new Date().toISOString(),
  seconds: Math.round((Date.now() - started) / 1000),
  machine: { cpus: cpu.length, model: cpu[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  failed,
  results,
};
const outputs: Record<string, string> = { 'latest.json': JSON.stringify(latest, null, 2), ...render(latest as SuiteResults) };
mkdirSync(path.resolve('bench/results'), { recursive: true });
for (const [name, content] of Object.entries(outputs)) writeFileSync(path.resolve('bench/results', name), content);
if (args.publish) {
  mkdirSync(path.resolve('docs/benchmarks'), { recursive: true });
  for (const [name, content] of Object.entries(outputs)) writeFileSync(path.resolve('docs/benchmarks', name), content);
}
console.log(`\n${outputs['latest.md']}`);
console.log(
  `\nbench suite: ${chosen.length - failed.length} of ${chosen.length} scenarios completed in ${latest.seconds} s` +
    `${failed.length > 0 ? `; failed: ${failed.join(', ')}` : ''}; results in bench/results/ (latest.json, latest.md, *.svg)` +
    `${args.publish ? ' and docs/benchmarks/' : ''}`,
);
process.exit(failed.length === 0 ? 0 : 1);
