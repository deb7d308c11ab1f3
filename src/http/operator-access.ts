import { createHash, timingSafeEqual } from 'node:crypto';
import type { TokenVerifier } from '../auth/token-verifier.js';
import { RowcastError } from '../errors.js';

/** Who may read the operator pages (`/status`, `/metrics`). */
export interface OperatorAccessOptions {
  /** Checks an admin JWT. */
  readonly verifyToken: TokenVerifier;
  /** `METRICS_TOKEN`: a bearer token for scrapers, besides admin JWTs. */
  readonly metricsToken?: string;
  /** `STATUS_PUBLIC`: anyone may read them (local work). */
  readonly public: boolean;
}

/** Checks a request's `Authorization` header: `null` when it may read the operator pages, else the refusal. */
export type OperatorAccess = (authorization: string) => RowcastError | null;

/**
 * The gate of the operator pages. They name every published table, read
 * modes, custom topics, Postgres errors and the host, so they are for
 * operators: `Authorization: Bearer <METRICS_TOKEN>` (compared in constant
 * time) or `Bearer <admin JWT>`, unless `STATUS_PUBLIC` opens them.
 *
 * @example
 * const access = operatorAccess({ verifyToken, metricsToken: process.env.METRICS_TOKEN, public: false });
 * access('Bearer ' + token) // null: allowed
 */
export function operatorAccess(options: OperatorAccessOptions): OperatorAccess {
  const metricsDigest = options.metricsToken === undefined ? null : digest(options.metricsToken);
  return (authorization) => {
    if (options.public) return null;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
    if (bearer === undefined) {
      return new RowcastError('TOKEN_INVALID', 'send Authorization: Bearer <admin JWT or METRICS_TOKEN> (STATUS_PUBLIC=true opens this page)');
    }
    if (metricsDigest !== null && timingSafeEqual(digest(bearer), metricsDigest)) return null;
    try {
      if (options.verifyToken(bearer).isAdmin) return null;
    } catch (error) {
      return error instanceof RowcastError ? error : new RowcastError('TOKEN_INVALID', 'invalid token');
    }
    return new RowcastError('FORBIDDEN', 'this page needs an admin token or METRICS_TOKEN');
  };
}

/** A fixed-length digest, so that tokens of any length compare in constant time. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
