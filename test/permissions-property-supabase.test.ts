/**
 * The permission property through the Supabase door: the random scenarios of
 * permissions-property.test.ts (users, groups, policies, filters, writes),
 * with every user connected twice, to `/live` and with the real
 * `@supabase/realtime-js` client to `/realtime/v1/websocket` (one
 * `postgres_changes` channel per table, the user's JWT as the apikey). After
 * every write, each user's Supabase changes, mapped back (INSERT/UPDATE/DELETE
 * → create/update/delete, `new` or, for a DELETE, `old` → the row), are
 * exactly what `/live` delivered to that user: the same events, in the same
 * order, with the same rows, and the same refusals and revocations. Both
 * streams are also checked against the model, as the /live test does.
 */
import type { RealtimeChannel, RealtimeClient } from '@supabase/realtime-js';
import test from 'ava';
import fc from 'fast-check';
import { attributesOf, isOk, type EventFrame, type LiveClient } from './helpers/live-client.js';
import { TABLES, mayRead, opSql, passes, policySql, readableSql, scenario, type Condition, type Scenario } from './helpers/perm-model.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { withServer, type ServerFixture } from './helpers/with-server.js';

type Vsn = '1.0.0' | '2.0.0';
type Door = 'live' | 'supabase';
type Row = Record<string, unknown>;

/** A change as realtime-js hands it to a `postgres_changes` callback. */
interface Change {
  schema: string;
  table: string;
  commit_timestamp: string;
  eventType: 'INSERT' | 'UPDATE' | 'DELETE';
  new: Row;
  old: Row;
  errors: unknown;
}

/** What one user's realtime-js client received, in arrival order, with the channel it came on. */
type Received =
  | { kind: 'change'; tbl: number; gen: number; change: Change }
  | { kind: 'system'; tbl: number; gen: number; message: Row }
  | { kind: 'marker'; change: Change }
  | { kind: 'marker-system'; message: Row };

/** A delivery, whichever door it came through: a row event, or the end of a subscription. */
type Delivery =
  | { table: number; event: 'create' | 'update' | 'delete'; id: string; ts: string; row: Row; old?: Row }
  | { table: number; revoked: true };
type RowDelivery = Extract<Delivery, { event: string }>;

const KIND = { INSERT: 'create', UPDATE: 'update', DELETE: 'delete' } as const;
const WAIT_MS = 10_000;

/** The PostgREST filter string of a condition on `val` (what a Supabase binding takes). */
function postgrestFilter(c: Condition): string {
  if ('eq' in c) return `val=eq.${c.eq}`;
  if ('neq' in c) return `val=neq.${c.neq}`;
  if ('lt' in c) return `val=lt.${c.lt}`;
  if ('gte' in c) return `val=gte.${c.gte}`;
  return `val=in.(${c.in.join(',')})`;
}

/** JSON with object keys sorted, so that rows compare by content. */
function canon(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Row).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** A /live event frame as a delivery (an update without `old` compares with the key realtime-js then gets). */
function fromLive(tbl: number, frame: EventFrame): RowDelivery {
  if (frame.event === 'new-message') throw new Error(`a message on a table topic: ${JSON.stringify(frame)}`);
  const row = attributesOf(frame) as Row;
  const delivery: RowDelivery = { table: tbl, event: frame.event, id: frame.data.id, ts: frame.ts, row };
  if (frame.event === 'update') delivery.old = (frame.data.old as Row | undefined) ?? { id: row['id'] };
  return delivery;
}

/** A realtime-js change mapped back: the event kind, and `new` (or, for a DELETE, `old`) as the row. */
function fromSupabase(tbl: number, name: string, change: Change): RowDelivery {
  if (change.schema !== 'public' || change.table !== name || change.errors !== null || !(change.eventType in KIND)) {
    throw new Error(`a malformed change on the channel of ${name}: ${JSON.stringify(change)}`);
  }
  const row = change.eventType === 'DELETE' ? change.old : change.new;
  const delivery: RowDelivery = { table: tbl, event: KIND[change.eventType], id: String(row['id']), ts: change.commit_timestamp, row };
  if (change.eventType === 'UPDATE') delivery.old = change.old;
  return delivery;
}

