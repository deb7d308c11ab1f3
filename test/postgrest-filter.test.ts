import test from 'ava';
import fc from 'fast-check';
import { postgrestFilter } from '../src/doors/supabase/postgrest-filter.js';

const types: Record<string, string> = { id: 'integer', status: 'text', done: 'boolean', name: 'text' };
const parse = (text: string) => postgrestFilter(text, (column) => types[column]);

test('supabase filters: each operator, not., is, in lists, AND-lists and quoted values become rowcast filters', (t) => {
  t.deepEqual(parse('id=eq.1'), { ok: true, filter: { id: { eq: '1' } } });
  t.deepEqual(parse('status=neq.open,id=gte.10,id=lt.20'), { ok: true, filter: { status: { neq: 'open' }, id: { gte: '10', lt: '20' } } });
  t.deepEqual(parse('id=in.(1,2,3)'), { ok: true, filter: { id: { in: ['1', '2', '3'] } } });
  t.deepEqual(parse('name=in.("a,b","c\\"d",e)'), { ok: true, filter: { name: { in: ['a,b', 'c"d', 'e'] } } });
  t.deepEqual(parse('name=eq."x,(y)"'), { ok: true, filter: { name: { eq: 'x,(y)' } } });
  t.deepEqual(parse('status=is.null'), { ok: true, filter: { status: { eq: null } } });
  t.deepEqual(parse('status=not.is.null'), { ok: true, filter: { status: { neq: null } } });
  t.deepEqual(parse('done=eq.true'), { ok: true, filter: { done: { eq: true } } });
  t.deepEqual(parse('done=is.false'), { ok: true, filter: { done: { eq: false } } });
  t.deepEqual(parse('id=not.lt.5'), { ok: true, filter: { id: { gte: '5' } } });
  t.deepEqual(parse('id=not.eq.5'), { ok: true, filter: { id: { neq: '5' } } });
  t.deepEqual(parse('id=not.gte.5,status=not.neq.x'), { ok: true, filter: { id: { lt: '5' }, status: { eq: 'x' } } });
});

test('supabase filters rowcast cannot express are refused, naming the operator or the problem', (t) => {
  const reason = (text: string) => {
    const result = parse(text);
    return result.ok ? null : result.reason;
  };
  t.regex(reason('name=like.*x*')!, /operator like is not supported/);
  t.regex(reason('name=ilike.*x*')!, /operator ilike is not supported/);
  t.regex(reason('id=not.in.(1,2)')!, /operator not\.in is not supported/);
  t.regex(reason('id=eq.1,id=eq.2')!, /two eq conditions on id/);
  t.regex(reason('id')!, /not column=operator\.value/);
  t.regex(reason('id=eq')!, /no operator\.value/);
  t.regex(reason('id=in.1,2')!, /in takes a list/);
  t.regex(reason('name=eq."open')!, /unbalanced/);
  t.regex(reason('status=is.maybe')!, /is takes null, true or false/);
  t.is(reason('id=eq.1,id=eq.1'), null); // the same condition twice is just that condition
});

test('any text quoted as PostgREST quotes it comes back as it was, alone or in a list (property)', (t) => {
  const quote = (value: string) => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  fc.assert(
    fc.property(fc.string(), fc.array(fc.string(), { minLength: 1, maxLength: 5 }), (value, list) => {
      t.deepEqual(parse(`name=eq.${quote(value)}`), { ok: true, filter: { name: { eq: value } } });
      t.deepEqual(parse(`name=in.(${list.map(quote).join(',')}),id=gt.1`), { ok: true, filter: { name: { in: list }, id: { gt: '1' } } });
    }),
  );
});
