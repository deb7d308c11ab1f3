/**
 * The snapshot oracle (docs/snapshots.md): a writer commits changes at a
 * steady rate (inserts, updates, deletes, moves between owners and groups,
 * filter-boundary crossings, some large transactions) on an owner, a group
 * and a public table, while clients subscribe with `snapshot: true` at
 * random moments and fold what they get. Every frame must fit the fold; at
 * quiescence every fold must equal what SQL says its user may read. The
 * server can be killed (SIGKILL) mid-run and the stream cut off (its
 * walsender terminated): a client resubscribes, resuming with `since` when
 * its snapshot had completed, with a fresh snapshot otherwise.
 *
 * Used by test/snapshot-chaos.test.ts (CI size) and `npm run chaos`.
 */
import { LiveClient, type ServerFrame } from '../test/helpers/live-client.js';
import type { TestDatabase } from '../test/helpers/database.js';
import { RowFold } from '../test/helpers/row-fold.js';
import { ServerProcess } from '../test/helpers/server-process.js';
import { signToken } from '../test/helpers/tokens.js';
import { waitFor } from '../test/helpers/wait-for.js';

export const SNAPSHOT_SCHEMA = `
  CREATE TABLE s_owned (id int PRIMARY KEY, owner_id int, n int, note text);
  CREATE TABLE s_team (id int PRIMARY KEY, team text, n int, note text);
  CREATE TABLE s_public (id int PRIMARY KEY, n int, note text);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('s_owned', 'owner', 'owner_id');
  INSERT INTO rowcast.table_policies (table_name, read, group_column, group_claim) VALUES ('s_team', 'group', 'team', 'teams');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('s_public', 'public');
  INSERT INTO s_owned SELECT i, i % 4, i % 100, 'seed' FROM generate_series(1, 2000) AS i;
  INSERT INTO s_team SELECT i, (ARRAY['red','blue','green'])[1 + i % 3], i % 100, 'seed' FROM generate_series(1, 2000) AS i;
  INSERT INTO s_public SELECT i, i % 100, 'seed' FROM generate_series(1, 2000) AS i;`;

const TABLES = ['s_owned', 's_team', 's_public'];

export interface SnapshotRunOptions {
  /** Changes per second the writer aims for. */
  readonly rate: number;
  readonly seconds: number;
  /** Clients, each subscribing once at a random moment of the run. */
  readonly clients: number;
  /** When (fractions of the run) the server is killed with SIGKILL and started again. */
  readonly kills: readonly number[];
  /** When (fractions of the run) the stream's connection is cut. */
  readonly streamCuts: readonly number[];
  readonly env?: Record<string, string>;
  readonly log?: (line: string) => void;
  readonly start?: (env: Record<string, string>) => Promise<ServerProcess>;
}

export interface SnapshotRunReport {
  readonly changes: number;
  readonly transactions: number;
  /** Snapshots completed, resumes with since, fresh snapshots after a resume was refused. */
  readonly snapshots: number;
  readonly resumes: number;
  readonly problems: string[];
}

/** Who a client is and what it reads. */
interface ClientSpec {
  readonly name: string;
  readonly table: string;
  readonly claims: Record<string, unknown>;
  readonly filter?: Record<string, unknown>;
  /** The SQL condition of the rows it may read. */
  readonly where: string;
}

function randomSpec(i: number): ClientSpec {
  const filtered = Math.random() < 0.4;
  const filter = filtered ? { n: { gte: 50 } } : undefined;
  const and = filtered ? ' AND n >= 50' : '';
  const table = TABLES[i % 3]!;
  if (table === 's_owned') {
    const owner = Math.floor(Math.random() * 4);
    return { name: `#${i} owner ${owner}`, table, claims: { sub: String(owner) }, ...(filter ? { filter } : {}), where: `owner_id = ${owner}${and}` };
  }
  if (table === 's_team') {
    const teams = Math.random() < 0.5 ? ['red'] : ['blue', 'green'];
    return { name: `#${i} teams ${teams.join('+')}`, table, claims: { sub: `t${i}`, teams }, ...(filter ? { filter } : {}), where: `team = ANY('{${teams.join(',')}}')${and}` };
  }
  const admin = Math.random() < 0.3;
  return { name: `#${i} ${admin ? 'admin' : 'anyone'}`, table, claims: admin ? { sub: 'admin', role: 'admin' } : { sub: `p${i}` }, ...(filter ? { filter } : {}), where: `TRUE${and}` };
}

