import test from 'ava';
import { createTestDatabase } from './helpers/database.js';
import { LiveClient, type Frame } from './helpers/live-client.js';
import { ServerProcess } from './helpers/server-process.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';

const NOTES = `
  CREATE TABLE notes (id bigserial PRIMARY KEY, body text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;
const isEvent = (f: Frame) => f['type'] === 'event';

test('a row committed right after a successful subscribe arrives, 1,000 times', withServer, { sql: NOTES }, async (t, { connect, db }) => {
  const client = await connect({ sub: '1' });
  for (let i = 0; i < 1000; i++) {
    await client.request('unsubscribe', { topicName: 'notes' });
    await client.subscribe('notes');
    const { rows } = await db.query<{ id: string }>(`INSERT INTO notes (body) VALUES ($1) RETURNING id::text AS id`, [`row ${i}`]);
    const event = await client.next(isEvent, 5000);
    if (event['data'].id !== rows[0]!.id) t.fail(`repetition ${i}: expected row ${rows[0]!.id}, got ${event['data'].id}`);
  }
  t.is(client.frames.filter(isEvent).length, 1000);
});

test('after a crash, a new subscription gets only what is committed after it, not the re-read tail of the slot', async (t) => {
  const db = await createTestDatabase(`${NOTES}
    CREATE FUNCTION hold_positions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'positions held by the test'; END $$;
    CREATE TRIGGER hold_positions BEFORE UPDATE OF seq ON rowcast.messages FOR EACH ROW EXECUTE FUNCTION hold_positions();`);
  let server: ServerProcess | null = null;
  try {
    server = await ServerProcess.start(db);
    const admin = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'a', role: 'admin' })}`);
    // A stored message whose position cannot be written holds the slot before everything after it.
    await admin.call('create-topic', { name: 'anchor' });
    const { seq } = await admin.call('new-message', { topicName: 'anchor', message: 'hold' });
    await admin.subscribe('notes');
    await db.query(`INSERT INTO notes (body) SELECT 'old ' || n FROM generate_series(1, 20000) n`);
    await admin.next((f) => isEvent(f) && f['data'].attributes.body === 'old 20000', 30_000);
    const slot = await db.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [db.name]);
    t.log(`slot held at ${slot.rows[0]!['lsn']}, the message at ${seq}`);
    await server.kill('SIGKILL');

    server = await ServerProcess.start(db);
    const fresh = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'b' })}`);
    await fresh.subscribe('notes');
    await db.query(`INSERT INTO notes (body) VALUES ('new')`);
    t.like(await fresh.next(isEvent, 30_000), { data: { attributes: { body: 'new' } } });
    // The restarted server did re-read the old rows (they went nowhere live).
    const status = await waitFor('the re-read to be counted', async () => ((await server!.status())['replication'].changes >= 20_001 ? true : null));
    t.true(status);
  } finally {
    await server?.kill();
    await db.drop();
  }
});
