/**
 * Who may read a table's rows (docs/protocol.md), as a union on `read`.
 * A published table without a policy row is `admin`.
 */
export type ReadPolicy =
  | { readonly read: 'public' }
  | { readonly read: 'owner'; readonly ownerColumn: string }
  | { readonly read: 'group'; readonly groupColumn: string; readonly groupClaim: string }
  | { readonly read: 'admin' };

/** The policy of a table that has no row in `rowcast.table_policies`. */
export const ADMIN_ONLY: ReadPolicy = Object.freeze({ read: 'admin' });
