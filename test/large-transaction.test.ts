import test from 'ava';
import { attributesOf, LiveClient, type ServerFrame } from './helpers/live-client.js';
import { signToken } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

const ROWS = 200_000;

test(`a transaction of ${ROWS.toLocaleString('en')} rows is delivered completely while the server's memory stays flat`, withServerProcess, {
  sql: `CREATE TABLE big (id int PRIMARY KEY, payload text);
        INSERT INTO rowcast.table_policies (table_name, read) VALUES ('big', 'public');`,
}, async (t, { db, start }) => {
  // A small replay window: the default one (10,000 events) keeps each event alive long enough to be
  // promoted, which raises the transient peak by ~100 MiB in a 200,000-row burst (see docs/delivery.md, "since resumes")
  const server = await start({ HISTORY_EVENTS: '1000' });
  const client = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: '1' })}`);
  t.teardown(() => client.close());
  await client.subscribe('big');
  const before = server.memory();

  // Count in place rather than keeping 200,000 frames in the test process.
  const seen = new Uint8Array(ROWS + 1);
  let received = 0;
  let lastSeq = '';
  let ordered = true;
  const done = new Promise<void>((resolve, reject) => {
    client.socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as ServerFrame;
      if (frame.type !== 'event') return;
      if (frame.seq <= lastSeq) ordered = false;
      lastSeq = frame.seq;
      const id = Number(attributesOf(frame)['id']);
      if (!seen[id]) received++;
      seen[id] = 1;
      if (received === ROWS) resolve();
    });
    client.socket.on('close', (code) => {
      reject(new Error(`connection closed (${code}) after ${received} events`));
    });
  });
  const started = Date.now();
  await db.query(`INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, ${ROWS}) g`);
  await done;
  const seconds = (Date.now() - started) / 1000;
  const after = server.memory();

  t.is(received, ROWS);
  t.true(ordered);
  const growth = after.peakMiB - before.rssMiB;
  t.log(`server RSS before: ${before.rssMiB.toFixed(1)} MiB, peak: ${after.peakMiB.toFixed(1)} MiB (+${growth.toFixed(1)} MiB), ` +
    `${ROWS} events in ${seconds.toFixed(1)} s (${Math.round(ROWS / seconds)}/s)`);
  // The events alone are ~40 MiB of JSON; holding the transaction whole would cost several times that.
  t.true(growth < 80, `peak RSS grew by ${growth.toFixed(1)} MiB`);
});
