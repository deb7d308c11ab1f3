import { readFileSync } from 'node:fs';

/** This process's open-file limits (RLIMIT_NOFILE); `Infinity` for unlimited. */
export interface FileLimits {
  readonly soft: number;
  readonly hard: number;
}

/** Reads them from /proc/self/limits. Children (nodes, load workers) inherit the soft one. */
export function fileLimits(): FileLimits {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const [soft, hard] = line!.slice('Max open files'.length).trim().split(/\s+/).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft: soft!, hard: hard! };
}