/** One client: subscribes with a snapshot, folds, and after a lost connection subscribes again. */
class SnapshotClient {
  fold: RowFold;
  readonly problems: string[] = [];
  snapshots = 0;
  resumes = 0;
  #client: LiveClient | null = null;
  #stopped = false;

  constructor(readonly spec: ClientSpec) {
    this.fold = new RowFold(spec.table);
  }

  /** Connects and subscribes until stopped, through any number of server restarts. */
  async run(url: () => string): Promise<void> {
    while (!this.#stopped) {
      try {
        const client = await LiveClient.connect(`${url()}?token=${signToken(this.spec.claims)}`);
        this.#client = client;
        await this.#subscribe(client);
        await client.closed(24 * 3600_000);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async #subscribe(client: LiveClient): Promise<void> {
    const since = this.fold.done ? this.fold.since : null;
    // A resumed fold goes on; anything else starts again from the snapshot that follows.
    const fold = since !== null ? this.fold : new RowFold(this.spec.table);
    let seen = client.frames.length;
    const pump = (): void => {
      for (; seen < client.frames.length; seen++) {
        const frame: ServerFrame = client.frames[seen]!;
        if (frame.type === 'subscription') this.problems.push(`${this.spec.name}: revoked: ${frame.reason}`);
        fold.apply(frame);
      }
    };
    client.socket.on('message', pump);
    const answer = await client.request('subscribe', { topicName: this.spec.table, snapshot: true, ...(this.spec.filter ? { filter: this.spec.filter } : {}), ...(since !== null ? { since } : {}) }, 120_000);
    if (answer.type !== 'response' || !answer.ok) {
      if (client.closeCode === null) this.problems.push(`${this.spec.name}: subscribe refused: ${JSON.stringify(answer)}`);
      return;
    }
    if ((answer.data as { resumed?: boolean }).resumed === true) this.resumes++;
    else {
      this.snapshots++;
      this.fold = fold;
    }
    pump();
  }

  stop(): void {
    this.#stopped = true;
    this.#client?.close();
  }
}

/** Commits random transactions on the three tables at about `rate` changes per second. */
async function write(db: TestDatabase, rate: number, seconds: number, onProgress: (changes: number) => void): Promise<{ changes: number; transactions: number }> {
  let next = 100_000;
  let changes = 0;
  let transactions = 0;
  const started = Date.now();
  const deadline = started + seconds * 1000;
  let client = await db.client();
  try {
    while (Date.now() < deadline) {
      const large = Math.random() < 0.02;
      const size = large ? 300 : 1 + Math.floor(Math.random() * 8);
      const ops: string[] = [];
      for (let i = 0; i < size; i++) {
        const table = TABLES[Math.floor(Math.random() * 3)]!;
        const id = 1 + Math.floor(Math.random() * 2000);
        const n = Math.floor(Math.random() * 100);
        const roll = Math.random();
        if (roll < 0.3) {
          const values = table === 's_owned' ? `${Math.floor(Math.random() * 4)}, ${n}, 'w'` : table === 's_team' ? `'${['red', 'blue', 'green'][Math.floor(Math.random() * 3)]}', ${n}, 'w'` : `${n}, 'w'`;
          ops.push(`INSERT INTO ${table} VALUES (${next++}, ${values})`);
        } else if (roll < 0.6) ops.push(`UPDATE ${table} SET n = ${n}, note = 'u${changes + i}' WHERE id = ${id}`);
        else if (roll < 0.8 && table === 's_owned') ops.push(`UPDATE s_owned SET owner_id = ${Math.floor(Math.random() * 4)} WHERE id = ${id}`);
        else if (roll < 0.8 && table === 's_team') ops.push(`UPDATE s_team SET team = '${['red', 'blue', 'green'][Math.floor(Math.random() * 3)]}' WHERE id = ${id}`);
        else ops.push(`DELETE FROM ${table} WHERE id = ${id}`);
      }
      try {
        await client.query(`BEGIN; ${ops.join('; ')}; COMMIT`);
        changes += ops.length;
        transactions++;
        onProgress(changes);
      } catch {
        await client.end().catch(() => {});
        client = await db.client();
      }
      const ahead = (changes / rate) * 1000 - (Date.now() - started);
      if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, ahead));
    }
  } finally {
    await client.end().catch(() => {});
  }
  return { changes, transactions };
}

