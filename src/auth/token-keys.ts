import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { StartupError } from '../errors.js';
import { devSecret } from './dev-secret.js';

/** The keys tokens are checked with. */
export interface TokenKeys {
  /** The HMAC secret (`null`: public-key tokens only). */
  readonly secret: string | null;
  /** The PEM public key, if any. */
  readonly publicKey: string | null;
}

/** What decides the keys: the configuration, and whether the database is the embedded one. */
export interface TokenKeySources {
  readonly jwtSecret: string | undefined;
  readonly publicKeyFile: string | undefined;
  /** With the embedded Postgres and no key configured, a development secret is made in `dataDir`. */
  readonly embedded: boolean;
  readonly dataDir: string;
}

/**
 * `JWT_SECRET` and/or the PEM public key of `JWT_PUBLIC_KEY_FILE`; with the
 * embedded Postgres and neither set, the development secret of `DATA_DIR`.
 * Stops start-up, saying what to set, when there is no key at all or the
 * file is not a public key.
 */
export function tokenKeys(sources: TokenKeySources): TokenKeys {
  const publicKey = sources.publicKeyFile === undefined ? null : readPublicKey(sources.publicKeyFile);
  const secret = sources.jwtSecret ?? (sources.embedded && publicKey === null ? devSecret(sources.dataDir) : null);
  if (secret === null && publicKey === null) {
    throw new StartupError('JWT_SECRET (at least 16 characters) or JWT_PUBLIC_KEY_FILE is required when DATABASE_URL is set');
  }
  return { secret, publicKey };
}

/** Reads the PEM public key of `JWT_PUBLIC_KEY_FILE`, or stops start-up saying why not. */
function readPublicKey(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new StartupError(`JWT_PUBLIC_KEY_FILE=${JSON.stringify(file)}: cannot read it (${(error as Error).message})`);
  }
  try {
    createPublicKey(pem);
  } catch {
    throw new StartupError(`JWT_PUBLIC_KEY_FILE=${JSON.stringify(file)}: not a PEM public key (RSA or EC)`);
  }
  return pem;
}
