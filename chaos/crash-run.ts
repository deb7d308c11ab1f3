/**
 * The crash run (issue 5): a writer commits changes at a steady rate into
 * tables with different read policies while clients of several users stay
 * subscribed; the server is killed with SIGKILL and Postgres is restarted
 * during the run; clients reconnect with `since` their last `seq`. At the end
 * every client's event sequence is compared with what the writer's log says
 * it may read, in commit order, and its cache with the database.
 *
 * Used at CI size by test/crash.test.ts and at full size by `npm run chaos`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { RunningPostgres } from '../src/db/embedded-postgres.js';
import type { TestDatabase } from '../test/helpers/database.js';
import { attributesOf, dataOf, isEvent, LiveClient, type EventFrame } from '../test/helpers/live-client.js';
import { ServerProcess } from '../test/helpers/server-process.js';
export { startPrivatePostgres, type PrivatePostgres } from '../test/helpers/private-postgres.js';
import { signToken } from '../test/helpers/tokens.js';

/** Tables, policies and the writer's commit markers. */
export const CRASH_SCHEMA = `
  CREATE TABLE orders (id int PRIMARY KEY, owner_id text, v int NOT NULL);
  CREATE TABLE docs (id int PRIMARY KEY, team text, v int NOT NULL);
  CREATE TABLE news (id int PRIMARY KEY, v int NOT NULL);
  CREATE TABLE audit (id int PRIMARY KEY, v int NOT NULL);
  CREATE TABLE chaos_commits (n int PRIMARY KEY);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('orders', 'owner', 'owner_id');
  INSERT INTO rowcast.table_policies (table_name, read, group_column) VALUES ('docs', 'group', 'team');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('news', 'public'), ('audit', 'admin');`;

type Table = 'orders' | 'docs' | 'news' | 'audit';
const TABLES: readonly Table[] = ['orders', 'docs', 'news', 'audit'];
const TABLE_WEIGHTS: Record<Table, number> = { orders: 0.35, docs: 0.35, news: 0.2, audit: 0.1 };
const OWNERS = ['alice', 'bob', 'carol', 'dave', null];
const TEAMS = ['red', 'blue', 'green', null];

/** A row of any of the tables: `owner_id` in orders, `team` in docs. */
interface Row {
  readonly id: number;
  readonly owner_id?: string | null;
  readonly team?: string | null;
  readonly v: number;
}

/** One committed change, as the writer made it. */
interface Change {
  readonly table: Table;
  readonly old: Row | null;
  readonly new: Row | null;
}

/** A client identity and what it subscribes to. */
export interface ReaderSpec {
  readonly name: string;
  readonly claims: { sub: string; role?: string; groups?: string[] };
  readonly topics: readonly Table[];
  /** A filter on `orders.v` (`v < lt`). */
  readonly vBelow?: number;
}

/** Owners, group members (one and two groups), public readers, an admin, and a filter. */
export const READERS: readonly ReaderSpec[] = [
  { name: 'admin', claims: { sub: 'root', role: 'admin' }, topics: ['orders', 'docs', 'news', 'audit'] },
  { name: 'alice', claims: { sub: 'alice' }, topics: ['orders', 'docs', 'news'] },
  { name: 'bob (red)', claims: { sub: 'bob', groups: ['red'] }, topics: ['orders', 'docs', 'news'] },
  { name: 'carol (red, blue)', claims: { sub: 'carol', groups: ['red', 'blue'] }, topics: ['orders', 'docs'] },
  { name: 'dave, v < 3', claims: { sub: 'dave' }, topics: ['orders'], vBelow: 3 },
];

/**
 * Something done to the running system, `at` seconds into the writing.
 * `kill-leader` (cluster runs): SIGKILL the node holding the slot, then start
 * it again (it rejoins as a follower).
 */
export type Disruption = { readonly at: number; readonly kind: 'kill-server' | 'terminate-server' | 'restart-postgres' | 'kill-leader' };

