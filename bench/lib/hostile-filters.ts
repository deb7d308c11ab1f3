/**
 * The filters of the hostile-tenant benchmark (bench/hostile-tenant.ts): as
 * many distinct filter groups as one topic may hold, each as large as the
 * server's limits allow, built so that evaluating one costs the server as
 * much as a filter can: every value is compared with the row, none of the
 * comparisons can stop early, and no group ever matches a row (so what the
 * tenant costs is filter evaluation, never deliveries).
 */
import { compileRowFilter, type FilterSpec } from '../../src/policies/row-filter.js';

/** The server's per-topic and per-filter limits (config keys and env vars of the same names). */
export interface FilterLimits {
  /** MAX_FILTER_GROUPS_PER_TOPIC: distinct filter groups on one topic on one node. */
  readonly groupsPerTopic: number;
  /** MAX_FILTER_GROUPS_PER_PARTITION: distinct filter groups whose subscribers read the same rows (the tenant's own, or a public table's). */
  readonly groupsPerPartition: number;
  /** MAX_FILTER_VALUES: values in one filter (a comparison counts one, each `in` element one). */
  readonly values: number;
  /** MAX_FILTER_VALUE_LENGTH: characters of one string value. */
  readonly valueLength: number;
  /** MAX_FILTER_KEY_BYTES: bytes of a filter's canonical key. */
  readonly keyBytes: number;
  /** MAX_SUBSCRIPTIONS_PER_USER: subscriptions of one user across its connections. */
  readonly subscriptionsPerUser: number;
}

/** The limits' defaults, which the benchmark passes to its server explicitly. */
export const DEFAULT_FILTER_LIMITS: FilterLimits = Object.freeze({
  groupsPerTopic: 1000,
  groupsPerPartition: 100,
  values: 100,
  valueLength: 256,
  keyBytes: 4096,
  subscriptionsPerUser: 1000,
});

/** The limits as the server's environment. */
export function limitsEnv(limits: FilterLimits): Record<string, string> {
  return {
    MAX_FILTER_GROUPS_PER_TOPIC: String(limits.groupsPerTopic),
    MAX_FILTER_GROUPS_PER_PARTITION: String(limits.groupsPerPartition),
    MAX_FILTER_VALUES: String(limits.values),
    MAX_FILTER_VALUE_LENGTH: String(limits.valueLength),
    MAX_FILTER_KEY_BYTES: String(limits.keyBytes),
    MAX_SUBSCRIPTIONS_PER_USER: String(limits.subscriptionsPerUser),
  };
}

/**
 * The size of the hostile filters (JSON, so load generators get it in their
 * job): each string value is `valueLength` characters and the `zone.in` list
 * has `inValues` elements. Everything else in a filter is fixed.
 */
export interface HostileFilterPlan {
  readonly valueLength: number;
  readonly inValues: number;
}

/** The columns the filters name, as the server sees them (a table may have more). */
export const HOSTILE_FILTER_COLUMNS = [
  { name: 'amount', type: 'integer' },
  { name: 'id', type: 'bigint' },
  { name: 'owner_id', type: 'integer' },
  { name: 'written_at', type: 'double precision' },
  { name: 'zone', type: 'text' },
] as const;

/**
 * The `zone` of every row the benchmark writes (its table's default): `x`s,
 * as many as the plan's string values have characters, so that each
 * comparison with a value reads all of it. A plan with shorter values (one
 * fitted to a smaller key budget) still works on these rows.
 */
export function hostileZone(plan: HostileFilterPlan): string {
  return 'x'.repeat(plan.valueLength);
}

/** Characters that differ from the rows' `x`s, for values that share their prefix but not the whole. */
const ALPHABET = '0123456789abcdefghijklmnopqrstuvw';

/** Values in a filter besides the `zone.in` list: five comparisons on each of five columns. */
const COMPARISONS = 25;

/**
 * Filter `group` of the plan: distinct for each group (its `amount.lte`),
 * with five comparisons (`gt gte lt lte neq`) on each of `amount`, `id`,
 * `owner_id`, `written_at` and `zone` that every row of the benchmark passes
 * (small positive amounts, ids and owners, epoch-ms stamps, a `zone` of
 * {@link hostileZone} or a longer one), and a `zone.in` list that no row
 * matches: strings of `x`s that differ from the row's only in their last two
 * characters, so each is compared to the end and none can end the list
 * early. The `in` list is on the column that sorts last, so even a router
 * that stops at the first failing condition in sorted order evaluates every
 * other value first.
 */
