/**
 * `npm run bench` / `rowcast bench`: the benchmark suite, one scenario after
 * another, each in its own process tree (its server, its load generators),
 * on the embedded Postgres unless DATABASE_URL is set.
 *
 *   npm run bench                      # full size
 *   npm run bench -- --quick           # reduced sizes (what CI runs, without thresholds)
 *   npm run bench -- --only ingest,chat
 *
 * Each scenario prints its own progress and table and writes
 * bench/results/<scenario>.json; this collects them into
 * bench/results/latest.json with the machine they ran on and the command.
 * Exits 1 if a scenario fails to complete or reports problems (failed
 * requests, connections lost: numbers that measured something else); targets
 * are reported, never enforced.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });

/** The scenarios: script, arguments at full size and at --quick size, and its results file. */
const SCENARIOS: ReadonlyArray<{ name: string; script: string; full: string[]; quick: string[] }> = [
  { name: 'ingest', script: 'bench/ingest.ts', full: [], quick: ['--quick'] },
  {
    name: 'latency',
    script: 'bench/scoped-fanout.ts',
    full: ['--connections', '1000', '--rate', '1000', '--seconds', '20', '--latency-at', '1000', '--out', 'latency'],
    quick: ['--connections', '1000', '--rate', '1000', '--seconds', '5', '--latency-at', '1000', '--out', 'latency'],
  },
  { name: 'fanout', script: 'bench/fanout.ts', full: [], quick: ['--quick'] },
  { name: 'scoped-fanout', script: 'bench/scoped-fanout.ts', full: [], quick: ['--quick'] },
  { name: 'connections', script: 'bench/connections.ts', full: [], quick: ['--quick'] },
  { name: 'chat', script: 'bench/chat.ts', full: [], quick: ['--quick'] },
  { name: 'slow-consumer', script: 'bench/slow-consumer.ts', full: [], quick: ['--seconds', '3'] },
];
const only = args.only?.split(',');
const chosen = SCENARIOS.filter((s) => !only || only.includes(s.name));
if (chosen.length === 0) throw new Error(`--only: no scenario among ${SCENARIOS.map((s) => s.name).join(', ')}`);

const results: Record<string, unknown> = {};
const failed: string[] = [];
const started = Date.now();
for (const [i, scenario] of chosen.entries()) {
  const scenarioArgs = args.quick ? scenario.quick : scenario.full;
  console.log(`\n[${i + 1}/${chosen.length}] ${scenario.name}: tsx ${scenario.script} ${scenarioArgs.join(' ')}`);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', scenario.script, ...scenarioArgs], { stdio: 'inherit' });
    child.on('exit', (exitCode) => resolve(exitCode));
  });
  const file = path.resolve('bench/results', `${scenario.name}.json`);
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

const cpu = cpus();
const latest = {
  command: `npm run bench --${args.quick ? ' --quick' : ''}${args.only ? ` --only ${args.only}` : ''}`,
  at: new Date().toISOString(),
  seconds: Math.round((Date.now() - started) / 1000),
  machine: { cpus: cpu.length, model: cpu[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  failed,
  results,
};
mkdirSync(path.resolve('bench/results'), { recursive: true });
writeFileSync(path.resolve('bench/results/latest.json'), JSON.stringify(latest, null, 2));
console.log(
  `\nbench suite: ${chosen.length - failed.length} of ${chosen.length} scenarios completed in ${latest.seconds} s` +
    `${failed.length > 0 ? `; failed: ${failed.join(', ')}` : ''}; results in bench/results/latest.json`,
);
process.exit(failed.length === 0 ? 0 : 1);
