import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import jwt from 'jsonwebtoken';
import { devSecretFile, readDevSecret } from '../auth/dev-secret.js';
import { HMAC_ALGORITHMS } from '../auth/token-verifier.js';
import { loadConfig, readConfigFile, type Config } from '../config/config.js';
import { StartupError } from '../errors.js';

/*
 * What the CLI's light commands need: the configuration and signing tokens.
 * This module imports no server code (no sockets, database or logger), so
 * that `rowcast token` starts in a fraction of a second; main.ts imports the
 * server only inside the commands that run it.
 */

/** The configuration the CLI read, and where from (for messages). */
export interface CliConfig {
  readonly config: Config;
  /** The server's folder: `--dir`, else the working directory (absolute). */
  readonly dir: string;
  /** The `.env` read, or `null` when there was none (absolute). */
  readonly envFile: string | null;
  /** The JSON config file read, if any. */
  readonly configFile: string | null;
}

/**
 * The configuration: `.env` of `dir` (default: the working directory; its
 * values never override the environment), then the environment over the
 * JSON config file of `--config` or `ROWCAST_CONFIG`. With `dir` (the
 * server's folder, `--dir`), a relative `ROWCAST_CONFIG` and `DATA_DIR` are
 * read from there too, as the server running in that folder reads them.
 */
export function configure(configFile: string | undefined, dir?: string): CliConfig {
  if (dir !== undefined && !isFolder(dir)) throw new InvalidArgumentError(`--dir ${dir}: no such folder (give the folder the server runs in)`);
  const envFile = path.join(dir ?? '.', '.env');
  const hasEnv = existsSync(envFile);
  if (hasEnv) process.loadEnvFile(envFile);
  const fromEnv = process.env['ROWCAST_CONFIG'];
  const file = configFile ?? (fromEnv && dir !== undefined ? path.resolve(dir, fromEnv) : fromEnv);
  return {
    config: loadConfig(process.env, file ? readConfigFile(file) : {}),
    dir: path.resolve(dir ?? '.'),
    envFile: hasEnv ? path.resolve(envFile) : null,
    configFile: file || null,
  };
}

/** Which command signs: its name, and what else its messages may suggest. */
export interface Signer {
  readonly command: 'token' | 'tail';
}

/**
 * A token signed as the server checks it: with `JWT_SECRET`, else the
 * development secret the server keeps in its data dir
 * (`<dir>/<DATA_DIR>/jwt-secret`); `iss` and `aud` when `JWT_ISSUER` and
 * `JWT_AUDIENCE` are set; the role in `ROLE_CLAIM`. Never creates a secret:
 * without one it throws a {@link StartupError} saying where it looked and
 * what to do.
 *
 * @example
 * mint(configure(undefined), { sub: '42' }, 'admin', '1h', { command: 'token' })
 */
export function mint(cli: CliConfig, claims: Record<string, unknown>, role: string | undefined, ttl: string, signer: Signer): string {
  const { config } = cli;
  const expiresIn = parseTtl(ttl);
  const secret = signingSecret(cli, signer);
  const algorithm = hmacAlgorithm(config);
  const all = { ...claims };
  if (role) setPath(all, config.ROLE_CLAIM, role);
  return jwt.sign(all, secret, {
    algorithm,
    expiresIn,
    ...(config.JWT_ISSUER !== undefined ? { issuer: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE !== undefined ? { audience: config.JWT_AUDIENCE } : {}),
  });
}

/** The HMAC algorithm the server accepts: HS256 unless `JWT_ALGORITHMS` names others. */
function hmacAlgorithm(config: Config): jwt.Algorithm {
  if (config.JWT_ALGORITHMS === undefined) return 'HS256';
  const hmac = config.JWT_ALGORITHMS.find((a) => (HMAC_ALGORITHMS as readonly string[]).includes(a));
  if (hmac === undefined) {
    throw new StartupError(
      `cannot mint tokens for this server: JWT_ALGORITHMS=${config.JWT_ALGORITHMS.join(',')} accepts no secret-signed algorithm (${HMAC_ALGORITHMS.join(', ')}), so its tokens must be signed with the private key of its public key, by your identity provider or your backend`,
    );
  }
  return hmac as jwt.Algorithm;
}

/** `JWT_SECRET`, else the server's development secret file; never invented. */
function signingSecret(cli: CliConfig, signer: Signer): string {
  const { config } = cli;
  if (config.JWT_SECRET !== undefined) return config.JWT_SECRET;
  if (config.JWT_PUBLIC_KEY_FILE !== undefined) {
    throw new StartupError(
      `cannot mint tokens for a public-key-only server: it is configured with JWT_PUBLIC_KEY_FILE=${config.JWT_PUBLIC_KEY_FILE} and no JWT_SECRET, so it accepts only tokens signed with the matching private key. Sign them where that key is (your identity provider or your backend)${signer.command === 'tail' ? ' and pass one with --token' : ''}, or give the server a JWT_SECRET as well (it then accepts both) and set the same JWT_SECRET here`,
    );
  }
  const dataDir = path.resolve(cli.dir, config.DATA_DIR);
  const file = devSecretFile(dataDir);
  let secret: string | null;
  try {
    secret = readDevSecret(dataDir);
  } catch (error) {
    throw new StartupError(`the server's development secret ${file}: cannot read it (${(error as Error).message})`);
  }
  if (secret === '') throw new StartupError(`the server's development secret ${file} is empty: delete it and restart the server (it makes a new one), or set JWT_SECRET`);
  if (secret !== null) return secret;
  const sources = [cli.envFile ?? `${path.join(cli.dir, '.env')} (no such file)`, ...(cli.configFile ? [`the config file ${cli.configFile}`] : [])];
  throw new StartupError(
    [
      'no secret to sign the token with. Looked for:',
      `  - JWT_SECRET: not set in the environment, nor in ${sources.join(', nor in ')}`,
      `  - the server's development secret: ${file} (no such file)`,
      `rowcast ${signer.command} does not make one: the server refuses (401) a token signed with any secret but its own, and makes ${path.join(config.DATA_DIR, 'jwt-secret')} in its own folder when it first starts with the embedded Postgres. Either:`,
      "  - run this in the server's folder (where `rowcast serve` or `npm start` runs),",
      "  - pass --dir <the server's folder>,",
      `  - or set JWT_SECRET (environment or .env) to the secret the server uses${signer.command === 'tail' ? ',\n  - or pass a token with --token' : ''}.`,
    ].join('\n'),
  );
}

/** Seconds of a lifetime such as `30m`, `1h`, `7d`. */
function parseTtl(ttl: string): number {
  const match = /^(\d+)([smhd])$/.exec(ttl);
  if (!match) throw new InvalidArgumentError(`--ttl ${ttl}: use a number and s, m, h or d, e.g. 1h`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

/** Sets a dotted claim path (`app_metadata.role`). */
function setPath(target: Record<string, unknown>, claimPath: string, value: unknown): void {
  const keys = claimPath.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}

function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
