/**
 * Hidden columns (`rowcast.table_policies.hidden_columns`, docs/protocol.md):
 * never sent to non-admins. A property-style test over random policies and
 * writes reads every frame a non-admin receives — /live events, snapshot
 * pages, a replay with `since`, `get-topic`, and the raw frames of the real
 * `@supabase/realtime-js` client (`record`, `old_record`, `columns`) — and
 * finds neither a hidden column's name nor any value written to one, while
 * an admin's frames carry both.
 */
import test from 'ava';
import fc from 'fast-check';
import WebSocket from 'ws';
import { errorOf, isOk, type LiveClient, type ServerFrame } from './helpers/live-client.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { operatorHeaders } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer, type ServerFixture } from './helpers/with-server.js';

const COLUMNS = ['a', 'b', 'c'] as const;
type Column = (typeof COLUMNS)[number];

interface Case {
  read: 'public' | 'owner' | 'group';
  hidden: Column[];
  /** Rows before anyone subscribes (in the snapshot), then writes while subscribed. */
  before: number;
  writes: Array<{ op: 'insert' | 'update' | 'delete'; row: number; owner: 'u1' | 'u2'; group: 'g1' | 'g2' }>;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  read: fc.constantFrom('public' as const, 'owner' as const, 'group' as const),
  hidden: fc.subarray([...COLUMNS], { minLength: 1 }),
  before: fc.integer({ min: 0, max: 6 }),
  writes: fc.array(
    fc.record({
      op: fc.constantFrom('insert' as const, 'update' as const, 'delete' as const),
      row: fc.integer({ min: 1, max: 8 }),
      owner: fc.constantFrom('u1' as const, 'u2' as const),
      group: fc.constantFrom('g1' as const, 'g2' as const),
    }),
    { minLength: 1, maxLength: 12 },
  ),
});

/** A /live client's frames as text, for searching. */
const textOf = (client: LiveClient): string => client.frames.map((frame) => JSON.stringify(frame)).join('\n');

/** A realtime-js client whose raw frames (before realtime-js reads them) are kept. */
function rawSupabase(port: number, token: string): { client: ReturnType<typeof realtimeClient>; raw: string[] } {
  const raw: string[] = [];
  class Recording extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      this.on('message', (data) => raw.push(data.toString()));
    }
  }
  return { client: realtimeClient(port, token, '2.0.0', { transport: Recording }), raw };
}

let caseNumber = 0;

async function runCase(fixture: ServerFixture, c: Case): Promise<void> {
  const { db, connect, server, token } = fixture;
  const n = caseNumber++;
  const table = `h${n}`;
  const name = (column: Column) => `${table}_${column}`;
  const written = new Map<Column, string[]>(COLUMNS.map((column) => [column, []]));
  let counter = 0;
  const value = (column: Column) => {
    const v = `v${n}x${column}x${counter++}q`;
    written.get(column)!.push(v);
    return v;
  };
  const policy = c.read === 'owner' ? `'owner', 'owner', NULL` : c.read === 'group' ? `'group', NULL, 'grp'` : `'public', NULL, NULL`;
  await db.query(`
    CREATE TABLE ${table} (id int PRIMARY KEY, owner text, grp text, ${COLUMNS.map((column) => `${name(column)} text`).join(', ')});
    INSERT INTO rowcast.table_policies (table_name, read, owner_column, group_column, hidden_columns)
      VALUES ('${table}', ${policy}, ARRAY[${c.hidden.map((column) => `'${name(column)}'`).join(', ')}]::text[]);`);
  const present = new Set<number>();
  const upsert = async (id: number, owner: string, group: string) => {
    const values = COLUMNS.map((column) => value(column));
    await db.query(
      `INSERT INTO ${table} VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET owner = $2, grp = $3, ${COLUMNS.map((column, i) => `${name(column)} = $${i + 4}`).join(', ')}`,
      [id, owner, group, ...values],
    );
    present.add(id);
  };
  for (let id = 1; id <= c.before; id++) await upsert(id, id % 2 ? 'u1' : 'u2', id % 3 ? 'g1' : 'g2');

  const user = { sub: 'u1', groups: ['g1'] };
  const alice = await connect(user);
  const admin = await connect({ sub: 'root', role: 'admin' });
  const { client: supabase, raw } = rawSupabase(server.port, token(user));
  const changes = new Inbox<Record<string, unknown>>();
  try {
    const snapshotAnswer = await alice.request('subscribe', { topicName: table, snapshot: true });
    if (!isOk(snapshotAnswer)) throw new Error(`subscribe: ${JSON.stringify(snapshotAnswer)}`);
    const last = (await alice.next((f) => f.type === 'snapshot' && f.done)) as Extract<ServerFrame, { type: 'snapshot' }> & { seq: string };
    if (!isOk(await admin.request('subscribe', { topicName: table }))) throw new Error('admin subscribe');
    const channel = supabase.channel(`h${n}`).on('postgres_changes', { event: '*', schema: 'public', table }, (change) => changes.add(change as never));
    await subscribed(channel);
    await waitFor('the Supabase binding', () => raw.some((frame) => frame.includes('Subscribed to PostgreSQL')));
    const topic = await alice.request('get-topic', { topicName: table });

    for (const write of c.writes) {
      if (write.op === 'delete') {
        await db.query(`DELETE FROM ${table} WHERE id = $1`, [write.row]);
        present.delete(write.row);
      } else if (write.op === 'update' && present.has(write.row)) {
        const column = COLUMNS[write.row % COLUMNS.length]!;
        await db.query(`UPDATE ${table} SET owner = $2, grp = $3, ${name(column)} = $4 WHERE id = $1`, [write.row, write.owner, write.group, value(column)]);
      } else {
        await upsert(write.row, write.owner, write.group);
      }
    }
    // A last row everyone here may read: once it has arrived, every earlier change has.
    const end = 1000;
    await upsert(end, 'u1', 'g1');
    const arrived = (client: LiveClient) => client.frames.some((f) => f.type === 'event' && f.topic === table && f.data.id === String(end));
    await waitFor('the last row on /live', () => arrived(alice) && arrived(admin));
    await changes.atLeast(1);
    await waitFor('the last row on Supabase', () => changes.items.some((change) => (change['new'] as Record<string, unknown> | undefined)?.['id'] === end));
    // A replay of everything since the snapshot, on a new connection.
    const replayer = await connect(user);
    try {
      const replay = await replayer.request('subscribe', { topicName: table, since: last.seq });
      if (!isOk(replay)) throw new Error(`replay: ${JSON.stringify(replay)}`);
      await waitFor('the last row in the replay', () => arrived(replayer));

      const hiddenNames = c.hidden.map(name);
      const hiddenValues = c.hidden.flatMap((column) => written.get(column)!);
      const leaks = (text: string) => [...hiddenNames.filter((column) => text.includes(`"${column}"`)), ...hiddenValues.filter((v) => text.includes(v))];
      const seen = { live: textOf(alice), replay: textOf(replayer), getTopic: JSON.stringify(topic), supabase: raw.join('\n') };
      for (const [where, text] of Object.entries(seen)) {
        const found = leaks(text);
        if (found.length > 0) throw new Error(`${where} leaked ${found.join(', ')} to a non-admin (${JSON.stringify(c)})`);
      }
      // What is not hidden still arrives, and admins see everything (so the check above can fail).
      const shown = COLUMNS.filter((column) => !c.hidden.includes(column)).map(name);
      for (const column of shown) if (!seen.live.includes(`"${column}"`) || !seen.supabase.includes(`"${column}"`)) throw new Error(`visible column ${column} missing`);
      const adminText = textOf(admin);
      for (const column of hiddenNames) if (!adminText.includes(`"${column}"`)) throw new Error(`the admin did not get hidden column ${column}`);
    } finally {
      replayer.close();
    }
  } finally {
    alice.close();
    admin.close();
    await supabase.removeAllChannels();
    supabase.disconnect();
  }
}

