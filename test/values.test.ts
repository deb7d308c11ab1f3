import test from 'ava';
import { attributesOf } from './helpers/live-client.js';
import { withServer } from './helpers/with-server.js';

const TYPES = `
  CREATE TYPE mood AS ENUM ('happy', 'sad');
  CREATE TABLE vals (
    id int PRIMARY KEY,
    i2 int2, i4 int4, i8_small int8, i8_big int8, f4 float4, f8 float8, f8_nan float8,
    num numeric, num_big numeric, b bool, t text, vc varchar(10), u uuid,
    j json, jb jsonb, ts timestamp, tstz timestamptz, d date, tm time, iv interval,
    by bytea, i4_arr int4[], i8_arr int8[], t_arr text[], nested int4[][], jb_arr jsonb[], tstz_arr timestamptz[],
    m mood, nul text
  );
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('vals', 'public');`;

test('values are converted as DESIGN.md §3 says', withServer, { sql: TYPES }, async (t, { db, connect }) => {
  const client = await connect({ sub: '1' });
  await client.subscribe('vals');
  await db.query(`
    INSERT INTO vals VALUES (
      1,
      -32768, 2147483647, 9007199254740991, 9223372036854775807, 1.5, 3.141592653589793, 'NaN',
      12345678901234567890.123456789, 0.1, true, 'tëxt "quoted"', 'short', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '{"a": [1, 2, {"b": null}]}', '{"nested": {"deep": true}, "n": 1.5}',
      '2026-11-22 10:00:00.123456', '2026-11-22 12:00:00.5+02', '2026-11-22', '10:11:12', '1 day 2 hours',
      '\\x68656c6c6f00ff', '{1,2,NULL,4}', '{9223372036854775807,1}', '{"a b","c,d",NULL,"NULL"}',
      '{{1,2},{3,4}}', ARRAY['{"x":1}'::jsonb, '[true]'::jsonb], ARRAY['2026-01-01 00:00:00+00'::timestamptz],
      'happy', NULL
    )`);
  const [event] = await client.events(1);
  t.deepEqual(event!.data.attributes, {
    id: 1,
    i2: -32768,
    i4: 2147483647,
    i8_small: 9007199254740991,
    i8_big: '9223372036854775807',
    f4: 1.5,
    f8: 3.141592653589793,
    f8_nan: 'NaN',
    num: '12345678901234567890.123456789',
    num_big: '0.1',
    b: true,
    t: 'tëxt "quoted"',
    vc: 'short',
    u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    j: { a: [1, 2, { b: null }] },
    jb: { nested: { deep: true }, n: 1.5 },
    ts: '2026-11-22T10:00:00.123456',
    tstz: '2026-11-22T10:00:00.5Z',
    d: '2026-11-22',
    tm: '10:11:12',
    iv: 'P1DT2H',
    by: Buffer.from([0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00, 0xff]).toString('base64'),
    i4_arr: [1, 2, null, 4],
    i8_arr: ['9223372036854775807', 1],
    t_arr: ['a b', 'c,d', null, 'NULL'],
    nested: [
      [1, 2],
      [3, 4],
    ],
    jb_arr: [{ x: 1 }, [true]],
    tstz_arr: ['2026-01-01T00:00:00Z'],
    m: 'happy',
    nul: null,
  });
});

test('timestamptz values are ISO-8601 in UTC whatever the writer\'s time zone', withServer, { sql: TYPES }, async (t, { db, connect }) => {
  const client = await connect({ sub: '1' });
  await client.subscribe('vals');
  const writer = await db.client();
  try {
    await writer.query(`SET TimeZone = 'America/New_York'; SET DateStyle = 'SQL, DMY'`);
    await writer.query(`INSERT INTO vals (id, tstz, ts, d) VALUES (2, '2026-07-01 08:00:00-04', '2026-07-01 08:00:00', '2026-07-01')`);
  } finally {
    await writer.end();
  }
  const [event] = await client.events(1);
  t.like(event!.data.attributes, { tstz: '2026-07-01T12:00:00Z', ts: '2026-07-01T08:00:00', d: '2026-07-01' });
  t.is(new Date(String(attributesOf(event!)['tstz'])).getTime(), Date.UTC(2026, 6, 1, 12));
});

test(
  'an update that leaves a TOAST value untouched never sends a wrong value',
  withServer,
  {
    sql: `CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
          ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
          CREATE TABLE docs_default (id int PRIMARY KEY, title text, body text);
          ALTER TABLE docs_default ALTER COLUMN body SET STORAGE EXTERNAL;
          INSERT INTO rowcast.table_policies (table_name, read) VALUES ('docs', 'public');`,
  },
  async (t, { db, connect }) => {
    const body = 'x'.repeat(100_000) + 'end';
    // `docs` has a policy, so rowcast made its identity FULL: the old row supplies the value.
    const admin = await connect({ sub: '1', role: 'admin' });
    await admin.subscribe('docs,docs_default');
    await db.query(`INSERT INTO docs VALUES (1, 'a', $1)`, [body]);
    await db.query(`UPDATE docs SET title = 'b'`);
    const [, full] = await admin.events(2);
    t.is(attributesOf(full!)['title'], 'b');
    t.is(attributesOf(full!)['body'], body);
    t.is(full!.data.unchanged, undefined);

    // `docs_default` has default identity: the column is left out and listed.
    await db.query(`INSERT INTO docs_default VALUES (1, 'a', $1)`, [body]);
    await db.query(`UPDATE docs_default SET title = 'b'`);
    const [, partial] = await admin.events(2);
    t.is(attributesOf(partial!)['title'], 'b');
    t.false('body' in attributesOf(partial!));
    t.deepEqual(partial!.data.unchanged, ['body']);
  },
);
