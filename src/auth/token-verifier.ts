import jwt from 'jsonwebtoken';
import { RowcastError } from '../errors.js';
import type { Principal } from './principal.js';

/** How tokens are checked and read. */
export interface TokenVerifierOptions {
  /** HMAC secret for HS256/384/512. */
  readonly secret: string;
  /** Claim path of the role, dotted for nested claims (`app_metadata.role`). */
  readonly roleClaim: string;
  /** The role value that makes a principal an admin. */
  readonly adminRole: string;
  /** Claims that group policies read (besides `groups`): each must be an array of strings or numbers when present. */
  readonly groupClaims?: () => Iterable<string>;
}

/** Verifies a JWT and returns its principal. */
export type TokenVerifier = (token: string) => Principal;

const ALGORITHMS: jwt.Algorithm[] = ['HS256', 'HS384', 'HS512'];

/**
 * Builds the verifier the upgrade uses: signature and `exp`/`nbf` checked by
 * `jsonwebtoken` (never `alg: none`), then the claims read into a
 * {@link Principal}. Throws a `TOKEN_INVALID` {@link RowcastError} saying why.
 *
 * @example
 * const verify = createTokenVerifier({ secret, roleClaim: 'role', adminRole: 'admin' });
 * verify(token).sub // '42'
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const path = options.roleClaim.split('.');
  return (token) => {
    let claims: jwt.JwtPayload | string;
    try {
      claims = jwt.verify(token, options.secret, { algorithms: ALGORITHMS });
    } catch (error) {
      throw new RowcastError('TOKEN_INVALID', `invalid token: ${(error as Error).message}`, { cause: error });
    }
    if (typeof claims !== 'object' || claims === null) {
      throw new RowcastError('TOKEN_INVALID', 'invalid token: the payload is not a JSON object');
    }
    const sub = claims.sub;
    if (sub !== undefined && typeof sub !== 'string' && typeof sub !== 'number') {
      throw new RowcastError('TOKEN_INVALID', 'invalid token: sub must be a string or a number');
    }
    for (const name of new Set(['groups', ...(options.groupClaims?.() ?? [])])) {
      const groups = (claims as Record<string, unknown>)[name];
      if (groups !== undefined && !(Array.isArray(groups) && groups.every((g) => typeof g === 'string' || typeof g === 'number'))) {
        throw new RowcastError('TOKEN_INVALID', `invalid token: claim ${name} must be an array of strings or numbers`);
      }
    }
    let role: unknown = claims;
    for (const key of path) role = role !== null && typeof role === 'object' ? (role as Record<string, unknown>)[key] : undefined;
    const roleText = typeof role === 'string' ? role : null;
    return Object.freeze({
      sub: sub === undefined ? null : String(sub),
      role: roleText,
      isAdmin: roleText === options.adminRole,
      claims: Object.freeze(claims),
    });
  };
}
