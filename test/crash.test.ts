/**
 * Issue 5's crash runs at CI size (`npm run chaos` runs them at full size):
 * every client ends with exactly the events it may read, once each, in
 * commit order, across SIGKILLs of the server and a Postgres restart.
 */
import test from 'ava';
import { CRASH_SCHEMA, runCrashTest, startPrivatePostgres, type CrashRunReport } from '../chaos/crash-run.js';
import { runTransactionCrash, TRANSACTION_SCHEMA } from '../chaos/transaction-crash-run.js';
import { createTestDatabase } from './helpers/database.js';

const report = (r: CrashRunReport) =>
  `${r.changes} changes in ${r.transactions} transactions (${r.rate}/s); ` +
  r.disruptions.map((d) => `${d.kind} at ${d.at}s took ${d.tookMs} ms`).join(', ') +
  `; ${r.readers.map((x) => `${x.name}: ${x.received}/${x.expected} over ${x.connections} connections`).join('; ')}`;

test('server killed twice with SIGKILL while 1,000 changes/s are written: clients resume with since, lose nothing, see nothing twice', async (t) => {
  const db = await createTestDatabase(CRASH_SCHEMA);
  try {
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
    });
    t.log(report(result));
    t.deepEqual(result.problems, []);
    t.is(result.changes, 6000);
    t.true(result.readers.every((r) => r.expected > 0 && r.received === r.expected));
  } finally {
    await db.drop();
  }
});

test('Postgres restarted mid-run: the stream comes back, clients stay connected and lose nothing', async (t) => {
  const postgres = await startPrivatePostgres();
  try {
    const db = await createTestDatabase(CRASH_SCHEMA, postgres.url);
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
      },
      postgres.server,
    );
    t.log(report(result));
    t.deepEqual(result.problems, []);
    t.true(result.readers.every((r) => r.expected > 0 && r.received === r.expected && r.connections === 1));
    // The outage was seen, logged and reported, and is over.
    t.true(result.serverLog.includes('Postgres is shutting down: closing the replication connection so that it can'));
    t.true(result.serverLog.some((msg) => msg.startsWith('replication stream lost')));
    t.true(result.serverLog.some((msg) => msg.startsWith('replication stream restored')));
    t.like(result.status['replication'], { connected: true, outage: null });
    t.true(result.status['replication'].lastOutage.seconds > 0);
  } finally {
    await postgres.destroy();
  }
});

/** The replay of what was missed must fit half the socket buffer: these runs give it room. */
const ROOMY = { MAX_BACKPRESSURE_BYTES: String(64 * 1024 * 1024) };

test('a crash in the middle of delivering a 50,000-row transaction: the client resumes with exactly the rest', async (t) => {
  const db = await createTestDatabase(TRANSACTION_SCHEMA);
  try {
    const result = await runTransactionCrash(db, {
      kind: 'rows',
      rows: 50_000,
      killAfter: 15_000,
      env: { ...ROOMY, HISTORY_EVENTS: '60000' },
      log: (line) => t.log(line),
    });
    t.deepEqual(result.problems, []);
    t.true(result.resumed);
    t.true(result.after > 0, 'the kill came before the client had everything');
    t.is(result.before + result.after, 50_000);
  } finally {
    await db.drop();
  }
});

test('a crash in the middle of delivering 1 MiB TOAST values: every value arrives whole, once', async (t) => {
  const db = await createTestDatabase(TRANSACTION_SCHEMA);
  try {
    const result = await runTransactionCrash(db, { kind: 'toast', rows: 8, killAfter: 3, env: ROOMY, log: (line) => t.log(line) });
    t.deepEqual(result.problems, []);
    t.true(result.resumed);
    t.true(result.after > 0, 'the kill came before the client had everything');
    t.is(result.before + result.after, 8);
  } finally {
    await db.drop();
  }
});
