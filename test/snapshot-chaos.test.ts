/**
 * The snapshot oracle at CI size (`npm run chaos` runs it bigger): clients
 * subscribing with snapshots at random moments while a writer commits, the
 * server killed with SIGKILL once and the stream cut off twice; every fold
 * fits and ends equal to SQL (chaos/snapshot-run.ts).
 */
import test from 'ava';
import { runSnapshotOracle, SNAPSHOT_SCHEMA } from '../chaos/snapshot-run.js';
import { LiveClient } from './helpers/live-client.js';
import { RowFold } from './helpers/row-fold.js';
import { signToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
import { withServerProcess } from './helpers/with-server-process.js';

test('snapshots under a writer, a SIGKILL and cut streams: every client’s rows fit and end equal to SQL', withServerProcess, { sql: SNAPSHOT_SCHEMA }, async (t, { db, start }) => {
  const report = await runSnapshotOracle(db, { rate: 1000, seconds: 8, clients: 15, kills: [0.5], streamCuts: [0.2, 0.8], log: (line) => t.log(line), start });
  t.log(`${report.changes} changes, ${report.snapshots} snapshots, ${report.resumes} resumes`);
  t.deepEqual(report.problems, []);
  t.true(report.snapshots >= 15);
});

const BIG = `
  CREATE TABLE big (id int PRIMARY KEY, n int, note text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('big', 'public');
  INSERT INTO big SELECT i, i % 100, repeat('x', 200) FROM generate_series(1, 60000) AS i;`;

test('a server killed (SIGKILL) in the middle of a snapshot: the client takes a fresh one after the restart, and ends equal to SQL', withServerProcess, { sql: BIG }, async (t, { db, start }) => {
  const env = { PUBLICATION_TABLES: 'big' };
  let server = await start(env);
  const first = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'u' })}`);
  const cut = new RowFold('big');
  first.socket.on('message', () => {
    const frame = first.frames.at(-1)!;
    cut.apply(frame);
  });
  first.socket.send(JSON.stringify({ id: 1, method: 'subscribe', attributes: { topicName: 'big', snapshot: true } }));
  await first.next((f) => f.type === 'snapshot');
  await server.kill('SIGKILL');
  t.false(cut.done, 'killed before the last page');
  t.true(cut.rows.size < 60000);
  await db.query(`UPDATE big SET n = n + 1 WHERE id <= 100; DELETE FROM big WHERE id > 59900; INSERT INTO big VALUES (70000, 1, 'new')`);

  server = await start(env);
  const again = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'u' })}`);
  const fold = new RowFold('big');
  let seen = again.frames.length;
  again.socket.on('message', () => {
    for (; seen < again.frames.length; seen++) fold.apply(again.frames[seen]!);
  });
  // Not done, so no since: a fresh snapshot.
  t.like(await again.request('subscribe', { topicName: 'big', snapshot: true }), { ok: true, data: { snapshot: true } });
  await db.query(`INSERT INTO big VALUES (70001, 2, 'after')`);
  const { rows } = await db.query('SELECT count(*)::int AS n FROM big');
  const want = rows[0]!['n'] as number;
  await waitFor('the fresh snapshot and the insert after it', () => fold.done && fold.rows.size === want, 60_000);
  t.deepEqual(fold.violations, []);
  t.like(fold.rows.get('70001'), { note: 'after' });
  t.like(fold.rows.get('1'), { n: 2 });
  again.close();
  first.close();
});
