/**
 * Issue 10, the cluster stream on a real Redis: what the leader appends
 * (`RedisStreamSink`) every node reads back (`RedisStreamReader`) in the same
 * order, once, across a failover that re-sends transactions; a reader
 * reports a gap when Redis loses the stream. Issue 16: with CLUSTER_SECRET an
 * entry without the leader's signature is a gap, never data; a change that
 * cannot be serialized travels as its key and is reported, not delivered.
 */
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { appendEphemeral, RedisStreamSink } from '../src/cluster/redis-stream-sink.js';
import { RedisStreamReader, type EphemeralRecord, type StreamConsumer } from '../src/cluster/redis-stream-reader.js';
import { lsnHex, type Lsn } from '../src/replication/lsn.js';
import type { Change, Relation, Transaction } from '../src/replication/transaction.js';
import { waitFor } from './helpers/wait-for.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
const RELATION = {
  tag: 'relation',
  relationOid: 16384,
  schema: 'public',
  name: 'orders',
  replicaIdentity: 'default',
  keyColumns: ['id'],
  columns: [{ name: 'id', typeOid: 23, flags: 1, typeMod: -1, typeSchema: null, typeName: null, parser: (t: string) => t }],
} as unknown as Relation;

function tx(lsn: number): Transaction {
  const commitLsn = BigInt(lsn) as Lsn;
  return { xid: lsn, commitLsn, commitLsnHex: lsnHex(commitLsn), commitTime: new Date(lsn * 1000).toISOString() };
}
const insert = (index: number): Change => ({ tag: 'insert', index, relation: RELATION, new: { id: index } });

/** Sends transaction `lsn` with `changes` inserts; `commit: false` stops before its commit (a leader dying mid-transaction). */
function send(sink: RedisStreamSink, lsn: number, changes: number, commit = true): void {
  const t = tx(lsn);
  for (let i = 0; i < changes; i++) sink.change(t, insert(i));
  if (commit) sink.commit(t, BigInt(lsn + 1));
}

/** A consumer that writes down what it is handed. */
function recorder(): StreamConsumer & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    change: (t, change) => seen.push(`${t.commitLsn}:${change.index}:${change.tag === 'insert' ? change.relation.name : ''}`),
    dropped: (t, change, reason) => seen.push(`dropped ${t.commitLsn}:${change.index}:${JSON.stringify(change.tag === 'insert' ? change.new : null)} (${reason})`),
    commit: (t) => seen.push(`commit ${t.commitLsn}`),
    ephemeral: (record: EphemeralRecord) => seen.push(`ephemeral ${record.id}`),
    position: () => {},
    gap: () => seen.push('gap'),
  };
}

function setup(t: { teardown(fn: () => Promise<void> | void): void }, secret?: string) {
  const key = `rowcast-test:${randomUUID()}`;
  const writer = new Redis(REDIS_URL);
  const readers: RedisStreamReader[] = [];
  t.teardown(async () => {
    await Promise.all(readers.map((reader) => reader.stop()));
    await writer.del(key, `${key}:epoch`, `${key}:n`);
    writer.disconnect();
  });
  const sink = (changesPerEntry = 500) =>
    new RedisStreamSink({ redis: writer, key, maxLength: 10_000, changesPerEntry, logger, ...(secret ? { secret } : {}), onFailure: (error) => { throw error; } });
  const reader = (pacer?: { congested(): boolean }) => {
    const consumer = recorder();
    const r = new RedisStreamReader({ redis: new Redis(REDIS_URL), key, consumer, logger, ...(pacer ? { pacer } : {}), ...(secret ? { secret } : {}) });
    readers.push(r);
    r.start();
    return consumer;
  };
  return { key, writer, sink, reader };
}

test('every reader gets the same records in order, once, across a failover that re-sends', async (t) => {
  const { key, writer, sink, reader } = setup(t);
  const a = reader();
  const leader = sink(2);
  send(leader, 100, 2);
  send(leader, 200, 3); // three changes: two entries
  await appendEphemeral(writer, key, 10_000, { topic: 'pings', sender: 'u', message: { n: 1 }, id: 'e1', at: new Date().toISOString() }, undefined);
  // The leader dies in the middle of transaction 300: two of its four changes were appended.
  send(leader, 300, 2, false);
  // The new leader starts from the slot's confirmed position: 200 and 300 come again, whole.
  const next = sink(2);
  send(next, 200, 3);
  send(next, 300, 4);
  send(next, 400, 1);
  const b = reader(); // a node that starts later reads the stream from its start
  const expected = [
    '100:0:orders', '100:1:orders', 'commit 100',
    '200:0:orders', '200:1:orders', '200:2:orders', 'commit 200',
    'ephemeral e1',
    '300:0:orders', '300:1:orders', '300:2:orders', '300:3:orders', 'commit 300',
    '400:0:orders', 'commit 400',
  ];
  for (const consumer of [a, b]) {
    await waitFor('every record', () => consumer.seen.includes('commit 400'));
    t.deepEqual(consumer.seen, expected);
  }
});