test('property: no non-admin frame of any kind holds a hidden column’s name or value', withServer, {}, async (t, fixture) => {
  await fc.assert(fc.asyncProperty(caseArb, (c) => runCase(fixture, c)), { numRuns: Number(process.env['HIDDEN_RUNS'] ?? 8), verbose: true });
  t.pass();
});

const SCHEMA = `
  CREATE TABLE account (id int PRIMARY KEY, owner_id text, name text, password_hash text, note text);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column, hidden_columns) VALUES ('account', 'owner', 'owner_id', '{password_hash,note}');
  INSERT INTO account VALUES (1, 'u1', 'Ann', 'secret-hash', 'internal');`;

test('a filter or a groupBy on a hidden column is refused to non-admins as if it did not exist; admins may use them', withServer, { sql: SCHEMA }, async (t, { connect }) => {
  const user = await connect({ sub: 'u1' });
  const refused = await user.request('subscribe', { topicName: 'account', filter: { password_hash: { eq: 'secret-hash' } } });
  t.false(isOk(refused));
  t.is(errorOf(refused).code, 'INVALID_ATTRIBUTES');
  t.regex(errorOf(refused).message, /password_hash/);
  const grouped = await user.request('subscribe', { topicName: 'account', aggregate: { groupBy: 'note' } });
  t.is(errorOf(grouped).code, 'INVALID_ATTRIBUTES');
  t.true(isOk(await user.request('subscribe', { topicName: 'account', filter: { name: { eq: 'Ann' } } })));

  const admin = await connect({ sub: 'root', role: 'admin' });
  t.true(isOk(await admin.request('subscribe', { topicName: 'account', filter: { password_hash: { eq: 'secret-hash' } }, snapshot: true })));
  const page = await admin.next((f) => f.type === 'snapshot' && f.done);
  t.like((page as Extract<ServerFrame, { type: 'snapshot' }>).data[0], { attributes: { password_hash: 'secret-hash', note: 'internal' } });
  const described = await admin.request('get-topic', { topicName: 'account' });
  t.true(JSON.stringify(described).includes('"password_hash"'));
});

test('the policy API refuses to hide a primary key column or a column the table lacks, and lists hidden columns', withServer, { sql: SCHEMA }, async (t, { server }) => {
  const put = (body: unknown) =>
    fetch(`http://127.0.0.1:${server.port}/admin/policies/account`, { method: 'PUT', headers: { ...operatorHeaders(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const key = await put({ read: 'owner', ownerColumn: 'owner_id', hiddenColumns: ['id'] });
  t.is(key.status, 400);
  t.regex(await key.text(), /INVALID_ATTRIBUTES.*primary key/);
  const missing = await put({ read: 'owner', ownerColumn: 'owner_id', hiddenColumns: ['nope'] });
  t.is(missing.status, 400);
  t.regex(await missing.text(), /nope is not a column/);
  const ok = await put({ read: 'owner', ownerColumn: 'owner_id', hiddenColumns: ['note'] });
  t.is(ok.status, 200);
  t.like(await ok.json(), { hidden_columns: ['note'] });
});
