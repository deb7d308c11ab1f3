import test from 'ava';
import { parseLsn } from '../src/replication/lsn.js';
import type { LogLine } from './helpers/server-process.js';
import { waitFor } from './helpers/wait-for.js';
import { withServerProcess } from './helpers/with-server-process.js';

interface HandedOff {
  xid: number;
  commitLsn: bigint;
}

function handedOff(logs: LogLine[]): HandedOff[] {
  return logs
    .filter((l) => l['msg'] === 'transaction handed off')
    .map((l) => ({ xid: l['xid'] as number, commitLsn: parseLsn(l['commitLsn'] as string) }));
}

test('SIGKILL mid-write: the slot never passes what was handed on, and a restart reads every later transaction', withServerProcess, {
  sql: `CREATE TABLE ticks (n int PRIMARY KEY);
        INSERT INTO rowcast.table_policies (table_name, read) VALUES ('ticks', 'public');`,
}, async (t, { db, start }) => {
  const first = await start({ LOG_LEVEL: 'debug', HISTORY_EVENTS: '20' });

  // A writer commits one transaction per row, without pause, through the kill and after it.
  const writerXids: number[] = [];
  let killed = false;
  let afterKill = 0;
  const writer = await db.client();
  const writing = (async () => {
    for (let n = 1; afterKill < 150; n++) {
      const { rows } = await writer.query<{ xid: string }>(
        `INSERT INTO ticks VALUES ($1) RETURNING (pg_current_xact_id()::text::bigint % 4294967296)::text AS xid`,
        [n],
      );
      writerXids.push(Number(rows[0]!.xid));
      if (killed) afterKill++;
    }
  })();

  // Kill it after it has acknowledged some of the stream and while it is handing on more.
  const { rows: slotRows } = await db.query<{ lsn: string }>(
    `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`,
    [db.name],
  );
  const initial = parseLsn(slotRows[0]!.lsn);
  // An acknowledgement past a written transaction (not only past the set-up's, which a loaded machine may see first).
  await waitFor('an acknowledgement of a written transaction', async () => {
    const written = handedOff(first.logs).find((h) => writerXids.includes(h.xid));
    return written !== undefined && parseLsn((await first.status())['replication'].acknowledgedLsn) > written.commitLsn;
  });
  const acknowledgedAt = handedOff(first.logs).length;
  await first.waitForLog(() => handedOff(first.logs).length >= acknowledgedAt + 50);
  await first.kill('SIGKILL');
  killed = true;
  await writing;
  await writer.end();

  const { rows } = await db.query<{ lsn: string }>(
    `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`,
    [db.name],
  );
  const confirmed = parseLsn(rows[0]!.lsn);
  const before = handedOff(first.logs);
  const beforeXids = new Set(before.map((h) => h.xid));

  const second = await start({ LOG_LEVEL: 'debug', HISTORY_EVENTS: '20' });
  const lastXid = writerXids.at(-1)!;
  await second.waitForLog((l) => l['msg'] === 'transaction handed off' && l['xid'] === lastXid);
  const after = handedOff(second.logs);
  const afterXids = new Set(after.map((h) => h.xid));
  const all = new Map([...before, ...after].map((h) => [h.xid, h]));

  t.log(`handed off before the kill: ${before.length}, after the restart: ${after.length}, written: ${writerXids.length}`);
  t.log(`confirmed_flush_lsn after the kill: ${rows[0]!.lsn}`);

  // Nothing written is missing from what the two servers handed on.
  t.deepEqual(writerXids.filter((xid) => !all.has(xid)), []);
  // The slot never acknowledged a transaction the first server had not handed on.
  const ackedButNotHandedOn = [...all.values()].filter((h) => h.commitLsn < confirmed && !beforeXids.has(h.xid));
  t.deepEqual(ackedButNotHandedOn, []);
  // After the restart, every transaction from the confirmed position on was read again.
  const fromConfirmed = [...all.values()].filter((h) => h.commitLsn >= confirmed);
  t.deepEqual(fromConfirmed.filter((h) => !afterXids.has(h.xid)), []);
  // And the restart really did have work: transactions committed while the server was down.
  t.true(writerXids.some((xid) => !beforeXids.has(xid) && afterXids.has(xid)));
  // The first server's acknowledgements took effect: the restart did not start from the beginning.
  t.true(confirmed > initial);
  t.true(after.length < writerXids.length);
  // The position the server exposes reached the end of what was written.
  const status = await second.status();
  t.true(parseLsn(status['replication'].handedOffLsn) > confirmed);
});
