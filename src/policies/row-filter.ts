import { RowcastError } from '../errors.js';
import type { Row } from '../replication/transaction.js';
import type { ColumnCondition, FilterSpec, FilterValue, TopicColumn } from '../protocol/index.js';

export type { FilterSpec } from '../protocol/index.js';

/** A filter ready to run on rows, with the canonical key that identifies it. */
export interface RowFilter {
  /** Equal for filters that select the same rows, whatever the order they were written in. */
  readonly key: string;
  readonly test: (row: Row) => boolean;
}

type Compare = 'number' | 'timestamptz' | 'timestamp' | 'date' | 'bool' | 'text';

/**
 * Bounds on one filter, so that what a client sends costs a bounded amount
 * to compile, to keep, and to run on every event of its topic.
 */
export interface FilterLimits {
  /** Values in the whole filter: each comparison counts one, each `in` element one (`MAX_FILTER_VALUES`). */
  readonly maxValues: number;
  /** Characters of one string value (`MAX_FILTER_VALUE_LENGTH`). */
  readonly maxValueLength: number;
  /** Bytes of the canonical key, which identifies the filter's group (`MAX_FILTER_KEY_BYTES`). */
  readonly maxKeyBytes: number;
}

/** The configuration's defaults. */
export const DEFAULT_FILTER_LIMITS: FilterLimits = Object.freeze({ maxValues: 100, maxValueLength: 256, maxKeyBytes: 4096 });

/** `in` lists longer than this are looked up in a set rather than scanned. */
const SCAN_UP_TO = 8;

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
 * Everything it does is linear in the size of the filter, which `limits`
 * bounds (values, value length, key size).
 *
 * @throws RowcastError `INVALID_ATTRIBUTES` for an unknown column or a value
 * that cannot be compared with the column; `LIMIT_EXCEEDED` past `limits`.
 *
 * @example
 * compileRowFilter({ amount: { gte: 100 } }, columns).test({ amount: '120.50' }) // true
 */
export function compileRowFilter(spec: FilterSpec, columns: readonly TopicColumn[], limits: FilterLimits = DEFAULT_FILTER_LIMITS): RowFilter {
  checkSize(spec, limits);
  const tests: Array<(row: Row) => boolean> = [];
  const canonical: Array<[string, Array<[string, unknown]>]> = [];
  for (const name of Object.keys(spec).sort()) {
    const column = columns.find((c) => c.name === name);
    if (!column) throw new RowcastError('INVALID_ATTRIBUTES', `filter.${name}: the topic has no column ${JSON.stringify(name)}`);
    const compare = comparisonOf(column.type, `filter.${name}`);
    const condition = spec[name]!;
    const ops: Array<[string, unknown]> = [];
    const checks: Check[] = [];
    for (const op of Object.keys(condition).sort() as Array<keyof ColumnCondition>) {
      const value = condition[op];
      if (op === 'in') {
        const values = (value as FilterValue[]).map((v) => normalize(v, compare, `filter.${name}.in`));
        ops.push([op, [...new Set(values.map((v) => JSON.stringify(v === null ? null : equalityKey(v))))].sort()]);
        checks.push(inCheck(values, compare));
      } else {
        const normalized = normalize(value as FilterValue, compare, `filter.${name}.${op}`);
        ops.push([op, typeof normalized === 'number' ? decimalOf(normalized) : normalized]);
        checks.push(opCheck(op, normalized, compare));
      }
    }
    canonical.push([name, ops]);
    tests.push(columnTest(name, compare, checks));
  }
  const key = JSON.stringify(canonical);
  if (Buffer.byteLength(key) > limits.maxKeyBytes) {
    throw new RowcastError('LIMIT_EXCEEDED', `filter: its canonical form is ${Buffer.byteLength(key)} bytes; at most ${limits.maxKeyBytes} (MAX_FILTER_KEY_BYTES)`);
  }
  const test =
    tests.length === 1
      ? tests[0]!
      : (row: Row) => {
          for (let i = 0; i < tests.length; i++) if (!tests[i]!(row)) return false;
          return true;
        };
  return { key, test };
}

/**
 * One condition on a column's value, already in comparable form (`null`
 * when the column is NULL). Cheap checks that reject most rows (equality,
 * `in`) run first.
 */
interface Check {
  readonly cost: number;
  readonly test: (value: Comparable | null) => boolean;
}

/** Every condition on one column, AND-ed: the row's value is put in comparable form once, not once per condition. */
function columnTest(column: string, compare: Compare, checks: Check[]): (row: Row) => boolean {
  const ordered = [...checks].sort((a, b) => a.cost - b.cost).map((check) => check.test);
  if (ordered.length === 1) {
    const only = ordered[0]!;
    return (row) => only(rowValue(row[column], compare));
  }
  return (row) => {
    const value = rowValue(row[column], compare);
    for (let i = 0; i < ordered.length; i++) if (!ordered[i]!(value)) return false;
    return true;
  };
}

