/**
 * Who may read a table's rows (docs/protocol.md), as a union on `read`, and
 * the columns non-admins never see (`hiddenColumns`, absent when none).
 * A published table without a policy row is `admin`.
 */
export type ReadPolicy = (
  | { readonly read: 'public' }
  | { readonly read: 'owner'; readonly ownerColumn: string }
  | { readonly read: 'group'; readonly groupColumn: string; readonly groupClaim: string }
  | { readonly read: 'admin' }
) & { readonly hiddenColumns?: readonly string[] };

/** The policy of a table that has no row in `rowcast.table_policies`. */
export const ADMIN_ONLY: ReadPolicy = Object.freeze({ read: 'admin' });

const NONE: readonly string[] = Object.freeze([]);

/** The columns of a table with `policy` that `admin` or not may see: all of them, or all but the hidden ones. */
export function visibleColumns<C extends { readonly name: string }>(columns: readonly C[], policy: ReadPolicy, admin: boolean): readonly C[] {
  const hidden = policy.hiddenColumns ?? NONE;
  return admin || hidden.length === 0 ? columns : columns.filter((column) => !hidden.includes(column.name));
}