/** The index of the first item at or after `from` that matches; fails loudly after `timeoutMs`. */
async function waitIn<T>(inbox: Inbox<T>, from: number, match: (item: T) => boolean, what: string, timeoutMs = WAIT_MS): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (let i = from; i < inbox.items.length; i++) if (match(inbox.items[i]!)) return i;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`${what}: not received within ${timeoutMs} ms; received meanwhile: ${JSON.stringify(inbox.items.slice(from))}`);
    await inbox.atLeast(inbox.items.length + 1, left).catch(() => {}); // the deadline is checked above
  }
}

/** One user's two connections and how far each has been read. */
interface Person {
  readonly live: LiveClient;
  readonly supabase: RealtimeClient;
  readonly inbox: Inbox<Received>;
  /** Per table: the channel of its binding and that join's number (null: never joined). */
  readonly channels: Array<{ readonly channel: RealtimeChannel; readonly gen: number } | null>;
  liveCursor: number;
  supabaseCursor: number;
  readonly seen: Set<string>;
}

let caseNumber = 0;
let joinNumber = 0;

async function runScenario(fixture: ServerFixture, s: Scenario, vsn: Vsn): Promise<void> {
  const { db, connect, server } = fixture;
  const n = caseNumber++;
  const names = Array.from({ length: TABLES }, (_, i) => `s${n}_t${i}`);
  const marker = `s${n}_marker`;
  await db.query(
    names.map((name) => `CREATE TABLE ${name} (id int PRIMARY KEY, owner text, owner2 text, grp text, grp2 text, val int NOT NULL);`).join('\n') +
      `CREATE TABLE ${marker} (id int PRIMARY KEY);` +
      `INSERT INTO rowcast.table_policies (table_name, read) VALUES ('${marker}', 'public');` +
      names.map((name, i) => `${policySql(name, s.policies[i]!)};`).join('\n'),
  );
  const policies = [...s.policies];
  const people: Person[] = [];
  const supabaseClients: RealtimeClient[] = [];
  /** caches[door][user][table]: id → row, or null while not subscribed. */
  const caches: Record<Door, Array<Array<Map<number, Row> | null>>> = { live: [], supabase: [] };
  const who = (u: number) => `user ${u} ${JSON.stringify(s.users[u])}`;

  /** Subscribes user `u` to table `tbl` on both doors (a new channel on Supabase); both must agree on whether it may. */
  async function trySubscribe(u: number, tbl: number): Promise<void> {
    const person = people[u]!;
    const filter = s.users[u]!.filters[tbl]!;
    const response = await person.live.request('subscribe', { topicName: names[tbl], ...(filter ? { filter: { val: filter } } : {}) });
    const previous = person.channels[tbl];
    if (previous) {
      const status = await person.supabase.removeChannel(previous.channel);
      if (status !== 'ok') throw new Error(`${who(u)}: leaving the channel of ${names[tbl]} answered ${status}`);
    }
    const gen = joinNumber++;
    const channel = person.supabase
      .channel(`s${n}_u${u}_t${tbl}_j${gen}`)
      .on('postgres_changes', { event: '*', schema: 'public', table: names[tbl]!, ...(filter ? { filter: postgrestFilter(filter) } : {}) }, (change) =>
        person.inbox.add({ kind: 'change', tbl, gen, change: change as unknown as Change }),
      )
      .on('system', {}, (message: Row) => person.inbox.add({ kind: 'system', tbl, gen, message }));
    person.channels[tbl] = { channel, gen };
    await subscribed(channel);
    // The join's reply is followed by a system message: "Subscribed to PostgreSQL", or the binding's error.
    const at = await waitIn(person.inbox, person.supabaseCursor, (item) => item.kind === 'system' && item.gen === gen, `${who(u)}: the system message after joining ${names[tbl]}`);
    const before = person.inbox.items.slice(person.supabaseCursor, at);
    if (before.length > 0) throw new Error(`${who(u)}: unexpected Supabase messages before the join of ${names[tbl]} was confirmed: ${JSON.stringify(before)}`);
    person.supabaseCursor = at + 1;
    const system = (person.inbox.items[at] as Extract<Received, { kind: 'system' }>).message;
    const supabaseOk = system['status'] === 'ok' && system['extension'] === 'postgres_changes';
    if (isOk(response) !== supabaseOk) {
      throw new Error(`DISCREPANCY: ${who(u)} subscribing to ${names[tbl]} (filter ${JSON.stringify(filter)}) under ${JSON.stringify(policies[tbl])}: /live answered ${JSON.stringify(response)}, Supabase (vsn ${vsn}) said ${JSON.stringify(system)}`);
    }
    if (!supabaseOk) {
      caches.live[u]![tbl] = null;
      caches.supabase[u]![tbl] = null;
      return;
    }
    // A fresh subscription starts from a snapshot, as a client would refetch one (no writes run meanwhile).
    const { rows } = await db.query(readableSql(s.users[u]!, policies[tbl]!, filter, names[tbl]!));
    caches.live[u]![tbl] = new Map(rows.map((r) => [r['id'] as number, r]));
    caches.supabase[u]![tbl] = new Map(rows.map((r) => [r['id'] as number, r]));
  }

  /** Folds one door's deliveries to user `u` into its caches, checking each against the model. */
  function fold(door: Door, u: number, deliveries: Delivery[], check: (u: number, tbl: number, delivery: RowDelivery) => void): void {
    for (const delivery of deliveries) {
      const name = names[delivery.table]!;
      if ('revoked' in delivery) {
        caches[door][u]![delivery.table] = null;
        continue;
      }
      check(u, delivery.table, delivery);
      const cache = caches[door][u]![delivery.table];
      if (!cache) throw new Error(`${door}: user ${u} got an event for ${name} without a subscription`);
      const rowId = Number(delivery.id);
      // The variant must fit the cache: create only for a row it lacks, update and delete only for one it has.
      const has = cache.has(rowId);
      if (delivery.event === 'create' ? has : !has) {
        throw new Error(`${door}: user ${u} got ${delivery.event} for row ${rowId} of ${name} while its cache ${has ? 'had' : 'lacked'} it`);
      }
      if (delivery.event === 'delete') cache.delete(rowId);
      else cache.set(rowId, delivery.row);
    }
  }

  let markerId = 0;
  /**
   * Writes a marker row and waits for it on every connection of every user:
   * what arrived before it is everything committed so far. Compares the two
   * doors' deliveries per user, then folds them; returns the revocations.
   */
  async function settle(after: string, check: (u: number, tbl: number, delivery: RowDelivery) => void): Promise<Array<[number, number]>> {
    const id = markerId++;
    await db.query(`INSERT INTO ${marker} VALUES (${id})`);
    const revoked: Array<[number, number]> = [];
    for (const [u, person] of people.entries()) {
      await person.live.next((f) => f.type === 'event' && f.topic === marker && f.data.id === String(id));
      const frames = person.live.frames.slice(person.liveCursor);
      person.liveCursor = person.live.frames.length;
      const live: Delivery[] = [];
      for (const frame of frames) {
        if (!('topic' in frame) || frame.topic === marker) continue;
        const tbl = names.indexOf(frame.topic);
        if (tbl < 0) continue;
        if (frame.type === 'subscription') {
          live.push({ table: tbl, revoked: true });
          revoked.push([u, tbl]);
          continue;
        }
        if (frame.type !== 'event') continue;
        const delivery = `${frame.topic} ${frame.seq} ${frame.event}`;
        if (person.seen.has(delivery)) throw new Error(`user ${u} got ${delivery} twice`);
        person.seen.add(delivery);
        live.push(fromLive(tbl, frame));
      }

      const at = await waitIn(person.inbox, person.supabaseCursor, (item) => item.kind === 'marker' && item.change.new['id'] === id, `${who(u)}: Supabase marker ${id} after ${after}`);
      const items = person.inbox.items.slice(person.supabaseCursor, at);
      person.supabaseCursor = at + 1;
      const supabase: Delivery[] = [];
      for (const item of items) {
        if (item.kind === 'marker' || item.kind === 'marker-system') throw new Error(`${who(u)}: unexpected on the marker channel before marker ${id}: ${JSON.stringify(item)}`);
        if (item.gen !== person.channels[item.tbl]?.gen) throw new Error(`${who(u)}: a message on a channel already left: ${JSON.stringify(item)}`);
        if (item.kind === 'change') supabase.push(fromSupabase(item.tbl, names[item.tbl]!, item.change));
        else if (item.message['extension'] === 'postgres_changes' && item.message['status'] === 'error' && String(item.message['message']).startsWith('REVOKED: ')) supabase.push({ table: item.tbl, revoked: true });
        else throw new Error(`${who(u)}: unexpected system message on the channel of ${names[item.tbl]}: ${JSON.stringify(item.message)}`);
      }

      if (canon(live) !== canon(supabase)) {
        throw new Error(
          `DISCREPANCY for ${who(u)} after ${after} (policies ${JSON.stringify(policies)}):\n` +
            `  /live delivered:           ${canon(live)}\n` +
            `  Supabase (vsn ${vsn}) delivered: ${canon(supabase)}`,
        );
      }
      fold('live', u, live, check);
      fold('supabase', u, supabase, check);
    }
    return revoked;
  }

  try {
    for (const [u, user] of s.users.entries()) {
      const token = fixture.token({ sub: user.sub, groups: user.groups, ...(user.admin ? { role: 'admin' } : {}) });
      const live = await connect(token);
      const supabase = realtimeClient(server.port, token, vsn);
      supabaseClients.push(supabase);
      const inbox = new Inbox<Received>();
      const person: Person = { live, supabase, inbox, channels: Array.from({ length: TABLES }, () => null), liveCursor: 0, supabaseCursor: 0, seen: new Set() };
      people.push(person);
      caches.live.push(Array.from({ length: TABLES }, () => null));
      caches.supabase.push(Array.from({ length: TABLES }, () => null));
      await live.subscribe(marker);
      const markerChannel = supabase
        .channel(`s${n}_u${u}_marker`)
        .on('postgres_changes', { event: '*', schema: 'public', table: marker }, (change) => inbox.add({ kind: 'marker', change: change as unknown as Change }))
        .on('system', {}, (message: Row) => inbox.add({ kind: 'marker-system', message }));
      await subscribed(markerChannel);
      const at = await waitIn(inbox, 0, (item) => item.kind === 'marker-system', `${who(u)}: the system message after joining ${marker}`);
      const confirmation = (inbox.items[at] as Extract<Received, { kind: 'marker-system' }>).message;
      if (at !== 0 || confirmation['status'] !== 'ok') throw new Error(`${who(u)}: joining ${marker} on Supabase: ${JSON.stringify(inbox.items)}`);
      person.supabaseCursor = at + 1;
      for (let tbl = 0; tbl < TABLES; tbl++) await trySubscribe(u, tbl);
      person.liveCursor = live.frames.length;
    }

    for (const [step, o] of s.ops.entries()) {
      const name = names[o.table]!;
      const after = `op ${step} ${JSON.stringify(o)}`;
      if (o.op === 'policy') {
        policies[o.table] = o.policy;
        await db.query(opSql(name, o));
        const revoked = await settle(after, () => {
          throw new Error('row event after a policy change');
        });
        // Users whose subscription was revoked subscribe again (and refetch); so do those refused before.
        for (let u = 0; u < people.length; u++) {
          if (caches.live[u]![o.table] === null || revoked.some(([ru, rt]) => ru === u && rt === o.table)) await trySubscribe(u, o.table);
        }
        continue;
      }
      const current = policies[o.table]!;
      await db.query(opSql(name, o));
      await settle(after, (u, tbl, delivery) => {
        // No event for a row the user could not read at the time of the change.
        const user = s.users[u]!;
        if (tbl !== o.table) throw new Error(`event for ${names[tbl]} after a write to ${name}`);
        if (!mayRead(user, current, delivery.row) || !passes(user.filters[tbl]!, delivery.row)) {
          throw new Error(`user ${u} (${JSON.stringify(user)}) got ${JSON.stringify(delivery)} under ${JSON.stringify(current)}`);
        }
      });
    }

    // Every cache, of either door, equals what SQL says is readable now.
    for (const [u, user] of s.users.entries()) {
      for (let tbl = 0; tbl < TABLES; tbl++) {
        const { rows } = await db.query(readableSql(user, policies[tbl]!, user.filters[tbl]!, names[tbl]!));
        const expected = policies[tbl]!.read === 'admin' && !user.admin ? [] : rows;
        for (const door of ['live', 'supabase'] as const) {
          const cache = caches[door][u]![tbl];
          const actual = cache ? [...cache.values()].sort((a, b) => (a['id'] as number) - (b['id'] as number)) : [];
          if (canon(actual) !== canon(expected)) throw new Error(`${door}: user ${u} table ${tbl}: cache ${JSON.stringify(actual)} ≠ SQL ${JSON.stringify(expected)}`);
        }
      }
    }
  } finally {
    for (const person of people) person.live.close();
    await Promise.all(supabaseClients.map((client) => client.disconnect().catch(() => {})));
  }
}

