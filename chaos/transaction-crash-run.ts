/**
 * A crash in the middle of delivering one big transaction (issue 5): many
 * rows, or rows with TOAST-sized values. The server is killed with SIGKILL
 * after the client has received part of it; the restarted server reads the
 * transaction again from the slot, and the client, resuming with `since` its
 * last `seq`, must get exactly the rest, in order, with every value intact.
 *
 * Frames are checked as they arrive rather than kept, so the full-size run
 * (500,000 rows) does not need the test process to hold them.
 */
import { createHash } from 'node:crypto';
import type { TestDatabase } from '../test/helpers/database.js';
import { dataOf, LiveClient } from '../test/helpers/live-client.js';
import { ServerProcess } from '../test/helpers/server-process.js';
import { signToken } from '../test/helpers/tokens.js';

/** `rows`: a row count; `toast`: rows of 1 MiB text each. */
export type TransactionKind = 'rows' | 'toast';

export const TRANSACTION_SCHEMA = `
  CREATE TABLE big (id int PRIMARY KEY, payload text);
  CREATE TABLE toast (id int PRIMARY KEY, body text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('big', 'public'), ('toast', 'public');`;

export interface TransactionCrashOptions {
  readonly kind: TransactionKind;
  readonly rows: number;
  /** Events the client receives before the server is killed. */
  readonly killAfter: number;
  /** Server configuration on top of the test defaults. */
  readonly env: Record<string, string>;
  readonly log?: (line: string) => void;
  /** How a server is started on `db` (default `ServerProcess.start`); a test passes its fixture's, which kills what it started. */
  readonly start?: (env: Record<string, string>) => Promise<ServerProcess>;
}

export interface TransactionCrashReport {
  /** Events before the kill, and after the resume. */
  readonly before: number;
  readonly after: number;
  readonly resumed: boolean;
  /** From the commit to the last event, including the crash and restart. */
  readonly seconds: number;
  readonly problems: readonly string[];
}

const ONE_MIB_OF_HEX = `(SELECT string_agg(md5(g::text || ':' || n::text || random()::text), '') FROM generate_series(1, 32768) n)`;

/** Runs one crash in the middle of a big transaction on `db` (holding {@link TRANSACTION_SCHEMA}). */
export async function runTransactionCrash(db: TestDatabase, options: TransactionCrashOptions): Promise<TransactionCrashReport> {
  const log = options.log ?? (() => {});
  const table = options.kind === 'rows' ? 'big' : 'toast';
  const reader = new CheckingReader(options.rows, table === 'big' ? 'payload' : 'body');
  const start = options.start ?? ((env: Record<string, string>) => ServerProcess.start(db, env));
  let server = await start(options.env);
  const token = signToken({ sub: 'reader' });
  try {
    const first = await LiveClient.connect(`${server.liveUrl}?token=${token}`);
    await first.subscribe(table);
    reader.attach(first);
    const insert =
      options.kind === 'rows'
        ? `INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, ${options.rows}) g`
        : `INSERT INTO toast SELECT g, ${ONE_MIB_OF_HEX} FROM generate_series(1, ${options.rows}) g`;
    const started = Date.now();
    await db.query(insert);
    await reader.reached(options.killAfter, 120_000);
    await server.kill('SIGKILL');
    const before = reader.received;
    log(`killed the server after ${before} of ${options.rows} events`);

    server = await start(options.env);
    const second = await LiveClient.connect(`${server.liveUrl}?token=${token}`);
    reader.attach(second);
    // The answer waits until the restarted stream has re-read the transaction up to `since`: that takes a while.
    const response = await second.request('subscribe', { topicName: table, since: reader.lastSeq }, 120_000);
    const resumed = dataOf(response, 'subscribe')?.resumed === true;
    if (!resumed) reader.problems.push(`resuming after ${reader.lastSeq} answered ${JSON.stringify(response)}`);
    else await reader.reached(options.rows, 300_000);
    const seconds = (Date.now() - started) / 1000;
    if (resumed && options.kind === 'toast') {
      const { rows } = await db.query<{ id: number; hash: string }>(`SELECT id, md5(body) AS hash FROM toast ORDER BY id`);
      rows.forEach(({ id, hash }) => {
        if (reader.hashes[id] !== hash) reader.problems.push(`toast/${id}: the value received differs from the database's`);
      });
    }
    second.close();
    log(`resumed: ${resumed}; ${reader.received - before} events after the restart; ${seconds.toFixed(1)} s in all`);
    return { before, after: reader.received - before, resumed, seconds, problems: reader.problems };
  } finally {
    await server.kill();
  }
}

/**
 * Expects the rows with ids 1…`rows` in order, each once: checks every
 * frame as it arrives (ids, ascending seqs, the `big` payload) and keeps only
 * an md5 of each TOAST value.
 */
class CheckingReader {
  received = 0;
  lastSeq = '';
  readonly problems: string[] = [];
  readonly hashes: string[] = [];
  readonly #rows: number;
  readonly #column: string;
  #waiter: { count: number; resolve: () => void } | null = null;

  constructor(rows: number, column: string) {
    this.#rows = rows;
    this.#column = column;
  }

  attach(client: LiveClient): void {
    client.socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type !== 'event') return;
      const id = Number(frame.data.id);
      const expected = this.received + 1;
      if (id !== expected && this.problems.length < 5) this.problems.push(`event #${expected} was row ${id}`);
      if (frame.seq <= this.lastSeq && this.problems.length < 5) this.problems.push(`seq ${frame.seq} after ${this.lastSeq}`);
      const value = frame.data.attributes[this.#column] as string;
      if (this.#column === 'payload') {
        if (value !== createHash('md5').update(String(id)).digest('hex').repeat(4) && this.problems.length < 5) this.problems.push(`big/${id}: wrong payload`);
      } else {
        this.hashes[id] = createHash('md5').update(value).digest('hex');
      }
      this.received++;
      this.lastSeq = frame.seq;
      if (this.#waiter && this.received >= this.#waiter.count) this.#waiter.resolve();
    });
  }

  /** Resolves once `count` events arrived; rejects after `timeoutMs`. */
  reached(count: number, timeoutMs: number): Promise<void> {
    if (this.received >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.received} of ${count} events within ${timeoutMs} ms (${this.#rows} rows)`)), timeoutMs);
      this.#waiter = {
        count,
        resolve: () => {
          clearTimeout(timer);
          this.#waiter = null;
          resolve();
        },
      };
    });
  }
}
