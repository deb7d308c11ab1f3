/**
 * Issue 5's crash runs at CI size (`npm run chaos` runs them at full size):
 * every client ends with exactly the events it may read, once each, in
 * commit order, across SIGKILLs of the server and a Postgres restart; and
 * what operators see of a replication outage.
 */
import test from 'ava';
import { CRASH_SCHEMA, describeCrashRun, runCrashTest } from '../chaos/crash-run.js';
import { runTransactionCrash, TRANSACTION_SCHEMA } from '../chaos/transaction-crash-run.js';
import { isEvent, LiveClient } from './helpers/live-client.js';
import { operatorHeaders, signToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
import { withServerProcess } from './helpers/with-server-process.js';


test('server killed twice with SIGKILL while 1,000 changes/s are written: clients resume with since, lose nothing, see nothing twice', withServerProcess, { sql: CRASH_SCHEMA }, async (t, { db, start }) => {
  const result = await runCrashTest(db, {
    rate: 1000,
    seconds: 6,
    disruptions: [
      { at: 2, kind: 'kill-server' },
      { at: 4, kind: 'kill-server' },
    ],
    copies: 1,
    reconnectEvery: 400,
    env: { HISTORY_EVENTS: '20000' },
    log: (line) => t.log(line),
    start,
  });
  t.log(describeCrashRun(result));
  t.deepEqual(result.problems, []);
  t.is(result.changes, 6000);
  t.true(result.readers.every((r) => r.expected > 0 && r.received === r.expected));
});

test('SIGTERM under load: the server exits 0, and after a restart clients resume with nothing lost and nothing twice', withServerProcess, { sql: CRASH_SCHEMA }, async (t, { db, start }) => {
  const result = await runCrashTest(db, {
    rate: 1000,
    seconds: 4,
    disruptions: [{ at: 2, kind: 'terminate-server' }],
    copies: 1,
    reconnectEvery: 0,
    env: { HISTORY_EVENTS: '20000' },
    log: (line) => t.log(line),
    start,
  });
  t.log(describeCrashRun(result));
  t.deepEqual(result.problems, []);
  t.true(result.readers.every((r) => r.expected > 0 && r.received === r.expected && r.connections === 2));
});

test('Postgres restarted mid-run: the stream comes back, clients stay connected and lose nothing', withServerProcess, { sql: CRASH_SCHEMA, privatePostgres: true }, async (t, { db, start, postgres }) => {
  const result = await runCrashTest(
    db,
    {
      rate: 1000,
      seconds: 5,
      disruptions: [{ at: 2, kind: 'restart-postgres' }],
      copies: 1,
      reconnectEvery: 0,
      env: { HISTORY_EVENTS: '20000' },
      log: (line) => t.log(line),
      start,
    },
    postgres,
  );
  t.log(describeCrashRun(result));
  t.deepEqual(result.problems, []);
  t.true(result.readers.every((r) => r.expected > 0 && r.received === r.expected && r.connections === 1));
  // The outage was seen, logged and reported, and is over.
  t.true(result.serverLog.includes('Postgres is shutting down: closing the replication connection so that it can'));
  t.true(result.serverLog.some((msg) => msg.startsWith('replication stream lost')));
  t.true(result.serverLog.some((msg) => msg.startsWith('replication stream restored')));
  t.like(result.status['replication'], { connected: true, outage: null });
  t.true(result.status['replication'].lastOutage.seconds > 0);
});

/**
 * The replay of what was missed must fit half the socket buffer: these runs give it room. What the
 * server had written to the kernel before the kill still arrives after it (several MiB on
 * loopback), so the transactions are large enough that the kill lands in the middle.
 */
const ROOMY = { MAX_BACKPRESSURE_BYTES: String(64 * 1024 * 1024) };

test('a crash in the middle of delivering a 60,000-row transaction: the client resumes with exactly the rest', withServerProcess, { sql: TRANSACTION_SCHEMA }, async (t, { db, start }) => {
  const result = await runTransactionCrash(db, {
    kind: 'rows',
    rows: 60_000,
    killAfter: 10_000,
    env: { ...ROOMY, HISTORY_EVENTS: '70000' },
    log: (line) => t.log(line),
    start,
  });
  t.deepEqual(result.problems, []);
  t.true(result.resumed);
  t.true(result.after > 0, 'the kill came before the client had everything');
  t.is(result.before + result.after, 60_000);
});

test('a crash in the middle of delivering 1 MiB TOAST values: every value arrives whole, once', withServerProcess, { sql: TRANSACTION_SCHEMA }, async (t, { db, start }) => {
  const result = await runTransactionCrash(db, { kind: 'toast', rows: 24, killAfter: 3, env: ROOMY, log: (line) => t.log(line), start });
  t.deepEqual(result.problems, []);
  t.true(result.resumed);
  t.true(result.after > 0, 'the kill came before the client had everything');
  t.is(result.before + result.after, 24);
});

test('while Postgres is down, /status and /health report the outage and /metrics the retained WAL; clients stay connected', withServerProcess, { sql: TRANSACTION_SCHEMA, privatePostgres: true }, async (t, { db, start, postgres }) => {
  const server = await start();
  const client = await LiveClient.connect(`${server.liveUrl}?token=${signToken({ sub: 'r' })}`);
  await client.subscribe('big');
  await db.query(`INSERT INTO big VALUES (1, 'before')`);
  await client.events(1);
  const slot = await waitFor('a slot reading with the window holding WAL', async () => {
    const reading = (await server.status())['replication'].slot;
    return reading?.retainedWalBytes > 0 ? reading : null;
  });
  t.is(slot.walStatus, 'reserved');
  const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: operatorHeaders() })).text();
  t.regex(metrics, /^rowcast_replication_slot_retained_wal_bytes \d+/m);
  t.regex(metrics, /^rowcast_replication_connected 1$/m);

  await postgres.stop();
  const outage = await waitFor('the outage to show in /status', async () => (await server.status())['replication'].outage);
  t.true(outage.attempts >= 0);
  const health = await fetch(`http://127.0.0.1:${server.port}/health`);
  t.is(health.status, 503);
  t.true(((await health.json()) as { failing: string[] }).failing.includes('replication'));
  t.regex(await (await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: operatorHeaders() })).text(), /^rowcast_replication_connected 0$/m);
  await server.waitForLog((line) => String(line['msg']).startsWith('replication stream lost'));

  await postgres.start();
  await db.query(`INSERT INTO big VALUES (2, 'after')`);
  t.like(await client.next(isEvent, 30_000), { data: { id: '2' } });
  const status = await server.status();
  t.is(status['replication'].outage, null);
  t.true(status['replication'].lastOutage.seconds > 0);
  await waitFor('/health to answer 200 again', async () => (await fetch(`http://127.0.0.1:${server.port}/health`)).status === 200);
  await server.waitForLog((line) => String(line['msg']).startsWith('replication stream restored'));
  t.is(client.closeCode, null);
});
