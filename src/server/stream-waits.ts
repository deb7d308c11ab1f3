import type { Database } from '../db/database.js';
import { seqLsn } from '../events/seq.js';
import type { EventLog } from '../log/event-log.js';
import type { Lsn } from '../replication/lsn.js';
import { WalFlushPosition } from '../replication/wal-flush-position.js';
import type { StreamSource } from './pipeline.js';

/** What `subscribe` waits for: the stream to have routed what is committed (catch-up) or to have passed a `seq` (resume). */
export interface StreamWaits {
  /** Resolves once the stream has routed every commit made before the call (or after 5 s, if it cannot; at once while it is down). */
  caughtUp(): Promise<void>;
  /** Whether the stream has reached the change `seq` names (see {@link streamPassed}). */
  passed(seq: string): Promise<boolean>;
  /** Whether the stream has routed every commit before `lsn` (a snapshot's cut), waiting up to a minute. */
  reached(lsn: Lsn): Promise<boolean>;
}

/** The waits over one node's stream and event log. */
export function streamWaits(source: StreamSource, log: EventLog, db: Database): StreamWaits {
  const flush = new WalFlushPosition(db);
  return {
    caughtUp: async () => {
      // With the stream down there is nothing to wait for: what is committed now arrives when it is back.
      if (!source.state().connected) return;
      await source.waitFor(await flush.current(), 5000);
    },
    passed: (seq) => streamPassed(source, log, flush, seq),
    reached: (lsn) => source.waitFor(lsn, 60_000),
  };
}

/**
 * Whether the stream has reached the change `seq` names: its event is in the
 * log (events of a transaction enter it as they are decoded), or the stream
 * handed off a later position. After a restart the stream may be re-reading a
 * long backlog, so this waits as long as the stream makes progress (up to a
 * minute) rather than a fixed time; a stalled or disconnected stream gives up
 * after a second without progress. A seq at or past the database's flush
 * position was never produced by it (another database, or made up): no wait.
 */
async function streamPassed(source: StreamSource, log: EventLog, flush: WalFlushPosition, seq: string): Promise<boolean> {
  if (log.lastSeq >= seq) return true;
  const target = seqLsn(seq) + 1n;
  const flushed = await flush.current().catch(() => null); // the database is down: the wait below decides
  if (flushed !== null && target > flushed) return false;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (log.lastSeq >= seq) return true;
    const changes = source.state().changes;
    if (await source.waitFor(target, 1000)) return true;
    if (log.lastSeq >= seq) return true;
    if (source.state().changes === changes || Date.now() > deadline) return false;
  }
}
