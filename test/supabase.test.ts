import test from 'ava';
import type { NodeStatus } from '../src/http/node-status.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { operatorHeaders } from './helpers/tokens.js';
import { withServer } from './helpers/with-server.js';

const SCHEMA = `
  CREATE TABLE "order" (id int PRIMARY KEY, owner_id int, team text, status text, amount numeric, tags text[]);
  CREATE TABLE secret (id int PRIMARY KEY, body text);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('order', 'owner', 'owner_id');`;

type Change = { eventType: string; schema: string; table: string; commit_timestamp: string; new: Record<string, unknown>; old: Record<string, unknown>; errors: unknown };

for (const vsn of ['2.0.0', '1.0.0'] as const) {
  test(`realtime-js (vsn ${vsn}): each user gets exactly their rows, a row moving away is a DELETE, and an unreadable binding gets a system error while the others work`, withServer, { sql: SCHEMA }, async (t, { db, server, token }) => {
    const alice = realtimeClient(server.port, token({ sub: '1' }), vsn);
    const bob = realtimeClient(server.port, token({ sub: '2' }), vsn);
    t.teardown(() => {
      void alice.disconnect();
      void bob.disconnect();
    });
    const aliceChanges = new Inbox<Change>();
    const aliceSystem = new Inbox<Record<string, unknown>>();
    const aliceChannel = alice
      .channel('orders')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'order' }, aliceChanges.add)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'secret' }, () => t.fail('alice may not read secret'))
      .on('system', {}, aliceSystem.add);
    const bobInserts = new Inbox<Change>();
    const bobChannel = bob
      .channel('orders')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'order', filter: 'status=in.(paid,"on hold"),amount=gte.10' }, bobInserts.add);
    await subscribed(aliceChannel);
    await subscribed(bobChannel);
    const system = await aliceSystem.atLeast(2);
    t.like(system.find((m) => m['status'] === 'ok'), { extension: 'postgres_changes', message: 'Subscribed to PostgreSQL', channel: 'orders' });
    t.regex(String(system.find((m) => m['status'] === 'error')?.['message']), /^INSERT on public\.secret: (TOPIC_NOT_FOUND|FORBIDDEN): /);
    const status = (await (await fetch(`http://127.0.0.1:${server.port}/status`, { headers: operatorHeaders() })).json()) as NodeStatus;
    t.deepEqual(status.connectionsByDoor, { supabase: 2 });

    await db.query(`INSERT INTO secret VALUES (1, 'x')`);
    await db.query(`INSERT INTO "order" VALUES (1, 1, 'a', 'paid', 20, '{x}'), (2, 2, 'b', 'open', 50, '{}'), (3, 2, 'b', 'on hold', 12, '{}'), (4, 2, 'b', 'paid', 5, '{}')`);
    await db.query(`UPDATE "order" SET owner_id = 2 WHERE id = 1`);
    const a = await aliceChanges.atLeast(2);
    t.deepEqual(a.map((c) => `${c.eventType} ${String(c.new['id'] ?? c.old['id'])}`), ['INSERT 1', 'DELETE 1']);
    t.like(a[0]!, { schema: 'public', table: 'order', errors: null, new: { id: 1, owner_id: 1, status: 'paid', tags: ['x'] } });
    t.regex(a[0]!.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Bob's filter (status in (paid, "on hold") and amount >= 10) takes 3, then 1 as it moves to him (an INSERT for him).
    const b = await bobInserts.atLeast(2);
    t.deepEqual(b.map((c) => c.new['id']), [3, 1]);
  });
}
