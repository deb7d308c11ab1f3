/**
 * The model of the permission property tests (test/permissions-property*.test.ts):
 * random users, groups, policies, filters and row changes (fast-check
 * generators), the read rule they should obey, and the SQL that sets them up,
 * applies them and says what each user may read. Shared by the /live test and
 * the one that runs the same scenarios through the Supabase door.
 */
import fc from 'fast-check';

export type Policy = { read: 'public' } | { read: 'owner'; column: 'owner' | 'owner2' } | { read: 'group'; column: 'grp' | 'grp2' } | { read: 'admin' };
export type Condition = { eq: number } | { neq: number } | { lt: number } | { gte: number } | { in: number[] };
export interface User {
  sub: string;
  admin: boolean;
  groups: string[];
  /** Per table: a filter on `val`, or none. */
  filters: Array<Condition | null>;
}
export interface RowValues {
  owner: string | null;
  owner2: string | null;
  grp: string | null;
  grp2: string | null;
  val: number;
}
export type Op =
  | { op: 'insert'; table: number; id: number; row: RowValues }
  | { op: 'update'; table: number; id: number; set: Partial<RowValues> }
  | { op: 'shift'; table: number; below: number }
  | { op: 'delete'; table: number; id: number }
  | { op: 'policy'; table: number; policy: Policy };
export interface Scenario {
  policies: Policy[];
  users: User[];
  ops: Op[];
}

export const TABLES = 3;
export const SUBS = ['u0', 'u1', 'u2', 'u3'];
export const GROUPS = ['g0', 'g1', 'g2'];

export const policy = fc.constantFrom<Policy>(
  { read: 'public' },
  { read: 'owner', column: 'owner' },
  { read: 'owner', column: 'owner2' },
  { read: 'group', column: 'grp' },
  { read: 'group', column: 'grp2' },
  { read: 'admin' },
);
export const value = fc.integer({ min: 0, max: 9 });
export const condition: fc.Arbitrary<Condition> = fc.oneof(
  value.map((n) => ({ eq: n })),
  value.map((n) => ({ neq: n })),
  value.map((n) => ({ lt: n })),
  value.map((n) => ({ gte: n })),
  fc.uniqueArray(value, { minLength: 1, maxLength: 4 }).map((ns) => ({ in: ns })),
);
export const rowValues: fc.Arbitrary<RowValues> = fc.record({
  owner: fc.option(fc.constantFrom(...SUBS), { freq: 6 }),
  owner2: fc.option(fc.constantFrom(...SUBS), { freq: 6 }),
  grp: fc.option(fc.constantFrom(...GROUPS), { freq: 6 }),
  grp2: fc.option(fc.constantFrom(...GROUPS), { freq: 6 }),
  val: value,
});
export const table = fc.integer({ min: 0, max: TABLES - 1 });
export const id = fc.integer({ min: 0, max: 5 });
export const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('insert' as const), table, id, row: rowValues }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('update' as const), table, id, set: fc.record(
    {
      owner: fc.option(fc.constantFrom(...SUBS)),
      owner2: fc.option(fc.constantFrom(...SUBS)),
      grp: fc.option(fc.constantFrom(...GROUPS)),
      grp2: fc.option(fc.constantFrom(...GROUPS)),
      val: value,
    },
    { requiredKeys: [] },
  ) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('shift' as const), table, below: value }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), table, id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('policy' as const), table, policy }) },
);
export const scenario: fc.Arbitrary<Scenario> = fc.record({
  policies: fc.array(policy, { minLength: TABLES, maxLength: TABLES }),
  users: fc.array(
    fc.record({
      sub: fc.constantFrom(...SUBS),
      admin: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      groups: fc.subarray(GROUPS),
      filters: fc.array(fc.option(condition, { freq: 2 }), { minLength: TABLES, maxLength: TABLES }),
    }),
    { minLength: 2, maxLength: 5 },
  ),
  ops: fc.array(op, { minLength: 5, maxLength: 30 }),
});

/** Whether `user` may read `row` under `policy` (the rule of DESIGN.md §4). */
export function mayRead(user: User, policy: Policy, row: Record<string, unknown>): boolean {
  if (user.admin) return true;
  switch (policy.read) {
    case 'public':
      return true;
    case 'owner':
      return row[policy.column] === user.sub;
    case 'group':
      return row[policy.column] !== null && user.groups.includes(row[policy.column] as string);
    case 'admin':
      return false;
  }
}

export function passes(filter: Condition | null, row: Record<string, unknown>): boolean {
  if (filter === null) return true;
  const v = row['val'] as number;
  if ('eq' in filter) return v === filter.eq;
  if ('neq' in filter) return v !== filter.neq;
  if ('lt' in filter) return v < filter.lt;
  if ('gte' in filter) return v >= filter.gte;
  return filter.in.includes(v);
}

/** The same rule in SQL, for the final comparison against the database itself. */
export function readableSql(user: User, policy: Policy, filter: Condition | null, tableName: string): string {
  const conditions: string[] = [];
  if (!user.admin) {
    if (policy.read === 'owner') conditions.push(`${policy.column} = '${user.sub}'`);
    if (policy.read === 'group') conditions.push(user.groups.length ? `${policy.column} IN (${user.groups.map((g) => `'${g}'`).join(',')})` : 'false');
    if (policy.read === 'admin') conditions.push('false');
  }
  if (filter) {
    if ('eq' in filter) conditions.push(`val = ${filter.eq}`);
    if ('neq' in filter) conditions.push(`val <> ${filter.neq}`);
    if ('lt' in filter) conditions.push(`val < ${filter.lt}`);
    if ('gte' in filter) conditions.push(`val >= ${filter.gte}`);
    if ('in' in filter) conditions.push(`val IN (${filter.in.join(',')})`);
  }
  return `SELECT id, owner, owner2, grp, grp2, val FROM ${tableName} ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY id`;
}

export function policySql(name: string, p: Policy): string {
  const columns = p.read === 'owner' ? `'${p.column}', NULL` : p.read === 'group' ? `NULL, '${p.column}'` : 'NULL, NULL';
  return `INSERT INTO rowcast.table_policies (table_name, read, owner_column, group_column) VALUES ('${name}', '${p.read}', ${columns})
          ON CONFLICT (table_schema, table_name) DO UPDATE SET read = EXCLUDED.read, owner_column = EXCLUDED.owner_column, group_column = EXCLUDED.group_column`;
}

export function opSql(name: string, o: Op): string {
  const lit = (v: string | null) => (v === null ? 'NULL' : `'${v}'`);
  switch (o.op) {
    case 'insert':
      return `INSERT INTO ${name} VALUES (${o.id}, ${lit(o.row.owner)}, ${lit(o.row.owner2)}, ${lit(o.row.grp)}, ${lit(o.row.grp2)}, ${o.row.val}) ON CONFLICT (id) DO NOTHING`;
    case 'update': {
      const sets = Object.entries(o.set).map(([k, v]) => `${k} = ${typeof v === 'number' ? v : lit(v ?? null)}`);
      return sets.length ? `UPDATE ${name} SET ${sets.join(', ')} WHERE id = ${o.id}` : `SELECT 1`;
    }
    case 'shift':
      return `UPDATE ${name} SET val = (val + 3) % 10 WHERE val < ${o.below}`;
    case 'delete':
      return `DELETE FROM ${name} WHERE id = ${o.id}`;
    case 'policy':
      return policySql(name, o.policy);
  }
}
