import { createPublicKey, createSecretKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { RowcastError } from '../errors.js';
import { claimValue, MAX_CLAIM_GROUPS, MAX_CLAIM_VALUE_LENGTH } from './claim-value.js';
import type { Principal } from './principal.js';

/** Algorithms verified with the HMAC secret. */
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
/** Algorithms verified with the public key. */
export const KEY_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
/** Every algorithm rowcast accepts (`none` is never one). */
export const ALGORITHMS = [...HMAC_ALGORITHMS, ...KEY_ALGORITHMS] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** How tokens are checked and read. */
export interface TokenVerifierOptions {
  /** HMAC secret for HS256/384/512. */
  readonly secret?: string;
  /** PEM public key for RS*, PS* and ES* tokens. */
  readonly publicKey?: string;
  /** Accepted algorithms (`JWT_ALGORITHMS`); default: those the configured keys can verify. */
  readonly algorithms?: readonly Algorithm[];
  /** Seconds of clock skew allowed on `exp` and `nbf`. */
  readonly clockToleranceSeconds?: number;
  /** When set, `aud` must include it. */
  readonly audience?: string;
  /** When set, `iss` must equal it. */
  readonly issuer?: string;
  /** Refuse tokens without `exp` (`JWT_REQUIRE_EXP`, default true): such a token would never expire. */
  readonly requireExp?: boolean;
  /** Claim path of the role, dotted for nested claims (`app_metadata.role`). */
  readonly roleClaim: string;
  /** The role value that makes a principal an admin. */
  readonly adminRole: string;
  /** Claims that group policies read (besides `groups`): each must be an array of strings or numbers when present. */
  readonly groupClaims?: () => Iterable<string>;
}

/** Verifies a JWT and returns its principal. */
export type TokenVerifier = (token: string) => Principal;

/**
 * Builds the verifier the upgrade and `refresh-token` use: the header's
 * `alg` must be one of the accepted algorithms (never `none`) and picks the
 * key (HMAC secret or public key); `jsonwebtoken` checks the signature,
 * `exp`/`nbf` (with the clock tolerance), `aud` and `iss`; then the claims
 * are read into a {@link Principal}. Throws a `TOKEN_INVALID`
 * {@link RowcastError} saying why.
 *
 * @example
 * const verify = createTokenVerifier({ secret, roleClaim: 'role', adminRole: 'admin' });
 * verify(token).sub // '42'
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const path = options.roleClaim.split('.');
  const available: Algorithm[] = [...(options.secret ? HMAC_ALGORITHMS : []), ...(options.publicKey ? KEY_ALGORITHMS : [])];
  const accepted = new Set<Algorithm>(options.algorithms ? options.algorithms.filter((a) => available.includes(a)) : available);
  if (accepted.size === 0) throw new RowcastError('INTERNAL', 'no JWT algorithm can be verified with the configured keys');
  // Key objects made once: given a string, jsonwebtoken tries it as a PEM public key on every
  // verify and catches the failure, which took ~350 µs a token (7 µs with a KeyObject).
  const secretKey = options.secret ? createSecretKey(Buffer.from(options.secret)) : undefined;
  const publicKey = options.publicKey ? createPublicKey(options.publicKey) : undefined;
  return (token) => {
    const alg = headerAlgorithm(token);
    if (!accepted.has(alg as Algorithm)) {
      throw new RowcastError('TOKEN_INVALID', `invalid token: algorithm ${alg} is not accepted (accepted: ${[...accepted].join(', ')})`);
    }
    const key = (HMAC_ALGORITHMS as readonly string[]).includes(alg) ? secretKey! : publicKey!;
    let claims: jwt.JwtPayload | string;
    try {
      claims = jwt.verify(token, key, {
        algorithms: [alg as jwt.Algorithm],
        clockTolerance: options.clockToleranceSeconds ?? 0,
        ...(options.audience !== undefined ? { audience: options.audience } : {}),
        ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
      });
    } catch (error) {
      throw new RowcastError('TOKEN_INVALID', `invalid token: ${(error as Error).message}`, { cause: error });
    }
    if (typeof claims !== 'object' || claims === null) {
      throw new RowcastError('TOKEN_INVALID', 'invalid token: the payload is not a JSON object');
    }
    if ((options.requireExp ?? true) && typeof claims.exp !== 'number') {
      throw new RowcastError('TOKEN_INVALID', 'invalid token: it has no exp, and tokens must expire (JWT_REQUIRE_EXP)');
    }
    const sub = claims.sub === undefined ? null : claimValue(claims.sub);
    if (claims.sub !== undefined && sub === null) {
      throw new RowcastError('TOKEN_INVALID', `invalid token: sub must be a non-empty string or a number, at most ${MAX_CLAIM_VALUE_LENGTH} characters of well-formed Unicode`);
    }
    for (const name of new Set(['groups', ...(options.groupClaims?.() ?? [])])) {
      const groups = (claims as Record<string, unknown>)[name];
      if (groups === undefined) continue;
      if (!Array.isArray(groups) || groups.length > MAX_CLAIM_GROUPS || !groups.every((g) => claimValue(g) !== null)) {
        throw new RowcastError(
          'TOKEN_INVALID',
          `invalid token: claim ${name} must be an array of at most ${MAX_CLAIM_GROUPS} non-empty strings or numbers, each at most ${MAX_CLAIM_VALUE_LENGTH} characters of well-formed Unicode`,
        );
      }
    }
    let role: unknown = claims;
    for (const key of path) role = role !== null && typeof role === 'object' ? (role as Record<string, unknown>)[key] : undefined;
    const roleText = typeof role === 'string' ? role : null;
    return Object.freeze({
      sub,
      role: roleText,
      isAdmin: roleText === options.adminRole,
      expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 + (options.clockToleranceSeconds ?? 0) * 1000 : null,
      claims: Object.freeze(claims),
    });
  };
}

/** The `alg` of a compact JWS, read without trusting it (it only picks the key). */
function headerAlgorithm(token: string): string {
  const decoded = jwt.decode(token, { complete: true });
  if (decoded === null || typeof decoded.header?.alg !== 'string') {
    throw new RowcastError('TOKEN_INVALID', 'invalid token: not a JWT (header.payload.signature, base64url)');
  }
  return decoded.header.alg;
}
