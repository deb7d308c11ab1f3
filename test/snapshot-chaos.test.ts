/**
 * The snapshot oracle at CI size (`npm run chaos` runs it bigger): clients
 * subscribing with snapshots at random moments while a writer commits, the
 * server killed with SIGKILL once and the stream cut off twice; every fold
 * fits and ends equal to SQL (chaos/snapshot-run.ts).
 */
import test from 'ava';
import { runSnapshotOracle, SNAPSHOT_SCHEMA } from '../chaos/snapshot-run.js';
import { withServerProcess } from './helpers/with-server-process.js';

test('snapshots under a writer, a SIGKILL and cut streams: every client’s rows fit and end equal to SQL', withServerProcess, { sql: SNAPSHOT_SCHEMA }, async (t, { db, start }) => {
  const report = await runSnapshotOracle(db, { rate: 1000, seconds: 8, clients: 15, kills: [0.5], streamCuts: [0.2, 0.8], log: (line) => t.log(line), start });
  t.log(`${report.changes} changes, ${report.snapshots} snapshots, ${report.resumes} resumes`);
  t.deepEqual(report.problems, []);
  t.true(report.snapshots >= 15);
});