export interface CrashRunOptions {
  /** Target changes per second. */
  readonly rate: number;
  readonly seconds: number;
  readonly disruptions: readonly Disruption[];
  /** Readers per spec of {@link READERS}. */
  readonly copies: number;
  /** Each reader also drops its connection and resumes after about this many events (0: never). */
  readonly reconnectEvery: number;
  /** Server configuration on top of the test defaults. */
  readonly env: Record<string, string>;
  /**
   * Nodes (default 1). More than one is a cluster: `env` must hold
   * `REDIS_URL`; readers are spread over the nodes and each reconnect goes
   * to the next one.
   */
  readonly nodes?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** How a server is started on the run's database (default `ServerProcess.start`); a test passes its fixture's, which kills what it started. */
  readonly start?: (env: Record<string, string>) => Promise<ServerProcess>;
}

/** What a run found. */
export interface CrashRunReport {
  readonly changes: number;
  readonly transactions: number;
  /** Changes per second actually committed. */
  readonly rate: number;
  readonly disruptions: ReadonlyArray<Disruption & { readonly tookMs: number }>;
  readonly readers: ReadonlyArray<{ name: string; expected: number; received: number; connections: number; failedSubscribes: number }>;
  /** Empty when every client got exactly what it may read. */
  readonly problems: readonly string[];
  /** The last server's `/status` at the end, and the messages of its log lines. */
  readonly status: Record<string, any>;
  readonly serverLog: readonly string[];
}

/** One line saying what a run did: changes, disruptions, and each reader's events over its connections. */
export function describeCrashRun(r: CrashRunReport): string {
  return (
    `${r.changes} changes in ${r.transactions} transactions (${r.rate}/s); ` +
    r.disruptions.map((d) => `${d.kind} at ${d.at}s took ${d.tookMs} ms`).join(', ') +
    `; ${r.readers.map((x) => `${x.name}: ${x.received}/${x.expected} over ${x.connections} connections`).join('; ')}`
  );
}

/**
 * Runs the crash test on `db` (already holding {@link CRASH_SCHEMA}).
 * `postgres` is needed for `restart-postgres` disruptions.
 */
export async function runCrashTest(db: TestDatabase, options: CrashRunOptions, postgres?: RunningPostgres): Promise<CrashRunReport> {
  const log = options.log ?? (() => {});
  const env = { PUBLICATION_TABLES: TABLES.join(','), ...options.env };
  const start = options.start ?? ((serverEnv: Record<string, string>) => ServerProcess.start(db, serverEnv));
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < (options.nodes ?? 1); i++) servers.push(await start(env));
  } catch (error) {
    await Promise.all(servers.map((node) => node.kill()));
    throw error;
  }
  let server = servers[0]!;
  const problems: string[] = [];
  const readers = READERS.flatMap((spec) =>
    Array.from({ length: options.copies }, (_, i) => new Reader(options.copies > 1 ? { ...spec, name: `${spec.name} #${i + 1}` } : spec, options.reconnectEvery)),
  );
  // Reader i starts on node i and moves to the next node on every reconnect.
  const running = readers.map((reader, i) => {
    let next = i;
    return reader.run(() => servers[next++ % servers.length]!.liveUrl);
  });
  try {
    await Promise.all(readers.map((reader) => reader.subscribed));
    const writer = new Writer(db.url);
    const disruptions: Array<Disruption & { tookMs: number }> = [];
    const disrupting = (async () => {
      for (const disruption of options.disruptions) {
        await writer.reached(disruption.at * options.rate);
        const started = Date.now();
        if (disruption.kind === 'kill-server') {
          await server.kill('SIGKILL');
          server = await start(env);
          servers[0] = server;
        } else if (disruption.kind === 'kill-leader') {
          const roles = await Promise.all(servers.map((node) => node.status().then((status) => status['cluster']?.role, () => null)));
          const leader = roles.indexOf('leader');
          if (leader < 0) throw new Error(`kill-leader: no leader among ${roles.join(', ')}`);
          await servers[leader]!.kill('SIGKILL');
          servers[leader] = await start(env);
          log(`killed the leader (node ${leader + 1} of ${servers.length}); it rejoined`);
        } else if (disruption.kind === 'terminate-server') {
          // A graceful shutdown must end with exit code 0.
          const code = await server.kill('SIGTERM');
          if (code !== 0) problems.push(`SIGTERM: the server exited with ${code}`);
          log(`SIGTERM: exited ${code} after ${Date.now() - started} ms`);
          server = await start(env);
          servers[0] = server;
        } else {
          if (!postgres) throw new Error('restart-postgres needs a private Postgres');
          await postgres.stop();
          await postgres.start();
        }
        disruptions.push({ ...disruption, tookMs: Date.now() - started });
        log(`${disruption.kind} at ${writer.changes.length} changes: back after ${Date.now() - started} ms`);
      }
    })();
    const started = Date.now();
    await Promise.all([writer.run(options.rate, options.seconds, log), disrupting]);
    const seconds = (Date.now() - started) / 1000;
    log(`wrote ${writer.changes.length} changes in ${writer.transactions} transactions, ${Math.round(writer.changes.length / seconds)}/s`);

    const expected = readers.map((reader) => expectedFrames(reader.spec, writer.changes));
    await waitForDelivery(readers, expected, log);
    for (const reader of readers) reader.stop();
    await Promise.all(running);

    const tables = await readTables(db);
    problems.push(...compareWithModel(writer, tables));
    readers.forEach((reader, i) => problems.push(...reader.problems, ...compareReader(reader, expected[i]!, tables)));
    return {
      changes: writer.changes.length,
      transactions: writer.transactions,
      rate: Math.round(writer.changes.length / seconds),
      disruptions,
      readers: readers.map((reader, i) => ({
        name: reader.spec.name,
        expected: expected[i]!.length,
        received: reader.events.length,
        connections: reader.connections,
        failedSubscribes: reader.failedSubscribes,
      })),
      problems,
      status: await servers[0]!.status(),
      serverLog: servers.flatMap((node) => node.logs.map((line) => String(line['msg']))),
    };
  } finally {
    for (const reader of readers) reader.stop();
    await Promise.allSettled(running);
    await Promise.all(servers.map((node) => node.kill()));
  }
}