export function hostileFilter(plan: HostileFilterPlan, group: number): FilterSpec {
  const length = plan.valueLength;
  const prefix = 'x'.repeat(length - 1);
  return {
    amount: { gt: -1, gte: 0, lt: 2_000_000_000, lte: 1_000_000_000 + group, neq: -1 },
    id: { gt: 0, gte: 1, lt: 9_000_000_000_000_000, lte: 9_000_000_000_000_000, neq: 0 },
    owner_id: { gt: -1, gte: 0, lt: 2_000_000_000, lte: 2_000_000_000, neq: -1 },
    written_at: { gt: 0, gte: 1, lt: 1e15, lte: 1e15, neq: 0 },
    zone: {
      gt: `${prefix}w`,
      gte: 'x'.repeat(length),
      lt: `${prefix}y`,
      lte: `${prefix}z`,
      neq: `${prefix}v`,
      in: Array.from({ length: plan.inValues }, (_, i) => `${'x'.repeat(length - 2)}${ALPHABET[Math.floor(i / ALPHABET.length)]}${ALPHABET[i % ALPHABET.length]}`),
    },
  };
}

/**
 * Checks filter `group` of the plan against a row as the server sees one: it
 * must match nothing, and pass every condition but its `zone.in` list, or
 * the benchmark would measure less work than it says. Throws otherwise.
 */
export function assertHostileFilter(plan: HostileFilterPlan, group: number, row: Record<string, unknown>): void {
  const spec = hostileFilter(plan, group);
  const { in: _list, ...comparisons } = spec['zone']!;
  const matches = compileRowFilter(spec, HOSTILE_FILTER_COLUMNS, UNBOUNDED).test(row);
  const passes = compileRowFilter({ ...spec, zone: comparisons }, HOSTILE_FILTER_COLUMNS, UNBOUNDED).test(row);
  if (matches || !passes) throw new Error(`hostile filter ${group}: matches the row: ${matches}, passes every comparison: ${passes} (want false, true)`);
}

/** Values in a filter as the limit counts them: one per comparison, one per `in` element. */
export function filterValues(spec: FilterSpec): number {
  let count = 0;
  for (const condition of Object.values(spec)) {
    for (const [op, value] of Object.entries(condition)) count += op === 'in' ? (value as unknown[]).length : 1;
  }
  return count;
}

/** Bounds large enough for any filter the fitting tries: it measures, the server refuses. */
const UNBOUNDED = { maxValues: Number.MAX_SAFE_INTEGER, maxValueLength: Number.MAX_SAFE_INTEGER, maxKeyBytes: Number.MAX_SAFE_INTEGER };

/** Bytes of the canonical key the server computes for a filter (UTF-8). */
export function filterKeyBytes(spec: FilterSpec): number {
  return Buffer.byteLength(compileRowFilter(spec, HOSTILE_FILTER_COLUMNS, UNBOUNDED).key);
}

/** Whether every filter of the plan, up to group `lastGroup`, is within the limits. */
export function planFits(plan: HostileFilterPlan, limits: FilterLimits, lastGroup: number): boolean {
  if (plan.valueLength < 2 || plan.valueLength > limits.valueLength || plan.inValues < 0) return false;
  if (plan.inValues > ALPHABET.length ** 2) return false;
  const spec = hostileFilter(plan, lastGroup);
  return filterValues(spec) <= limits.values && filterKeyBytes(spec) <= limits.keyBytes;
}

/**
 * The largest plan within `limits` (groups up to `lastGroup`): every value
 * the filter may hold, then the longest strings that keep its key within
 * the key bytes. Throws when not even the shortest strings fit.
 */
export function fitHostileFilter(limits: FilterLimits, lastGroup: number): HostileFilterPlan {
  const inValues = Math.min(limits.values - COMPARISONS, ALPHABET.length ** 2);
  for (let values = inValues; values >= 0; values--) {
    const valueLength = longestFitting(values, limits, lastGroup);
    if (valueLength !== null) return { valueLength, inValues: values };
  }
  throw new Error(`no hostile filter fits the limits ${JSON.stringify(limits)}`);
}

/** The longest string length (≥ 2) with which a plan of `inValues` fits, by bisection, or null. */
function longestFitting(inValues: number, limits: FilterLimits, lastGroup: number): number | null {
  let low = 2;
  let high = limits.valueLength;
  if (!planFits({ valueLength: low, inValues }, limits, lastGroup)) return null;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (planFits({ valueLength: mid, inValues }, limits, lastGroup)) low = mid;
    else high = mid - 1;
  }
  return low;
}
