import test from 'ava';
import { attributesOf } from './helpers/live-client.js';
import { withServer } from './helpers/with-server.js';
import { operatorHeaders } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';

const NOTES = `
  CREATE TABLE notes (id int PRIMARY KEY, text text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;

test('when the replication connection is killed, the stream reconnects and clients keep receiving', withServer, { sql: NOTES }, async (t, { db, server, connect }) => {
  const client = await connect({ sub: '1' });
  await client.subscribe('notes');
  await db.query(`INSERT INTO notes VALUES (1, 'before')`);
  t.is(attributesOf((await client.events(1))[0]!)['text'], 'before');

  await db.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`, [db.name]);
  // Written while the stream is down or coming back: it must still arrive, once.
  await db.query(`INSERT INTO notes VALUES (2, 'during')`);
  await waitFor('a reconnect', () => server.status().replication.reconnects >= 1);
  await db.query(`INSERT INTO notes VALUES (3, 'after')`);

  const events = await client.events(2);
  t.deepEqual(events.map((e) => attributesOf(e)['text']), ['during', 'after']);
  await waitFor('the stream to be connected', () => server.status().replication.connected);
  t.is(client.closeCode, null);
});

test('/status and /health report the stream', withServer, { sql: NOTES }, async (t, { db, server, connect }) => {
  const base = `http://127.0.0.1:${server.port}`;
  const client = await connect({ sub: '1' });
  await client.subscribe('notes');
  await db.query(`INSERT INTO notes VALUES (1, 'x')`);
  await client.events(1);
  // Events leave as they are decoded, before their transaction's commit message is read: the commit is counted just after.
  const readStatus = async () => (await (await fetch(`${base}/status`, { headers: operatorHeaders() })).json()) as Record<string, any>;
  const status = await waitFor('the commit to be counted', async () => {
    const current = await readStatus();
    return current['replication'].transactions >= 1 ? current : null;
  });
  t.like(status, { engine: 'native', connections: 1, eventsPublished: 1, replication: { connected: true, transactions: 1, changes: 1 } });
  t.deepEqual(status['topics'], [{ name: 'notes', read: 'public', subscribers: 1, filterGroups: 0 }]);
  const health = await fetch(`${base}/health`);
  t.is(health.status, 200);
  t.deepEqual(await health.json(), { ok: true, failing: [] });
});