/** Waits until every reader has at least what it should get, or nothing moved for 30 s. */
async function waitForDelivery(readers: readonly Reader[], expected: readonly string[][], log: (line: string) => void): Promise<void> {
  let total = -1;
  let movedAt = Date.now();
  for (;;) {
    const behind = readers.filter((reader, i) => reader.events.length < expected[i]!.length);
    if (behind.length === 0) return;
    const now = readers.reduce((sum, reader) => sum + reader.events.length, 0);
    if (now !== total) {
      total = now;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > 30_000) {
      log(`stalled: ${behind.map((r) => `${r.spec.name} ${r.events.length}/${expected[readers.indexOf(r)]!.length}`).join(', ')}`);
      return;
    }
    await delay(50);
  }
}

/**
 * The one writer: sequential transactions, so commit order is the order of
 * its log. Each transaction also inserts its number into `chaos_commits`; when
 * the connection breaks mid-commit, that row says whether it committed.
 */
class Writer {
  readonly changes: Change[] = [];
  transactions = 0;
  readonly #url: string;
  readonly #rows = new Map<Table, Map<number, Row>>(TABLES.map((t) => [t, new Map()]));
  #nextId = 1;
  #waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor(url: string) {
    this.#url = url;
  }

  /** Resolves once `count` changes are committed. */
  reached(count: number): Promise<void> {
    if (this.changes.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  async run(rate: number, seconds: number, log: (line: string) => void): Promise<void> {
    const total = Math.round(rate * seconds);
    let { client } = await this.#recover(0);
    const start = Date.now();
    while (this.changes.length < total) {
      const n = this.transactions + 1;
      const tx = this.#transaction(Math.min(total - this.changes.length, 1 + Math.floor(Math.random() * 49)));
      const text = `BEGIN; ${tx.map(toSql).join('; ')}; INSERT INTO chaos_commits VALUES (${n}); COMMIT;`;
      let committed: boolean;
      try {
        await client.query(text);
        committed = true;
      } catch (error) {
        log(`writer: ${(error as Error).message}; reconnecting`);
        await client.end().catch(() => {});
        ({ client, committed } = await this.#recover(n));
      }
      if (committed) this.#apply(tx);
      const ahead = start + (this.changes.length / rate) * 1000 - Date.now();
      if (ahead > 0) await delay(ahead);
    }
    await client.end();
  }

  /** A new connection, and whether transaction `n` committed, once the database answers again. */
  async #recover(n: number): Promise<{ client: pg.Client; committed: boolean }> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const client = new pg.Client({ connectionString: this.#url });
      client.on('error', () => {});
      try {
        await client.connect();
        const { rowCount } = await client.query('SELECT 1 FROM chaos_commits WHERE n = $1', [n]);
        return { client, committed: rowCount === 1 };
      } catch (error) {
        await client.end().catch(() => {});
        if (Date.now() > deadline) throw error;
        await delay(100);
      }
    }
  }

  /** `size` changes against the current rows, each row touched at most once. */
  #transaction(size: number): Change[] {
    const touched = new Set<string>();
    const tx: Change[] = [];
    for (let attempts = 0; tx.length < size && attempts < size * 4; attempts++) {
      const table = pickTable();
      const rows = this.#rows.get(table)!;
      const dice = Math.random();
      if (rows.size < 40 || dice < 0.4) {
        const id = this.#nextId++;
        tx.push({ table, old: null, new: newRow(table, id) });
        touched.add(`${table}/${id}`);
        continue;
      }
      const old = randomRow(rows);
      if (touched.has(`${table}/${old.id}`)) continue;
      touched.add(`${table}/${old.id}`);
      tx.push({ table, old, new: dice < 0.88 ? changedRow(table, old) : null });
    }
    return tx;
  }

  #apply(tx: readonly Change[]): void {
    for (const change of tx) {
      const rows = this.#rows.get(change.table)!;
      if (change.new) rows.set(change.new.id, change.new);
      else rows.delete(change.old!.id);
      this.changes.push(change);
    }
    this.transactions++;
    const reached = this.#waiters.filter((w) => w.count <= this.changes.length);
    this.#waiters = this.#waiters.filter((w) => w.count > this.changes.length);
    for (const waiter of reached) waiter.resolve();
  }

  /** The rows the writer believes each table holds. */
  rows(table: Table): ReadonlyMap<number, Row> {
    return this.#rows.get(table)!;
  }
}

