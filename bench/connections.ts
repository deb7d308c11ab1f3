/**
 * Connections benchmark (issue 8): idle authenticated connections held by one
 * server, each subscribed to an `owner`-policy table (so the permission
 * index's memory is counted too), opened in steps; after each step the
 * server's RSS and open files are read, and after the last the connections
 * are held for `--hold` seconds (past uWS's automatic pings) and must all
 * still be open.
 *
 *   npm run bench:connections                  # steps to 10,000 / 25,000 / 50,000, held 15 s
 *   npm run bench:connections -- --quick       # steps to 1,000 / 2,000, held 1 s
 *
 * The target is 50,000 on one node. Where a process may not hold that many
 * open files (`ulimit -Hn`: 20,000 on the machine this was written on;
 * raising it needs CAP_SYS_RESOURCE, which its sandbox does not grant), the
 * steps end 200 below the limit instead, and the scenario reports RSS per
 * connection and from it the RSS 50,000 would take: an estimate, labelled as
 * such. Results go to bench/results/connections.json.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { benchStatus, cpuMs, rssMiB, startBenchServer } from './lib/bench-server.js';
import { ClientFleet } from './lib/client-fleet.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, steps: { type: 'string' }, hold: { type: 'string' } } });
const TARGET = 50_000;
/** The most open files the server process may have (bench-server raises its soft limit to this). */
const FILE_LIMIT = Number(execFileSync('bash', ['-c', 'ulimit -Hn']).toString().trim().replace('unlimited', 'Infinity'));
const fullSteps = FILE_LIMIT >= TARGET + 200 ? [10_000, 25_000, TARGET] : [5_000, 10_000, FILE_LIMIT - 200];
const STEPS = args.steps ? args.steps.split(',').map(Number) : args.quick ? [1_000, 2_000] : fullSteps;
const HOLD_SECONDS = Number(args.hold ?? (args.quick ? 1 : 15));

async function serverConnections(port: number): Promise<number> {
  return (await benchStatus<{ connections: number }>(port)).connections;
}

async function main(): Promise<void> {
  console.log(`connections: idle subscribed connections in steps to ${STEPS.join(' / ')}, held ${HOLD_SECONDS} s`);
  const server = await startBenchServer(`
    CREATE TABLE bench_idle (id bigserial PRIMARY KEY, owner_id int NOT NULL);
    INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('bench_idle', 'owner', 'owner_id');`);
  const fleets: ClientFleet[] = [];
  const steps: Array<{ connections: number; serverRssMiB: number; openFiles: number; openSeconds: number; serverCpuSeconds: number }> = [];
  let baseRss = 0;
  let held = 0;
  let closed = 0;
  try {
    await sleep(1000);
    baseRss = rssMiB(server.pid);
    console.log(`  no connections: server RSS ${baseRss.toFixed(0)} MiB`);
    let open = 0;
    for (const target of STEPS) {
      const started = performance.now();
      const cpuBefore = cpuMs(server.pid);
      // Users continue where the last step stopped: every connection its own user, own rows.
      const fleet = await ClientFleet.start({ urls: server.urls, topic: 'bench_idle', connections: target - open, userOffset: open });
      fleets.push(fleet);
      open = target;
      const counted = await serverConnections(server.port);
      if (counted !== open) throw new Error(`the server counts ${counted} connections, ${open} were opened`);
      const step = {
        connections: open,
        serverRssMiB: rssMiB(server.pid),
        openFiles: readdirSync(`/proc/${server.pid}/fd`).length,
        openSeconds: (performance.now() - started) / 1000,
        serverCpuSeconds: (cpuMs(server.pid) - cpuBefore) / 1000,
      };
      steps.push(step);
      console.log(
        `  ${open.toLocaleString('en')} connections: server RSS ${step.serverRssMiB.toFixed(0)} MiB, ${step.openFiles.toLocaleString('en')} open files; ` +
          `this step opened and subscribed in ${step.openSeconds.toFixed(1)} s (server CPU ${step.serverCpuSeconds.toFixed(1)} s)`,
      );
    }
    await sleep(HOLD_SECONDS * 1000);
    await Promise.all(fleets.map((fleet) => fleet.settle()));
    closed = fleets.reduce((sum, fleet) => sum + fleet.closed(), 0);
    held = await serverConnections(server.port);
  } finally {
    await Promise.all(fleets.map((fleet) => fleet.stop()));
    await server.stop();
  }

  const last = steps.at(-1)!;
  const perConnectionKiB = ((last.serverRssMiB - baseRss) * 1024) / last.connections;
  const estimatedRssAtTargetMiB = baseRss + (perConnectionKiB * TARGET) / 1024;
  console.log(`  after ${HOLD_SECONDS} s: ${held.toLocaleString('en')} still open, ${closed} closed by the server`);
  console.log(`  RSS per connection: ${perConnectionKiB.toFixed(1)} KiB; 50,000 would take about ${estimatedRssAtTargetMiB.toFixed(0)} MiB (estimate; target ≤ 1,024 MiB)`);
  if (last.connections < TARGET) {
    console.log(`  held here: ${last.connections.toLocaleString('en')}, not ${TARGET.toLocaleString('en')}: a process on this machine may hold ${FILE_LIMIT.toLocaleString('en')} open files`);
  }
  const problems = held === last.connections && closed === 0 ? [] : [`${last.connections - held} connections lost while idle (${closed} closed by the server)`];
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/connections.json',
    JSON.stringify(
      { date: new Date().toISOString(), fileLimit: FILE_LIMIT, holdSeconds: HOLD_SECONDS, baseRssMiB: baseRss, steps, held, closed, perConnectionKiB, estimatedRssAtTargetMiB, target: TARGET, problems },
      null,
      2,
    ),
  );
  if (problems.length > 0) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
