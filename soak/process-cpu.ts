import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';

/** Linux USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s. */
const TICK_MS = 10;

/** Fields of /proc/<pid>/stat after the command name (field 3 onwards), or null when the process is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * CPU (user + system, in ms) used by a process tree that reaps its children,
 * such as Postgres's postmaster and its backends: the root's own time, the
 * time of the children it has waited for (cutime, cstime), and that of its
 * live children. Null when the root is gone.
 */
export function treeCpuMs(root: number): number | null {
  const own = statFields(root);
  if (!own) return null;
  // Fields 14–17 (utime, stime, cutime, cstime) are at 11–14 here.
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[1]) === root) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * TICK_MS;
}

/** The postmaster's pid of the Postgres behind `query`, when it runs on this machine (its data directory is readable here). */
export async function postgresPid(query: (sql: string) => Promise<{ rows: Array<Record<string, string>> }>): Promise<number | null> {
  try {
    const { rows } = await query('SHOW data_directory');
    const pid = Number(readFileSync(path.join(rows[0]!['data_directory']!, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return statFields(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** The pid of the Redis server `redis` talks to, when it runs on this machine. */
export async function redisPid(redis: Redis): Promise<number | null> {
  try {
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
    return statFields(pid) ? pid : null;
  } catch {
    return null;
  }
}