function pickTable(): Table {
  let dice = Math.random();
  for (const table of TABLES) {
    dice -= TABLE_WEIGHTS[table];
    if (dice < 0) return table;
  }
  return 'orders';
}

const pick = <T>(values: readonly T[]): T => values[Math.floor(Math.random() * values.length)]!;

function randomRow(rows: ReadonlyMap<number, Row>): Row {
  let skip = Math.floor(Math.random() * rows.size);
  for (const row of rows.values()) if (skip-- === 0) return row;
  throw new Error('no rows');
}

function newRow(table: Table, id: number): Row {
  if (table === 'orders') return { id, owner_id: pick(OWNERS), v: 0 };
  if (table === 'docs') return { id, team: pick(TEAMS), v: 0 };
  return { id, v: 0 };
}

/** An update: a move to another owner or team (40% where there is one), else the next version. */
function changedRow(table: Table, old: Row): Row {
  const move = Math.random() < 0.4;
  if (table === 'orders' && move) return { ...old, owner_id: pick(OWNERS), v: old.v + 1 };
  if (table === 'docs' && move) return { ...old, team: pick(TEAMS), v: old.v + 1 };
  return { ...old, v: old.v + 1 };
}

const literal = (value: string | null | undefined) => (value == null ? 'NULL' : `'${value}'`);

function toSql({ table, old, new: row }: Change): string {
  if (row === null) return `DELETE FROM ${table} WHERE id = ${old!.id}`;
  const columns = table === 'orders' ? `owner_id = ${literal(row.owner_id)}, ` : table === 'docs' ? `team = ${literal(row.team)}, ` : '';
  if (old !== null) return `UPDATE ${table} SET ${columns}v = ${row.v} WHERE id = ${row.id}`;
  if (table === 'orders') return `INSERT INTO orders (id, owner_id, v) VALUES (${row.id}, ${literal(row.owner_id)}, 0)`;
  if (table === 'docs') return `INSERT INTO docs (id, team, v) VALUES (${row.id}, ${literal(row.team)}, 0)`;
  return `INSERT INTO ${table} (id, v) VALUES (${row.id}, 0)`;
}

