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

type Compare = 'number' | 'timestamptz' | 'timestamp' | 'date' | 'bool' | 'text';

/** The most values an `in` condition may list. */
export const MAX_IN_VALUES = 100;

/**
 * Compiles a filter against a topic's columns, with SQL's meaning: `eq`
 * (`=`), `neq` (`<>`), `lt`, `lte`, `gt`, `gte`, `in`; a NULL column value
 * matches no comparison, except that `eq: null` means `IS NULL` and
 * `neq: null` means `IS NOT NULL`. Numbers compare by exact decimal value
 * (also `int8` and `numeric`, which travel as strings), `timestamptz` as
 * instants to the microsecond (a filter value needs a zone), `timestamp` and
 * `date` as written, text in code-point order (not the column's collation;
 * `char(n)` padding counts). Array columns cannot be filtered.
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
    const compare = comparisonOf(column.type, `filter.${name}`);
    const condition = spec[name]!;
    const ops: Array<[string, unknown]> = [];
    for (const op of Object.keys(condition).sort() as Array<keyof ColumnCondition>) {
      const value = condition[op];
      if (op === 'in') {
        if ((value as FilterValue[]).length > MAX_IN_VALUES) {
          throw new RowcastError('LIMIT_EXCEEDED', `filter.${name}.in: at most ${MAX_IN_VALUES} values`);
        }
        const values = (value as FilterValue[]).map((v) => normalize(v, compare, `filter.${name}.in`));
        ops.push([op, [...new Set(values.map((v) => JSON.stringify(typeof v === 'number' ? decimalOf(v) : v)))].sort()]);
        tests.push(inTest(name, values, compare));
      } else {
        const normalized = normalize(value as FilterValue, compare, `filter.${name}.${op}`);
        ops.push([op, typeof normalized === 'number' ? decimalOf(normalized) : normalized]);
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

function comparisonOf(type: string, where: string): Compare {
  if (type.endsWith('[]')) throw new RowcastError('INVALID_ATTRIBUTES', `${where}: array columns cannot be filtered`);
  if (/^(smallint|integer|bigint|real|double precision|numeric|oid)\b/.test(type)) return 'number';
  if (/^timestamp\b.*with time zone$/.test(type)) return 'timestamptz';
  if (/^timestamp\b/.test(type)) return 'timestamp';
  if (type === 'date') return 'date';
  if (type === 'boolean') return 'bool';
  return 'text';
}

/**
 * Values are compared in a form where JavaScript's `<` and `===` agree with
 * Postgres: numbers as numbers while exact, else as canonical decimal strings
 * (see {@link compareValues}); timestamps as fixed-width ISO strings with
 * microseconds; dates as `YYYY-MM-DD`.
 */
type Comparable = number | string | boolean;

const DECIMAL = /^-?\d+(\.\d+)?$/;
const ISO_UTC = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/;
const NAIVE = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?$/;
const DATE = /^\d{4}-\d\d-\d\d$/;

/** A filter value in comparable form; throws when it cannot be compared with the column. */
function normalize(value: FilterValue, compare: Compare, where: string): Comparable | null {
  if (value === null) return null;
  const bad = (expected: string) => new RowcastError('INVALID_ATTRIBUTES', `${where}: expected ${expected}`);
  switch (compare) {
    case 'number': {
      if (typeof value === 'number' && Number.isFinite(value)) return numeric(value);
      if (typeof value === 'string' && DECIMAL.test(value.trim())) return numeric(value.trim());
      throw bad('a number');
    }
    case 'timestamptz': {
      if (typeof value !== 'string') throw bad('an ISO-8601 time with a zone');
      const exact = ISO_UTC.exec(value);
      if (exact) return `${exact[1]}.${(exact[2] ?? '').padEnd(6, '0')}Z`;
      const ms = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? Date.parse(value) : NaN;
      if (Number.isNaN(ms)) throw bad('an ISO-8601 time with a zone, e.g. 2026-11-22T10:00:00Z');
      return `${new Date(ms).toISOString().slice(0, 23)}000Z`;
    }
    case 'timestamp': {
      const naive = typeof value === 'string' ? NAIVE.exec(value) : null;
      if (!naive) throw bad('an ISO-8601 date and time without a zone, e.g. 2026-11-22T10:00:00');
      return `${naive[1]}T${naive[2]}:${naive[3] ?? '00'}.${(naive[4] ?? '').padEnd(6, '0')}`;
    }
    case 'date':
      if (typeof value !== 'string' || !DATE.test(value)) throw bad('a date, e.g. 2026-11-22');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw bad('true or false');
      return value;
    case 'text':
      return typeof value === 'string' ? value : String(value);
  }
}

