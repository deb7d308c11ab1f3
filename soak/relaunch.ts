import { spawn } from 'node:child_process';
import { fileLimits } from './file-limit.js';
import { takeOverStopSignals } from './signals.js';

const RELAUNCHED = 'ROWCAST_SOAK_RELAUNCHED';

/**
 * Runs this command again as `node --import tsx soak/main.ts …` under
 * `ulimit -n <hard limit>`, waits for it and exits with its code, when
 * either is needed (otherwise returns at once):
 *
 * - the soft open-file limit is below the hard one: Node cannot raise its
 *   own, and the nodes and load workers inherit it (bench/lib/bench-server.ts
 *   raises it the same way for its servers);
 * - the `tsx` CLI started this process: on Ctrl-C it passes the signal on
 *   and SIGKILLs its child when the child's acknowledgement comes a few ms
 *   late (a busy event loop), which would cut the cleanup short (nodes,
 *   database, Redis keys left behind). It kills only its child: the re-run
 *   gets the terminal's Ctrl-C itself and finishes cleaning up.
 *
 * This process only waits: a SIGTERM sent to it is passed on.
 */
export async function relaunchIfNeeded(): Promise<void> {
  const { soft, hard } = fileLimits();
  const underTsxCli = process.execArgv.some((arg) => arg.includes('preflight'));
  if (process.env[RELAUNCHED] || (soft >= hard && !underTsxCli)) return;
  const command = [process.execPath, '--import', 'tsx', ...process.argv.slice(1)];
  const child = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'bash', ...command], {
    stdio: 'inherit',
    env: { ...process.env, [RELAUNCHED]: '1' },
  });
  takeOverStopSignals((signal) => {
    if (signal === 'SIGTERM') child.kill('SIGTERM');
  });
  const code = await new Promise<number>((resolve) => child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))));
  process.exit(code);
}