/** The partitions of a row a reader sees it through (docs/protocol.md): its own, its groups', everyone's, or the admin one. */
function partitions(spec: ReaderSpec, table: Table, row: Row | null): string[] {
  if (row === null) return [];
  if (spec.claims.role === 'admin') return ['admin'];
  switch (table) {
    case 'orders':
      return row.owner_id === spec.claims.sub ? ['own'] : [];
    case 'docs':
      return row.team != null && (spec.claims.groups ?? []).includes(row.team) ? [row.team] : [];
    case 'news':
      return ['public'];
    case 'audit':
      return [];
  }
}

function passes(spec: ReaderSpec, table: Table, row: Row | null): boolean {
  return row !== null && (spec.vBelow === undefined || table !== 'orders' || row.v < spec.vBelow);
}

/** A frame as compared: topic, event, id, and the version for creates and updates. */
function frameKey(topic: string, event: string, id: string | number, v: unknown): string {
  return event === 'delete' ? `${topic} delete ${id}` : `${topic} ${event} ${id} v${v}`;
}

/**
 * What a reader may receive for the writer's changes, in commit order: per
 * partition it leaves, a delete; per partition it stays in or enters, an
 * update, create or delete by whether the row passes its filter before and
 * after (the router's rules, event-router.ts).
 */
function expectedFrames(spec: ReaderSpec, changes: readonly Change[]): string[] {
  const frames: string[] = [];
  for (const { table, old, new: row } of changes) {
    if (!spec.topics.includes(table)) continue;
    const before = partitions(spec, table, old);
    const after = partitions(spec, table, row);
    const wasIn = passes(spec, table, old);
    const isIn = passes(spec, table, row);
    const id = (row ?? old)!.id;
    for (const p of before) if (!after.includes(p) && wasIn) frames.push(frameKey(table, 'delete', id, null));
    for (const p of after) {
      const kind = !before.includes(p) ? (isIn ? 'create' : null) : wasIn && isIn ? 'update' : wasIn ? 'delete' : isIn ? 'create' : null;
      if (kind) frames.push(frameKey(table, kind, id, row!.v));
    }
  }
  return frames;
}

/** A client that stays subscribed: it reconnects and resumes with `since` whenever its connection ends. */
class Reader {
  readonly spec: ReaderSpec;
  readonly events: EventFrame[] = [];
  readonly problems: string[] = [];
  connections = 0;
  failedSubscribes = 0;
  /** Resolves once the first subscription is live. */
  readonly subscribed: Promise<void>;
  #onSubscribed!: () => void;
  #client: LiveClient | null = null;
  #stopped = false;
  readonly #reconnectEvery: number;

