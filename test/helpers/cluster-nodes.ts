import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { clusterKeys } from '../../src/cluster/cluster-node.js';
import type { ServerProcess } from './server-process.js';
import type { ProcessFixture } from './with-server-process.js';

/** The Redis the cluster tests share (the machine's, unless REDIS_URL says otherwise). */
export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Removes what a cluster on `slot` left in Redis: the stream's keys and the presence keys. */
export async function dropClusterKeys(redisUrl: string, slot: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const presence = await redis.keys(`rowcast:${slot}:presence*`).catch(() => []);
  await redis.del(...clusterKeys(slot), ...presence).catch(() => {});
  redis.disconnect();
}

/**
 * `count` nodes on the fixture's database and one Redis, started one after
 * the other; after the test they are killed, then their Redis keys removed
 * (the fixture drops the database).
 */
export async function clusterNodes(
  t: { teardown(fn: () => Promise<void>): void },
  { db, start }: ProcessFixture,
  count: number,
  redisUrl = REDIS_URL,
  env: Record<string, string> = {},
): Promise<ServerProcess[]> {
  const nodes: ServerProcess[] = [];
  t.teardown(async () => {
    // Killed first: a running node would write its keys again.
    await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
    await dropClusterKeys(redisUrl, db.name);
  });
  for (let i = 0; i < count; i++) nodes.push(await start({ REDIS_URL: redisUrl, CLUSTER_FAILOVER_MS: '300', ...env }));
  return nodes;
}

/** A Redis of the test's own on `port`, without persistence: killed and started again, it comes back empty. */
export function startRedisServer(port: number): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
}