/** Runs the oracle on `db` (made with {@link SNAPSHOT_SCHEMA}). */
export async function runSnapshotOracle(db: TestDatabase, options: SnapshotRunOptions): Promise<SnapshotRunReport> {
  const log = options.log ?? (() => {});
  const env = { PUBLICATION_TABLES: TABLES.join(','), ...options.env };
  const start = options.start ?? ((serverEnv: Record<string, string>) => ServerProcess.start(db, serverEnv));
  let server = await start(env);
  const clients = Array.from({ length: options.clients }, (_, i) => new SnapshotClient(randomSpec(i)));
  const running: Array<Promise<void>> = [];
  const problems: string[] = [];
  try {
    const runMs = options.seconds * 1000;
    const joining = clients.map(async (client) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * runMs * 0.9));
      running.push(client.run(() => server.liveUrl));
    });
    const disrupting = [
      ...options.kills.map(async (at) => {
        await new Promise((resolve) => setTimeout(resolve, at * runMs));
        await server.kill('SIGKILL');
        const started = Date.now();
        server = await start(env);
        log(`server killed at ${Math.round(at * 100)}% of the run; back in ${Date.now() - started} ms`);
      }),
      ...options.streamCuts.map(async (at) => {
        await new Promise((resolve) => setTimeout(resolve, at * runMs));
        const { rows } = await db.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [db.name]);
        if (rows[0]?.pid) await db.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
        log(`stream cut at ${Math.round(at * 100)}% of the run`);
      }),
    ];
    const written = await write(db, options.rate, options.seconds, () => {});
    await Promise.all([...joining, ...disrupting]);
    log(`wrote ${written.changes} changes in ${written.transactions} transactions; ${clients.length} clients`);

    for (const client of clients) {
      const { rows } = await db.query(`SELECT * FROM ${client.spec.table} WHERE ${client.spec.where} ORDER BY id`);
      const want = JSON.stringify(rows.map((row) => [String(row['id']), row]));
      const got = (): string => JSON.stringify([...client.fold.rows.entries()].sort(([a], [b]) => Number(a) - Number(b)));
      try {
        await waitFor(`${client.spec.name}: the fold equal to SQL`, () => client.fold.done && got() === want, 60_000);
      } catch {
        const have = new Map(client.fold.rows);
        const differ = rows.filter((row) => JSON.stringify(have.get(String(row['id']))) !== JSON.stringify(row)).length;
        problems.push(`${client.spec.name}: ${client.fold.done ? '' : 'snapshot not done; '}${have.size} rows folded, SQL has ${rows.length}, ${differ} differ`);
      }
      problems.push(...client.problems, ...client.fold.violations.map((v) => `${client.spec.name}: ${v}`));
    }
    return {
      changes: written.changes,
      transactions: written.transactions,
      snapshots: clients.reduce((sum, c) => sum + c.snapshots, 0),
      resumes: clients.reduce((sum, c) => sum + c.resumes, 0),
      problems,
    };
  } finally {
    for (const client of clients) client.stop();
    await Promise.allSettled(running);
    await server.kill('SIGKILL');
  }
}