  constructor(spec: ReaderSpec, reconnectEvery: number) {
    this.spec = spec;
    this.#reconnectEvery = reconnectEvery;
    this.subscribed = new Promise((resolve) => (this.#onSubscribed = resolve));
  }

  async run(url: () => string): Promise<void> {
    const token = signToken(this.spec.claims);
    while (!this.#stopped) {
      let client: LiveClient;
      try {
        client = await LiveClient.connect(`${url()}?token=${token}`);
      } catch {
        await delay(20);
        continue;
      }
      this.#client = client;
      if (this.#stopped) break;
      this.connections++;
      try {
        await this.#follow(client);
      } catch (error) {
        if (client.closeCode === null && !this.#stopped) this.problems.push(`${this.spec.name}: ${(error as Error).message}`);
      }
      client.close();
    }
  }

  async #follow(client: LiveClient): Promise<void> {
    // The seq of the last frame, with its part when it has one (a move: delete /1, then create /2).
    const last = this.events.at(-1);
    const since = last === undefined ? undefined : last.part ? `${last.seq}/${last.part}` : last.seq;
    const response = await client.request('subscribe', {
      topicName: this.spec.topics.join(','),
      ...(this.spec.vBelow !== undefined ? { filter: { v: { lt: this.spec.vBelow } } } : {}),
      ...(since !== undefined ? { since } : {}),
    });
    const answer = dataOf(response, 'subscribe');
    if (answer === null) {
      // Say, while Postgres restarts (INTERNAL): a client tries again.
      this.failedSubscribes++;
      await delay(100);
      return;
    }
    if (since !== undefined && !answer.resumed) this.problems.push(`${this.spec.name}: resumed: false for since ${since}`);
    this.#onSubscribed();
    let left = this.#reconnectEvery > 0 ? Math.ceil(this.#reconnectEvery * (0.5 + Math.random())) : Infinity;
    while (!this.#stopped && left-- > 0) {
      this.events.push(await client.next(isEvent, 120_000));
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#client?.close();
  }
}

type Tables = ReadonlyMap<Table, ReadonlyMap<number, Row>>;

async function readTables(db: TestDatabase): Promise<Tables> {
  const tables = new Map<Table, Map<number, Row>>();
  for (const table of TABLES) {
    const { rows } = await db.query<Row>(`SELECT * FROM ${table}`);
    tables.set(table, new Map(rows.map((row) => [row.id, row])));
  }
  return tables;
}

/** The writer's log must end where the database is, or the expectations are wrong. */
function compareWithModel(writer: Writer, tables: Tables): string[] {
  const problems: string[] = [];
  for (const table of TABLES) {
    const model = writer.rows(table);
    const actual = tables.get(table)!;
    if (model.size !== actual.size) problems.push(`writer's model of ${table}: ${model.size} rows, database: ${actual.size}`);
    for (const [id, row] of model) {
      if (JSON.stringify(actual.get(id)) !== JSON.stringify(row)) problems.push(`writer's model of ${table}/${id} differs from the database`);
    }
  }
  return problems;
}

/** Exactly the expected frames, seqs strictly ascending, and a cache equal to what the database says it may read. */
function compareReader(reader: Reader, expected: readonly string[], tables: Tables): string[] {
  const name = reader.spec.name;
  const problems: string[] = [];
  const received = reader.events.map((e) => frameKey(e.topic, e.event, e.data.id, attributesOf(e)['v']));
  // One seq per change; a row moving between two partitions the reader sees it through (two of its
  // groups) is the one exception: delete, then create, with the same seq.
  const events = reader.events;
  const backwards = events.filter((e, i) => {
    const previous = events[i - 1];
    if (!previous || e.seq > previous.seq) return false;
    return !(e.seq === previous.seq && previous.event === 'delete' && e.event === 'create' && e.data.id === previous.data.id);
  }).length;
  if (backwards > 0) problems.push(`${name}: ${backwards} events whose seq does not ascend (duplicates or out of order)`);
  const first = received.findIndex((key, i) => key !== expected[i]);
  if (first !== -1 || received.length !== expected.length) {
    const at = first === -1 ? Math.min(received.length, expected.length) : first;
    problems.push(
      `${name}: received ${received.length} events, expected ${expected.length}; first difference at #${at}: ` +
        `got ${JSON.stringify(received[at])}, expected ${JSON.stringify(expected[at])}`,
    );
  }
  const cache = new Map<string, unknown>();
  for (const event of reader.events) {
    const key = `${event.topic}/${event.data.id}`;
    if (event.event === 'delete') cache.delete(key);
    else cache.set(key, attributesOf(event)['v']);
  }
  const visible = new Map<string, number>();
  for (const table of reader.spec.topics) {
    for (const row of tables.get(table)!.values()) {
      if (partitions(reader.spec, table, row).length > 0 && passes(reader.spec, table, row)) visible.set(`${table}/${row.id}`, row.v);
    }
  }
  const wrong = [...new Set([...cache.keys(), ...visible.keys()])].filter((key) => cache.get(key) !== visible.get(key));
  if (wrong.length > 0) problems.push(`${name}: cache differs from the database on ${wrong.length} rows, e.g. ${wrong.slice(0, 3).join(', ')}`);
  return problems;
}
