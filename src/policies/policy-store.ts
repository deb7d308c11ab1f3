import { z } from 'zod';
import type { Database, RowcastTables } from '../db/database.js';
import { storableText as storable } from '../protocol/storable-text.js';
import { RowcastError } from '../errors.js';

const text = (max: number) => z.string().min(1).max(max).refine(storable, 'must be well-formed Unicode without U+0000');

/** Postgres allows 1,600 columns per table. */
const MAX_HIDDEN_COLUMNS = 1600;

/** A table's read policy as the admin API and the CLI take it. */
export const policyInput = z
  .object({
    read: z.enum(['public', 'owner', 'group', 'admin']),
    ownerColumn: text(63).optional(),
    groupColumn: text(63).optional(),
    groupClaim: text(256).default('groups'),
    hiddenColumns: z.array(text(63)).max(MAX_HIDDEN_COLUMNS).default([]),
  })
  .strict()
  .refine((p) => p.read !== 'owner' || p.ownerColumn !== undefined, { message: 'read owner needs ownerColumn', path: ['ownerColumn'] })
  .refine((p) => p.read !== 'group' || p.groupColumn !== undefined, { message: 'read group needs groupColumn', path: ['groupColumn'] });
export type PolicyInput = z.input<typeof policyInput>;

type PolicyRow = RowcastTables['rowcast.table_policies'];

/** `schema.table` or `table` (in `public`); `INVALID_ATTRIBUTES` for what cannot name a table. */
function tableName(name: string): { schema: string; table: string } {
  const [schema, table] = name.includes('.') ? (name.split('.', 2) as [string, string]) : ['public', name];
  for (const part of [schema, table]) {
    if (part.length === 0 || part.length > 63 || !storable(part)) {
      throw new RowcastError('INVALID_ATTRIBUTES', 'table: [schema.]table, each part 1–63 characters of well-formed Unicode without U+0000');
    }
  }
  return { schema, table };
}

/**
 * Writes a table's read policy (`rowcast.table_policies`); the running
 * servers apply it from the replication stream. The database refuses an
 * owner, group or hidden column the table does not have and a hidden primary
 * key column; that refusal comes back as `INVALID_ATTRIBUTES` with its message.
 */
export async function setPolicy(db: Database, name: string, input: PolicyInput): Promise<PolicyRow> {
  const parsed = policyInput.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RowcastError('INVALID_ATTRIBUTES', `${issue.path.join('.') || 'policy'}: ${issue.message}`);
  }
  const policy = parsed.data;
  const { schema, table } = tableName(name);
  const row: PolicyRow = {
    table_schema: schema,
    table_name: table,
    read: policy.read,
    owner_column: policy.read === 'owner' ? policy.ownerColumn! : null,
    group_column: policy.read === 'group' ? policy.groupColumn! : null,
    group_claim: policy.groupClaim,
    hidden_columns: [...new Set(policy.hiddenColumns)],
  };
  try {
    await db
      .insertInto('rowcast.table_policies')
      .values(row)
      .onConflict((c) => c.columns(['table_schema', 'table_name']).doUpdateSet(row))
      .execute();
  } catch (error) {
    // The policy trigger (migration 0002) says what is wrong with the table or column.
    if ((error as { code?: string }).code?.startsWith('P0') || (error as { code?: string }).code === '42703') {
      throw new RowcastError('INVALID_ATTRIBUTES', (error as Error).message, { cause: error });
    }
    throw error;
  }
  return row;
}

/** Every table policy, by schema and table. */
export function listPolicies(db: Database): Promise<PolicyRow[]> {
  return db.selectFrom('rowcast.table_policies').selectAll().orderBy('table_schema').orderBy('table_name').execute();
}

/** Removes a table's policy (its table topic disappears); `false` when it had none. */
export async function deletePolicy(db: Database, name: string): Promise<boolean> {
  const { schema, table } = tableName(name);
  const result = await db.deleteFrom('rowcast.table_policies').where('table_schema', '=', schema).where('table_name', '=', table).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
