import { RowcastError } from '../errors.js';
import type { Row } from '../replication/transaction.js';
import type { TopicColumn } from '../topics/topic-registry.js';

/** A filter value: what JSON can say about one column. */
export type FilterValue = string | number | boolean | null;

/** Conditions on one column, AND-ed (DESIGN.md §3). */
export interface ColumnCondition {
  readonly eq?: FilterValue;
  readonly neq?: FilterValue;
  readonly lt?: FilterValue;
  readonly lte?: FilterValue;
  readonly gt?: FilterValue;
  readonly gte?: FilterValue;
  readonly in?: readonly FilterValue[];
}

/** A subscription filter: column → conditions, all AND-ed. */
export type FilterSpec = Readonly<Record<string, ColumnCondition>>;

/** A filter ready to run on rows, with the canonical key that identifies it. */
export interface RowFilter {
  /** Equal for filters that select the same rows, whatever the order they were written in. */
  readonly key: string;
  readonly test: (row: Row) => boolean;
}

type Compare = 'number' | 'time' | 'bool' | 'text';

/** The most values an `in` condition may list. */
export const MAX_IN_VALUES = 100;

/**
 * Compiles a filter against a topic's columns, with SQL's meaning: `eq`
 * (`=`), `neq` (`<>`), `lt`, `lte`, `gt`, `gte`, `in`; a NULL column value
 * matches no comparison, except that `eq: null` means `IS NULL` and
 * `neq: null` means `IS NOT NULL`. Numbers compare as numbers (also for
 * `int8` and `numeric`, which travel as strings), timestamps and dates as
 * instants, text in code-point order.
 *
 * @throws RowcastError `INVALID_ATTRIBUTES` for an unknown column or a value
 * that cannot be compared with the column.
 *
 * @example
 * compileRowFilter({ amount: { gte: 100 } }, columns).test({ amount: '120.50' }) // true
 */
export function compileRowFilter(spec: FilterSpec, columns: readonly TopicColumn[]): RowFilter {
  const tests: Array<(row: Row) => boolean> = [];
  const canonical: Array<[string, Array<[string, unknown]>]> = [];
  for (const name of Object.keys(spec).sort()) {
    const column = columns.find((c) => c.name === name);
    if (!column) throw new RowcastError('INVALID_ATTRIBUTES', `filter.${name}: the topic has no column ${JSON.stringify(name)}`);
    const compare = comparisonOf(column.type);
    const condition = spec[name]!;
    const ops: Array<[string, unknown]> = [];
    for (const op of Object.keys(condition).sort() as Array<keyof ColumnCondition>) {
      const value = condition[op];
      if (op === 'in') {
        if ((value as FilterValue[]).length > MAX_IN_VALUES) {
          throw new RowcastError('LIMIT_EXCEEDED', `filter.${name}.in: at most ${MAX_IN_VALUES} values`);
        }
        const values = (value as FilterValue[]).map((v) => normalize(v, compare, `filter.${name}.in`));
        ops.push([op, [...new Set(values.map((v) => JSON.stringify(v)))].sort()]);
        tests.push(inTest(name, values, compare));
      } else {
        const normalized = normalize(value as FilterValue, compare, `filter.${name}.${op}`);
        ops.push([op, normalized]);
        tests.push(opTest(name, op, normalized, compare));
      }
    }
    canonical.push([name, ops]);
  }
  const test =
    tests.length === 1
      ? tests[0]!
      : (row: Row) => {
          for (let i = 0; i < tests.length; i++) if (!tests[i]!(row)) return false;
          return true;
        };
  return { key: JSON.stringify(canonical), test };
}

function comparisonOf(type: string): Compare {
  if (/^(smallint|integer|bigint|real|double precision|numeric|oid)/.test(type)) return 'number';
  if (/^(timestamp|date)/.test(type)) return 'time';
  if (type === 'boolean') return 'bool';
  return 'text';
}

/** A filter value in the form rows are compared in (numbers, epoch ms, booleans, strings). */
function normalize(value: FilterValue, compare: Compare, where: string): FilterValue {
  if (value === null) return null;
  switch (compare) {
    case 'number': {
      const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
      if (!Number.isFinite(n)) throw new RowcastError('INVALID_ATTRIBUTES', `${where}: expected a number`);
      return n;
    }
    case 'time': {
      const t = typeof value === 'string' ? Date.parse(value) : NaN;
      if (Number.isNaN(t)) throw new RowcastError('INVALID_ATTRIBUTES', `${where}: expected an ISO-8601 date or time`);
      return t;
    }
    case 'bool':
      if (typeof value !== 'boolean') throw new RowcastError('INVALID_ATTRIBUTES', `${where}: expected true or false`);
      return value;
    case 'text':
      return typeof value === 'string' ? value : String(value);
  }
}

/** A row's value in the same form, or null. */
function rowValue(value: unknown, compare: Compare): FilterValue {
  if (value === null || value === undefined) return null;
  switch (compare) {
    case 'number':
      return typeof value === 'number' ? value : Number(value);
    case 'time':
      return Date.parse(value as string);
    case 'bool':
      return value as boolean;
    case 'text':
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

function opTest(column: string, op: Exclude<keyof ColumnCondition, 'in'>, target: FilterValue, compare: Compare): (row: Row) => boolean {
  if (target === null) {
    if (op === 'eq') return (row) => row[column] === null || row[column] === undefined;
    if (op === 'neq') return (row) => row[column] !== null && row[column] !== undefined;
    return () => false;
  }
  switch (op) {
    case 'eq':
      return (row) => rowValue(row[column], compare) === target;
    case 'neq':
      return (row) => {
        const v = rowValue(row[column], compare);
        return v !== null && v !== target;
      };
    case 'lt':
      return (row) => {
        const v = rowValue(row[column], compare);
        return v !== null && v < target;
      };
    case 'lte':
      return (row) => {
        const v = rowValue(row[column], compare);
        return v !== null && v <= target;
      };
    case 'gt':
      return (row) => {
        const v = rowValue(row[column], compare);
        return v !== null && v > target;
      };
    case 'gte':
      return (row) => {
        const v = rowValue(row[column], compare);
        return v !== null && v >= target;
      };
  }
}

function inTest(column: string, values: FilterValue[], compare: Compare): (row: Row) => boolean {
  const set = new Set(values.filter((v) => v !== null));
  return (row) => {
    const v = rowValue(row[column], compare);
    return v !== null && set.has(v);
  };
}
