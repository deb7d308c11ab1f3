import { setTimeout as sleep } from 'node:timers/promises';
import { cpuMs } from './bench-server.js';
import type { ClientFleet } from './client-fleet.js';

/** A loop calling `action` `rate` times a second (catching up when late) until stopped. */
export interface Pacer {
  /** Calls made so far. */
  count(): number;
  /** Stops and waits for the call in progress; resolves with the number of calls. */
  stop(): Promise<number>;
}

export function pace(rate: number, action: (i: number) => Promise<void>): Pacer {
  let count = 0;
  let running = true;
  const loop = (async () => {
    const started = performance.now();
    while (running) {
      await action(count);
      count++;
      const wait = started + (count * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
    }
  })();
  return {
    count: () => count,
    stop: async () => {
      running = false;
      await loop;
      return count;
    },
  };
}

/**
 * The owner-scoped write load of the latency, scoped fan-out, baseline and
 * hostile-tenant scenarios: `rate` rows/s into `bench_orders` (or `table`,
 * with the same columns), owners drawn from `0 … owners - 1`, committed in
 * batches every 10 ms, each row stamped with its wall-clock time. Changes
 * made = `pacer.count() × perTick`.
 */
export function paceScopedInserts(
  db: { query(sql: string, values: unknown[]): Promise<unknown> },
  owners: number,
  rate: number,
  table = 'bench_orders',
): { pacer: Pacer; perTick: number } {
  const perTick = Math.max(1, Math.round(rate / 100));
  const pacer = pace(100, async () => {
    await db.query(
      `INSERT INTO ${table} (owner_id, amount, written_at)
       SELECT floor(random() * $1)::int, g, extract(epoch FROM clock_timestamp()) * 1000 FROM generate_series(1, $2) g`,
      [owners, perTick],
    );
  });
  return { pacer, perTick };
}

/** What one measured window saw. */
export interface Window {
  readonly seconds: number;
  /** Events the fleet received in the window. */
  readonly received: number;
  /** Changes (writes) made in the window. */
  readonly changes: number;
  readonly serverCpuMs: number;
  readonly generatorCpuMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
}

/**
 * Lets load run for `warmupSeconds`, then measures `seconds` of it: events
 * received, writes made (`pacer`), the server's and the load generators' CPU,
 * and the latency distribution of the window alone.
 */
export async function measureWindow(options: {
  serverPid: number;
  fleet: ClientFleet;
  /** The writes, if made in this process. */
  pacer?: Pacer;
  seconds: number;
  warmupSeconds?: number;
}): Promise<Window> {
  const { serverPid, fleet, pacer } = options;
  await sleep((options.warmupSeconds ?? 0.5) * 1000);
  await fleet.settle();
  fleet.histogram.reset();
  const start = { at: performance.now(), cpu: cpuMs(serverPid), generator: fleet.cpuMs(), received: fleet.received(), changes: pacer?.count() ?? 0 };
  await sleep(options.seconds * 1000);
  await fleet.settle();
  const end = { at: performance.now(), cpu: cpuMs(serverPid), generator: fleet.cpuMs(), received: fleet.received(), changes: pacer?.count() ?? 0 };
  const h = fleet.histogram;
  return {
    seconds: (end.at - start.at) / 1000,
    received: end.received - start.received,
    changes: end.changes - start.changes,
    serverCpuMs: end.cpu - start.cpu,
    generatorCpuMs: end.generator - start.generator,
    p50Ms: h.percentile(50) / 1000,
    p90Ms: h.percentile(90) / 1000,
    p99Ms: h.percentile(99) / 1000,
    maxMs: h.max / 1000,
    samples: h.count,
  };
}
