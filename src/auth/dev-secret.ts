import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The development JWT secret of the embedded default: read from
 * `<dataDir>/jwt-secret`, generated (32 random bytes, mode 0600) on first use.
 * Only the server calls this (start-up with the embedded Postgres and no key
 * configured); the CLI's clients of a server use {@link readDevSecret}, so that
 * they never sign with a secret the server does not have.
 */
export function devSecret(dataDir: string): string {
  const file = devSecretFile(dataDir);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(path.dirname(file), { recursive: true });
    const secret = randomBytes(32).toString('base64url');
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  }
}

/**
 * The development secret a server keeps in `<dataDir>/jwt-secret`, or `null`
 * when there is no such file (nor folder). Never creates anything; other read
 * errors (permissions) are thrown.
 *
 * @example
 * readDevSecret('.rowcast') // null before the server's first start
 */
export function readDevSecret(dataDir: string): string | null {
  try {
    return readFileSync(devSecretFile(dataDir), 'utf8').trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
}

/** Where the development secret of `dataDir` lives (an absolute path). */
export function devSecretFile(dataDir: string): string {
  return path.resolve(dataDir, 'jwt-secret');
}
