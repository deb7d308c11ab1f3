import test from 'ava';
import { compileRowFilter, type FilterSpec } from '../src/policies/row-filter.js';
import type { TopicColumn } from '../src/protocol/index.js';
import { RowcastError } from '../src/errors.js';

const columns: TopicColumn[] = [
  { name: 'n', type: 'integer' },
  { name: 'big', type: 'bigint' },
  { name: 'amount', type: 'numeric(30,10)' },
  { name: 'at', type: 'timestamp with time zone' },
  { name: 'local', type: 'timestamp without time zone' },
  { name: 'day', type: 'date' },
  { name: 'paid', type: 'boolean' },
  { name: 'status', type: 'text' },
  { name: 'tags', type: 'text[]' },
];

function matches(spec: FilterSpec, row: Record<string, unknown>): boolean {
  return compileRowFilter(spec, columns).test(row);
}

test('NULL matches no comparison; eq null is IS NULL and neq null is IS NOT NULL', (t) => {
  for (const op of ['eq', 'neq', 'lt', 'lte', 'gt', 'gte'] as const) t.false(matches({ n: { [op]: 1 } }, { n: null }), op);
  t.false(matches({ n: { in: [1, null] } }, { n: null }));
  t.true(matches({ n: { eq: null } }, { n: null }));
  t.false(matches({ n: { eq: null } }, { n: 0 }));
  t.true(matches({ n: { neq: null } }, { n: 0 }));
});

test('int8 and numeric compare by exact decimal value, beyond 2^53 too', (t) => {
  t.true(matches({ big: { eq: '9223372036854775807' } }, { big: '9223372036854775807' }));
  t.false(matches({ big: { eq: '9223372036854775806' } }, { big: '9223372036854775807' }));
  t.true(matches({ big: { gt: 9007199254740991 } }, { big: '9007199254740993' }));
  t.true(matches({ amount: { eq: 19.9 } }, { amount: '19.9000000000' }));
  t.true(matches({ amount: { eq: '0.1' } }, { amount: '0.1000000000' }));
  t.true(matches({ amount: { lt: '12345678901234567890.0000000002' } }, { amount: '12345678901234567890.0000000001' }));
  t.false(matches({ amount: { gte: 100 } }, { amount: '-100.5' }));
  t.true(matches({ amount: { in: [1, '2.50', 3] } }, { amount: '2.5000000000' }));
});

test('timestamptz compares instants to the microsecond; the filter value needs a zone', (t) => {
  t.true(matches({ at: { gt: '2026-11-22T10:00:00.123Z' } }, { at: '2026-11-22T10:00:00.123456Z' }));
  t.true(matches({ at: { eq: '2026-11-22T12:00:00+02:00' } }, { at: '2026-11-22T10:00:00Z' }));
  t.true(matches({ at: { lt: '2026-11-22T10:00:00.5Z' } }, { at: '2026-11-22T10:00:00.499999Z' }));
  t.throws(() => compileRowFilter({ at: { gt: '2026-11-22T10:00:00' } }, columns), { instanceOf: RowcastError });
  t.throws(() => compileRowFilter({ at: { gt: '1' } }, columns), { instanceOf: RowcastError });
});

test('timestamp without zone and date compare as written', (t) => {
  t.true(matches({ local: { gte: '2026-11-22 10:00' } }, { local: '2026-11-22T10:00:00' }));
  t.false(matches({ local: { gt: '2026-11-22T10:00:00.000001' } }, { local: '2026-11-22T10:00:00' }));
  t.true(matches({ day: { lt: '2026-11-23' } }, { day: '2026-11-22' }));
  t.throws(() => compileRowFilter({ day: { lt: 'tomorrow' } }, columns), { instanceOf: RowcastError });
});

test('booleans, text, and what cannot be filtered', (t) => {
  t.true(matches({ paid: { eq: true } }, { paid: true }));
  t.false(matches({ paid: { eq: true } }, { paid: false }));
  t.throws(() => compileRowFilter({ paid: { eq: 'yes' } }, columns), { instanceOf: RowcastError });
  t.true(matches({ status: { in: ['paid', 'sent'] } }, { status: 'sent' }));
  t.true(matches({ status: { lt: 'b' } }, { status: 'a' }));
  t.throws(() => compileRowFilter({ tags: { eq: 'x' } }, columns), { instanceOf: RowcastError });
  t.throws(() => compileRowFilter({ n: { eq: '' } }, columns), { instanceOf: RowcastError });
  t.throws(() => compileRowFilter({ nope: { eq: 1 } }, columns), { instanceOf: RowcastError });
  const tooMany = t.throws(() => compileRowFilter({ n: { in: Array.from({ length: 101 }, (_, i) => i) } }, columns));
  t.is((tooMany as RowcastError).code, 'LIMIT_EXCEEDED');
});

test('filters that select the same rows share a key, whatever the spelling', (t) => {
  const a = compileRowFilter({ status: { eq: 'paid' }, n: { gte: 100, lt: 200 } }, columns);
  const b = compileRowFilter({ n: { lt: '200', gte: 100.0 }, status: { eq: 'paid' } }, columns);
  const c = compileRowFilter({ n: { in: [3, 1, 2, 1] } }, columns);
  const d = compileRowFilter({ n: { in: [1, 2, 3] } }, columns);
  t.is(a.key, b.key);
  t.is(c.key, d.key);
  t.not(a.key, c.key);
});