/** Refuses a filter with more values, or longer ones, than `limits` allow, before any of them is looked at closely. */
function checkSize(spec: FilterSpec, limits: FilterLimits): void {
  let values = 0;
  for (const name of Object.keys(spec)) {
    const condition = spec[name]!;
    for (const op of Object.keys(condition) as Array<keyof ColumnCondition>) {
      const value = condition[op];
      const list = op === 'in' ? (value as readonly FilterValue[]) : [value as FilterValue];
      values += list.length;
      if (values > limits.maxValues) {
        throw new RowcastError('LIMIT_EXCEEDED', `filter: at most ${limits.maxValues} values in all (MAX_FILTER_VALUES)`);
      }
      for (const item of list) {
        if (typeof item === 'string' && item.length > limits.maxValueLength) {
          throw new RowcastError('LIMIT_EXCEEDED', `filter.${name}.${op}: a value of ${item.length} characters; at most ${limits.maxValueLength} (MAX_FILTER_VALUE_LENGTH)`);
        }
      }
    }
  }
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

/**
 * A number stays a number while that is exact (a safe integer, or at most
 * 15 significant digits); longer decimals stay canonical strings. Linear in
 * the length of `value` (no backtracking regular expression).
 */
function numeric(value: number | string): number | string {
  if (typeof value === 'number') return value;
  const n = Number(value);
  if (Number.isSafeInteger(n)) return n;
  const canonical = canonicalDecimal(value);
  if (Number.isFinite(n) && significantDigits(canonical) <= 15) return n;
  return canonical;
}

/** Digits of a canonical decimal, sign and point left out (`-12.5` → 3). */
function significantDigits(canonical: string): number {
  let digits = canonical.length;
  if (canonical.startsWith('-')) digits--;
  if (canonical.includes('.')) digits--;
  // A canonical `0.000123` has 3 significant digits, not 7.
  if (canonical.startsWith('0.') || canonical.startsWith('-0.')) {
    let i = canonical.indexOf('.') + 1;
    while (canonical[i] === '0') i++;
    return canonical.length - i;
  }
  return digits;
}

/** `-007.50` → `-7.5`, in one pass over the text. */
function canonicalDecimal(text: string): string {
  const negative = text.startsWith('-');
  const start = negative ? 1 : 0;
  const point = text.indexOf('.');
  const intEnd = point === -1 ? text.length : point;
  let intStart = start;
  while (intStart < intEnd - 1 && text[intStart] === '0') intStart++;
  let fracEnd = text.length;
  if (point !== -1) while (fracEnd > point + 1 && text[fracEnd - 1] === '0') fracEnd--;
  const int = intStart < intEnd ? text.slice(intStart, intEnd) : '0';
  const frac = point === -1 ? '' : text.slice(point + 1, fracEnd);
  const body = frac ? `${int}.${frac}` : int;
  return negative && body !== '0' ? `-${body}` : body;
}

/**
 * Orders two comparable values of a column: numbers (or exact decimal
 * strings) by value in a number column, everything else by code points (a
 * text column holding `10` and `9` orders them as text, as Postgres does).
 */
function compareValues(a: Comparable, b: Comparable, compare: Compare): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (compare === 'number') {
    return compareDecimal(typeof a === 'number' ? decimalOf(a) : (a as string), typeof b === 'number' ? decimalOf(b) : (b as string));
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A comparable value as a string that two values share exactly when they
 * are equal (numbers in canonical decimal form): for `in` lookups in a set.
 */
function equalityKey(value: Comparable): string {
  return typeof value === 'number' ? decimalOf(value) : typeof value === 'string' ? value : String(value);
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

function opCheck(op: Exclude<keyof ColumnCondition, 'in'>, target: Comparable | null, compare: Compare): Check {
  if (target === null) {
    if (op === 'eq') return { cost: 0, test: (value) => value === null };
    if (op === 'neq') return { cost: 0, test: (value) => value !== null };
    return { cost: 0, test: () => false };
  }
  const accept = {
    eq: (c: number) => c === 0,
    neq: (c: number) => c !== 0,
    lt: (c: number) => c < 0,
    lte: (c: number) => c <= 0,
    gt: (c: number) => c > 0,
    gte: (c: number) => c >= 0,
  }[op];
  return { cost: op === 'eq' ? 1 : op === 'neq' ? 3 : 2, test: (value) => value !== null && accept(compareValues(value, target, compare)) };
}

/** `in`: a short list is scanned; a longer one is a set of equality keys, so its cost per row does not grow with it. */
function inCheck(values: Array<Comparable | null>, compare: Compare): Check {
  const targets = values.filter((v): v is Comparable => v !== null);
  if (targets.length > SCAN_UP_TO) {
    const keys = new Set(targets.map(equalityKey));
    return { cost: 1, test: (value) => value !== null && keys.has(equalityKey(value)) };
  }
  return {
    cost: 1,
    test: (value) => {
      if (value === null) return false;
      for (let i = 0; i < targets.length; i++) if (compareValues(value, targets[i]!, compare) === 0) return true;
      return false;
    },
  };
}
