/**
 * Who a connection acts for, taken from its verified JWT.
 */
export interface Principal {
  /** The `sub` claim as a string; `null` for the anonymous principal. */
  readonly sub: string | null;
  /** The role claim (`ROLE_CLAIM`), if any. */
  readonly role: string | null;
  /** Whether the role equals `ADMIN_ROLE`: admins read every event. */
  readonly isAdmin: boolean;
  /** When the token expires (ms since the epoch, clock tolerance included); `null`: never. */
  readonly expiresAt: number | null;
  /** All claims, for group claims named by policies. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The principal of a connection without a token (`ALLOW_ANONYMOUS`). */
export const ANONYMOUS: Principal = Object.freeze({ sub: null, role: null, isAdmin: false, expiresAt: null, claims: Object.freeze({}) });
