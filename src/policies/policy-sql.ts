import { claimValue, MAX_CLAIM_GROUPS } from '../auth/claim-value.js';
import type { Principal } from '../auth/principal.js';
import type { ColumnCondition, FilterSpec } from '../protocol/index.js';
import type { ReadPolicy } from './read-policy.js';

/** A column as the SQL needs it: its name and Postgres type name (`int4`, `text`, `uuid`, …). */
export interface SqlColumn {
  readonly name: string;
  readonly typname: string;
}

/** A condition for a `WHERE` clause: SQL text whose values are `$n` parameters, pushed onto `params`. */
export type SqlCondition = string;

/**
 * The rows of a table `principal` may read under `policy`, as a `WHERE`
 * condition (docs/snapshots.md): everything for admins and `public`, the
 * owner column equal to `sub`, the group column among the token's groups,
 * nothing otherwise. Identifiers are quoted and values parameterised.
 *
 * It selects at least the rows whose audience partitions the principal is
 * granted (see `grantedPartitions`), and uses the column's index where the
 * comparison allows: integer and uuid columns are compared in their own
 * type, after checking that the value is the canonical text of one (so
 * `'007'` matches no integer, as it matches no partition). Callers check
 * each row's partitions again, which makes the result exact whatever the
 * column's type.
 *
 * @example
 * policyWhere({ read: 'owner', ownerColumn: 'user_id' }, columns, alice, params) // '"user_id" = $1::int8'
 */
export function policyWhere(policy: ReadPolicy, columns: readonly SqlColumn[], principal: Principal, params: unknown[]): SqlCondition {
  if (principal.isAdmin) return 'TRUE';
  switch (policy.read) {
    case 'public':
      return 'TRUE';
    case 'owner':
      return principal.sub === null ? 'FALSE' : equalsAny(columnNamed(columns, policy.ownerColumn), [principal.sub], params);
    case 'group': {
      const groups = principal.claims[policy.groupClaim];
      if (!Array.isArray(groups)) return 'FALSE';
      const values: string[] = [];
      for (const group of groups.slice(0, MAX_CLAIM_GROUPS)) {
        const value = claimValue(group);
        if (value !== null) values.push(value);
      }
      return equalsAny(columnNamed(columns, policy.groupColumn), values, params);
    }
    case 'admin':
      return 'FALSE';
  }
}

/** A double-quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function columnNamed(columns: readonly SqlColumn[], name: string): SqlColumn {
  return columns.find((column) => column.name === name) ?? { name, typname: 'text' };
}

const INTEGER = /^-?(0|[1-9][0-9]{0,18})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INT8_MAX = 9223372036854775807n;

/** `column` equal to one of `values` (their text forms), in the column's own type where that is safe. */
function equalsAny(column: SqlColumn, values: readonly string[], params: unknown[]): SqlCondition {
  const ident = quoteIdent(column.name);
  switch (column.typname) {
    case 'int2':
    case 'int4':
    case 'int8': {
      const ints = values.filter((v) => INTEGER.test(v) && BigInt(v) <= INT8_MAX && BigInt(v) >= -INT8_MAX);
      if (ints.length === 0) return 'FALSE';
      params.push(ints);
      return `${ident} = ANY($${params.length}::int8[])`;
    }
    case 'uuid': {
      const uuids = values.filter((v) => UUID.test(v));
      if (uuids.length === 0) return 'FALSE';
      params.push(uuids);
      return `${ident} = ANY($${params.length}::uuid[])`;
    }
    case 'text':
    case 'varchar':
      if (values.length === 0) return 'FALSE';
      params.push(values);
      return `${ident} = ANY($${params.length}::text[])`;
    default:
      if (values.length === 0) return 'FALSE';
      params.push(values);
      return `${ident}::text = ANY($${params.length}::text[])`;
  }
}

const EXACT_NUMBER_TYPES = new Set(['int2', 'int4', 'int8', 'numeric']);
const TEXT_TYPES = new Set(['text', 'varchar']);
const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;
const SQL_OPS = { eq: '=', neq: '<>', lt: '<', lte: '<=', gt: '>', gte: '>=' } as const;

/**
 * The conditions of a subscription filter (already compiled and checked
 * against the columns) that SQL decides exactly as the filter does, as a
 * `WHERE` condition: comparisons on integer and `numeric` columns (as exact
 * decimals), equality and `in` on `text` and `varchar` columns, and `eq` /
 * `neq` with `null`. The others are left to the filter itself, which
 * callers run on every row: this only narrows what is read (and counted
 * against `SNAPSHOT_MAX_ROWS`).
 */
export function filterWhere(spec: FilterSpec, columns: readonly SqlColumn[], params: unknown[]): SqlCondition {
  const conditions: string[] = [];
  for (const [name, condition] of Object.entries(spec)) {
    const column = columns.find((c) => c.name === name);
    if (!column) continue;
    const ident = quoteIdent(name);
    const number = EXACT_NUMBER_TYPES.has(column.typname);
    const text = TEXT_TYPES.has(column.typname);
    for (const [op, value] of Object.entries(condition) as Array<[keyof ColumnCondition, unknown]>) {
      if (op === 'in') {
        const values = value as readonly unknown[];
        if (number && values.every(isDecimal)) conditions.push(`${ident} = ANY($${params.push(values.map(String))}::numeric[])`);
        else if (text && values.every((v) => typeof v === 'string')) conditions.push(`${ident} = ANY($${params.push(values)}::text[])`);
      } else if (value === null) {
        if (op === 'eq') conditions.push(`${ident} IS NULL`);
        if (op === 'neq') conditions.push(`${ident} IS NOT NULL`);
      } else if (number && isDecimal(value)) {
        conditions.push(`${ident} ${SQL_OPS[op]} $${params.push(String(value))}::numeric`);
      } else if (text && (op === 'eq' || op === 'neq') && typeof value === 'string') {
        conditions.push(`${ident} ${SQL_OPS[op]} $${params.push(value)}::text`);
      }
    }
  }
  return conditions.length === 0 ? 'TRUE' : conditions.join(' AND ');
}

function isDecimal(value: unknown): boolean {
  return (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && DECIMAL.test(value));
}
