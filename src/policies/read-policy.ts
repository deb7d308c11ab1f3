/**
 * Who may read a table's rows (DESIGN.md §4), as a union on `read`.
 * A published table without a policy row is `admin`.
 */
export type ReadPolicy =
  | { readonly read: 'public' }
  | { readonly read: 'owner'; readonly ownerColumn: string }
  | { readonly read: 'group'; readonly groupColumn: string; readonly groupClaim: string }
  | { readonly read: 'admin' };

/** The policy of a table that has no row in `rowcast.table_policies`. */
export const ADMIN_ONLY: ReadPolicy = Object.freeze({ read: 'admin' });