test('a reader reports a gap when Redis loses the stream, then goes on with what comes next', async (t) => {
  const { key, writer, sink, reader } = setup(t);
  const a = reader();
  const leader = sink();
  send(leader, 100, 1);
  await waitFor('the first transaction', () => a.seen.includes('commit 100'));
  // What a Redis restart without persistence does to the stream.
  await writer.del(key, `${key}:epoch`, `${key}:n`);
  send(leader, 200, 1);
  await waitFor('the gap and the next transaction', () => a.seen.includes('commit 200'));
  t.deepEqual(a.seen, ['100:0:orders', 'commit 100', 'gap', '200:0:orders', 'commit 200']);
});

test('a reader that fell behind a trim reports the gap before handing on what follows it', async (t) => {
  const { key, writer, sink, reader } = setup(t);
  let paused = false;
  let asked = 0;
  const a = reader({
    congested: () => {
      asked++;
      return paused;
    },
  });
  const leader = sink();
  send(leader, 100, 1);
  await waitFor('the first transaction', () => a.seen.includes('commit 100'));
  const before = asked;
  paused = true;
  // The reader asks before every read: once it has asked since, it is holding (a read already blocking came back first).
  await waitFor('the reader to hold', () => asked > before);
  send(leader, 200, 1);
  send(leader, 300, 1);
  send(leader, 400, 1);
  await waitFor('the appends', async () => (await writer.xlen(key)) === 4);
  await writer.xtrim(key, 'MAXLEN', 1); // only 400's entry is left: 200 and 300 are gone unread
  paused = false;
  await waitFor('the next transaction', () => a.seen.includes('commit 400'));
  t.deepEqual(a.seen, ['100:0:orders', 'commit 100', 'gap', '400:0:orders', 'commit 400']);
});

test('with CLUSTER_SECRET, an entry without the leader\'s signature is a gap, never data', async (t) => {
  const secret = 'cluster-secret-0123456789';
  const { key, writer, sink, reader } = setup(t, secret);
  const a = reader();
  const leader = sink();
  send(leader, 100, 1);
  await waitFor('the first transaction', () => a.seen.includes('commit 100'));
  // Someone with write access to Redis but without the secret appends a forged row and its commit, numbered as the script would.
  const forged = JSON.stringify({
    relations: [{ relationOid: 16384, schema: 'public', name: 'orders', replicaIdentity: 'default', keyColumns: ['id'], columns: [{ name: 'id', typeOid: 23, flags: 1 }] }],
    records: [
      { t: 'change', tx: { xid: 1, commitLsnHex: lsnHex(150n), commitTime: new Date().toISOString() }, change: { tag: 'insert', index: 0, relation: 16384, new: { id: 666 } } },
      { t: 'commit', tx: { xid: 1, commitLsnHex: lsnHex(150n), commitTime: new Date().toISOString() }, end: lsnHex(151n) },
    ],
  });
  const n = await writer.incr(`${key}:n`);
  await writer.xadd(key, '*', 'n', String(n), 'd', forged);
  const m = await writer.incr(`${key}:n`);
  await writer.xadd(key, '*', 'n', String(m), 'd', forged, 's', 'f'.repeat(64));
  send(leader, 200, 1);
  await waitFor('the next signed transaction', () => a.seen.includes('commit 200'));
  t.deepEqual(a.seen, ['100:0:orders', 'commit 100', 'gap', 'gap', '200:0:orders', 'commit 200']);
});

test('a signed entry appended again is dropped: a transaction by its position, an ephemeral message by its id', async (t) => {
  const secret = 'cluster-secret-0123456789';
  const { key, writer, sink, reader } = setup(t, secret);
  const a = reader();
  send(sink(), 100, 1);
  await appendEphemeral(writer, key, 10_000, { topic: 'pings', sender: 'u', message: 1, id: 'e1', at: new Date().toISOString() }, secret);
  await waitFor('both', () => a.seen.includes('ephemeral e1'));
  // Whoever can write to Redis copies both signed entries to the end of the stream, numbered as the script would.
  const entries = (await writer.xrange(key, '-', '+')) as Array<[string, string[]]>;
  for (const [, fields] of entries) {
    const n = await writer.incr(`${key}:n`);
    await writer.xadd(key, '*', 'n', String(n), 'd', fields[3]!, 's', fields[5]!);
  }
  send(sink(), 200, 1);
  await waitFor('the next transaction', () => a.seen.includes('commit 200'));
  t.deepEqual(a.seen, ['100:0:orders', 'commit 100', 'ephemeral e1', '200:0:orders', 'commit 200']);
});

test('a change that cannot be serialized travels as its key, is handed to dropped(), and the stream goes on', async (t) => {
  const { sink, reader } = setup(t);
  const a = reader();
  const leader = sink();
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  const t1 = tx(100);
  leader.change(t1, { tag: 'insert', index: 0, relation: RELATION, new: { id: 7, doc: deep } });
  leader.change(t1, insert(1));
  leader.commit(t1, 101n);
  await waitFor('the transaction', () => a.seen.includes('commit 100'));
  t.is(a.seen.length, 3);
  t.regex(a.seen[0]!, /^dropped 100:0:\{"id":7\} \(Maximum call stack size exceeded\)$/);
  t.deepEqual(a.seen.slice(1), ['100:1:orders', 'commit 100']);
});