/** Gives its values in turn, one per run, and never shrinks: runs alternate between them, and a shrunk case keeps its own. */
class Alternating<T> extends fc.Arbitrary<T> {
  #next = 0;
  constructor(readonly values: readonly T[]) {
    super();
  }
  generate(): fc.Value<T> {
    return new fc.Value(this.values[this.#next++ % this.values.length]!, undefined);
  }
  canShrinkWithoutContext(value: unknown): value is T {
    return this.values.includes(value as T);
  }
  shrink(): fc.Stream<fc.Value<T>> {
    return fc.Stream.nil();
  }
}

const RUNS = Number(process.env['PROPERTY_RUNS_SUPABASE'] ?? 30);

/** Runs the property, vsn 2.0.0 and 1.0.0 in turn; a failure names the seed, the shrunk scenario (and its vsn) and what went wrong in it. */
async function check(fixture: ServerFixture, seed: number): Promise<void> {
  let lastFailure = '';
  try {
    await fc.assert(
      fc.asyncProperty(scenario, new Alternating<Vsn>(['2.0.0', '1.0.0']), (s, vsn) =>
        runScenario(fixture, s, vsn).then(
          () => true,
          (error: Error) => {
            lastFailure = error.message;
            throw error;
          },
        ),
      ),
      { seed, numRuns: RUNS },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}\nThe shrunk case failed with: ${lastFailure}`);
  }
}

test('through the Supabase door, every user gets exactly what /live delivers, and both match the model (fixed seed)', withServer, {}, async (t, fixture) => {
  await check(fixture, 20261122);
  t.pass();
});

test('through the Supabase door, every user gets exactly what /live delivers, and both match the model (random seed, printed on failure)', withServer, {}, async (t, fixture) => {
  const seed = (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  t.log(`seed ${seed}`);
  await check(fixture, seed);
  t.pass();
});
