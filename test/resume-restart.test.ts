/**
 * `since` across a restart (docs/delivery.md): the replay window's floors
 * are kept in the database, so a client is resumed after a SIGKILL whenever
 * what it missed is still in the stream, even one that saw no event before.
 */
import test from 'ava';
import { seqLsn } from '../src/events/seq.js';
import { parseLsn } from '../src/replication/lsn.js';
import { LiveClient } from './helpers/live-client.js';
import { signToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
import { withServerProcess } from './helpers/with-server-process.js';

const SCHEMA = `
  CREATE TABLE item (id int PRIMARY KEY, note text);
  CREATE TABLE unpublished_churn (id serial PRIMARY KEY, n int);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('item', 'public');`;

test('a subscription that saw no event before a SIGKILL resumes after the restart with what it missed', withServerProcess, { sql: SCHEMA }, async (t, { db, start }) => {
  const first = await start({ PUBLICATION_TABLES: 'item' });
  const client = await LiveClient.connect(`${first.liveUrl}?token=${signToken({ sub: 'u' })}`);
  const answer = await client.subscribe('item');
  const since = answer.data.seq;
  client.close();
  // Other writes move the slot on past where the client stands (the old gap: the window then restarted above it).
  await waitFor(
    'the slot acknowledged past the client’s position',
    async () => {
      await db.query('INSERT INTO unpublished_churn (n) SELECT 1 FROM generate_series(1, 10)');
      const { rows } = await db.query<{ lsn: string }>(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [db.name]);
      return parseLsn(rows[0]!.lsn) > seqLsn(since) + 1n;
    },
    30_000,
  );
  await first.kill('SIGKILL');
  await db.query(`INSERT INTO item VALUES (1, 'missed while down')`);

  const second = await start({ PUBLICATION_TABLES: 'item' });
  const back = await LiveClient.connect(`${second.liveUrl}?token=${signToken({ sub: 'u' })}`);
  try {
    const resumed = await back.subscribe('item', { since });
    t.true(resumed.data.resumed, 'resumed');
    const missed = await back.next((f) => f.type === 'event' && f.topic === 'item');
    t.like(missed, { event: 'create', data: { id: '1' } });
  } finally {
    back.close();
  }
});

test('after a restart, a client further back than the kept window is told resumed: false', withServerProcess, { sql: SCHEMA }, async (t, { db, start }) => {
  const env = { PUBLICATION_TABLES: 'item', HISTORY_EVENTS: '50' };
  const first = await start(env);
  const client = await LiveClient.connect(`${first.liveUrl}?token=${signToken({ sub: 'u' })}`);
  const since = (await client.subscribe('item')).data.seq;
  await db.query(`INSERT INTO item SELECT i, 'pushes the window on' FROM generate_series(1, 200) AS i`);
  await client.events(200);
  client.close();
  // The pushed-out events' floor is kept before the slot moves past them.
  await waitFor('the floors written', async () => (await db.query(`SELECT floor FROM rowcast.replay_floors WHERE slot_name = $1 AND floor > $2`, [db.name, since])).rows.length > 0);
  await first.kill('SIGKILL');

  const second = await start(env);
  const back = await LiveClient.connect(`${second.liveUrl}?token=${signToken({ sub: 'u' })}`);
  try {
    t.false((await back.subscribe('item', { since })).data.resumed);
  } finally {
    back.close();
  }
});
