import type { ColumnCondition, FilterSpec, FilterValue } from '../../protocol/index.js';

/**
 * The `filter` of a Supabase `postgres_changes` binding, PostgREST style,
 * as rowcast's filter (docs/protocol.md, "Filters and events"):
 * `column=op.value` conditions joined by top-level commas (AND), ops `eq neq
 * lt lte gt gte in is`, a `not.` prefix, `in.(a,b,"c,d")` lists and
 * double-quoted values with `\` escapes. `like`, `ilike` and `not.in` have
 * no rowcast equivalent: they are refused, naming the operator.
 *
 * Values stay text; `typeOf` gives a column's SQL type (as the topic lists
 * it) so that `true`/`false` become booleans on boolean columns. Unknown
 * columns are left to the core's check.
 *
 * @example
 * postgrestFilter('status=eq.paid,amount=gte.100', () => 'text') // { ok: true, filter: { status: { eq: 'paid' }, amount: { gte: '100' } } }
 */
export function postgrestFilter(text: string, typeOf: (column: string) => string | undefined): { ok: true; filter: FilterSpec } | { ok: false; reason: string } {
  const filter: Record<string, Record<string, unknown>> = {};
  const parts = splitTop(text, ',');
  if (parts === null) return { ok: false, reason: `unbalanced quotes or parentheses in ${JSON.stringify(text)}` };
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `${JSON.stringify(part)} is not column=operator.value` };
    const column = part.slice(0, eq).trim();
    let rest = part.slice(eq + 1);
    let negated = false;
    if (rest.startsWith('not.')) {
      negated = true;
      rest = rest.slice(4);
    }
    const dot = rest.indexOf('.');
    if (dot <= 0) return { ok: false, reason: `${JSON.stringify(part)} has no operator.value` };
    const op = rest.slice(0, dot);
    const raw = rest.slice(dot + 1);
    const condition = translate(negated ? `not.${op}` : op, raw, typeOf(column));
    if ('reason' in condition) return { ok: false, reason: condition.reason };
    const existing = (filter[column] ??= {});
    if (condition.op in existing && JSON.stringify(existing[condition.op]) !== JSON.stringify(condition.value)) {
      return { ok: false, reason: `two ${condition.op} conditions on ${column} cannot be expressed` };
    }
    existing[condition.op] = condition.value;
  }
  return { ok: true, filter: filter as FilterSpec };
}

const NEGATED: Readonly<Record<string, keyof ColumnCondition>> = { 'not.eq': 'neq', 'not.neq': 'eq', 'not.lt': 'gte', 'not.lte': 'gt', 'not.gt': 'lte', 'not.gte': 'lt' };
const PLAIN = new Set(['eq', 'neq', 'lt', 'lte', 'gt', 'gte']);

function translate(op: string, raw: string, type: string | undefined): { op: keyof ColumnCondition; value: unknown } | { reason: string } {
  if (PLAIN.has(op) || op in NEGATED) {
    const value = unquote(raw);
    if (value === null) return { reason: `bad quoting in ${JSON.stringify(raw)}` };
    return { op: PLAIN.has(op) ? (op as keyof ColumnCondition) : NEGATED[op]!, value: typed(value, type) };
  }
  if (op === 'in') {
    if (!raw.startsWith('(') || !raw.endsWith(')')) return { reason: `in takes a list: in.(a,b,c), not ${JSON.stringify(raw)}` };
    const items = splitTop(raw.slice(1, -1), ',');
    const values = items?.map(unquote);
    if (!values || values.some((v) => v === null)) return { reason: `bad list in ${JSON.stringify(raw)}` };
    return { op: 'in', value: (values as string[]).map((v) => typed(v, type)) };
  }
  if (op === 'is' || op === 'not.is') {
    const value = raw === 'null' ? null : raw === 'true' ? true : raw === 'false' ? false : undefined;
    if (value === undefined) return { reason: `is takes null, true or false, not ${JSON.stringify(raw)}` };
    return { op: op === 'is' ? 'eq' : 'neq', value };
  }
  return { reason: `the operator ${op} is not supported (eq, neq, lt, lte, gt, gte, in, is and not. of them but not.in)` };
}

/** A value as rowcast's filter takes it: `true`/`false` as booleans on a `boolean` column; text otherwise (numbers in text compare as numbers). */
function typed(value: string, type: string | undefined): FilterValue {
  return type === 'boolean' && (value === 'true' || value === 'false') ? value === 'true' : value;
}

/** `"a\"b"` → `a"b`; an unquoted value as it is; null for broken quoting. */
function unquote(raw: string): string | null {
  if (!raw.startsWith('"')) return raw;
  if (raw.length < 2 || !raw.endsWith('"')) return null;
  let out = '';
  for (let i = 1; i < raw.length - 1; i++) {
    const c = raw[i]!;
    if (c === '\\') {
      if (i + 1 >= raw.length - 1) return null;
      out += raw[++i];
    } else if (c === '"') return null;
    else out += c;
  }
  return out;
}

/** Splits on `separator` outside double quotes and parentheses; null when they do not balance. */
function splitTop(text: string, separator: string): string[] | null {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === ')') {
      if (--depth < 0) return null;
    } else if (c === separator && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted || depth !== 0) return null;
  parts.push(text.slice(start));
  return parts.filter((p) => p.trim() !== '');
}