/** A row's value in the same form, or null. */
function rowValue(value: unknown, compare: Compare): Comparable | null {
  if (value === null || value === undefined) return null;
  switch (compare) {
    case 'number':
      return typeof value === 'number' ? value : numeric(value as string);
    case 'timestamptz': {
      const exact = ISO_UTC.exec(value as string);
      return exact ? `${exact[1]}.${(exact[2] ?? '').padEnd(6, '0')}Z` : (value as string);
    }
    case 'timestamp': {
      const naive = NAIVE.exec(value as string);
      return naive ? `${naive[1]}T${naive[2]}:${naive[3] ?? '00'}.${(naive[4] ?? '').padEnd(6, '0')}` : (value as string);
    }
    case 'date':
    case 'bool':
      return value as string | boolean;
    case 'text':
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/** A number stays a number while that is exact; longer decimals stay canonical strings. */
function numeric(value: number | string): number | string {
  if (typeof value === 'number') return value;
  const n = Number(value);
  if (Number.isSafeInteger(n) || (Number.isFinite(n) && value.replace(/^-|\.|0+$/g, '').length <= 15)) return n;
  return canonicalDecimal(value);
}

/** `-007.50` → `-7.5`. */
function canonicalDecimal(text: string): string {
  const negative = text.startsWith('-');
  let [int = '0', frac = ''] = (negative ? text.slice(1) : text).split('.');
  int = int.replace(/^0+(?=\d)/, '');
  frac = frac.replace(/0+$/, '');
  const body = frac ? `${int}.${frac}` : int;
  return negative && body !== '0' ? `-${body}` : body;
}

/**
 * Orders two comparable values: numbers (or exact decimal strings) by value,
 * everything else by code points.
 */
function compareValues(a: Comparable, b: Comparable): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if ((typeof a === 'number' || typeof b === 'number') || (isDecimal(a) && isDecimal(b))) {
    return compareDecimal(typeof a === 'number' ? decimalOf(a) : (a as string), typeof b === 'number' ? decimalOf(b) : (b as string));
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function isDecimal(value: Comparable): value is string {
  return typeof value === 'string' && DECIMAL.test(value);
}

/** The decimal a JavaScript number stands for, as written (`0.1`, not its binary expansion). */
function decimalOf(n: number): string {
  const text = String(n);
  if (!/e/i.test(text)) return canonicalDecimal(text);
  return Number.isInteger(n) ? BigInt(n).toString() : canonicalDecimal(n.toFixed(20));
}

function compareDecimal(a: string, b: string): number {
  const signA = a.startsWith('-') ? -1 : 1;
  const signB = b.startsWith('-') ? -1 : 1;
  if (signA !== signB) return signA - signB;
  const [intA = '', fracA = ''] = (signA < 0 ? a.slice(1) : a).split('.');
  const [intB = '', fracB = ''] = (signB < 0 ? b.slice(1) : b).split('.');
  let order = intA.length - intB.length;
  if (order === 0) order = intA < intB ? -1 : intA > intB ? 1 : 0;
  if (order === 0) {
    const width = Math.max(fracA.length, fracB.length);
    const fa = fracA.padEnd(width, '0');
    const fb = fracB.padEnd(width, '0');
    order = fa < fb ? -1 : fa > fb ? 1 : 0;
  }
  return order * signA;
}

function opTest(column: string, op: Exclude<keyof ColumnCondition, 'in'>, target: Comparable | null, compare: Compare): (row: Row) => boolean {
  if (target === null) {
    if (op === 'eq') return (row) => row[column] === null || row[column] === undefined;
    if (op === 'neq') return (row) => row[column] !== null && row[column] !== undefined;
    return () => false;
  }
  const accept = {
    eq: (c: number) => c === 0,
    neq: (c: number) => c !== 0,
    lt: (c: number) => c < 0,
    lte: (c: number) => c <= 0,
    gt: (c: number) => c > 0,
    gte: (c: number) => c >= 0,
  }[op];
  return (row) => {
    const v = rowValue(row[column], compare);
    return v !== null && accept(compareValues(v, target));
  };
}

function inTest(column: string, values: Array<Comparable | null>, compare: Compare): (row: Row) => boolean {
  const targets = values.filter((v): v is Comparable => v !== null);
  return (row) => {
    const v = rowValue(row[column], compare);
    if (v === null) return false;
    for (let i = 0; i < targets.length; i++) if (compareValues(v, targets[i]!) === 0) return true;
    return false;
  };
}
