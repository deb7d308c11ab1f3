import test, { type ExecutionContext } from 'ava';
import WebSocket from 'ws';
import { upgradeStatus } from './helpers/live-client.js';
import { toyDoor } from './helpers/toy-door.js';
import { signToken, withServer, type ServerFixture } from './helpers/with-server.js';

// A second door on the same core (test/helpers/toy-door.ts), beside /live: one small file is all a protocol takes.

const SCHEMA = `
  CREATE TABLE note (id int PRIMARY KEY, title text);
  CREATE TABLE "order" (id int PRIMARY KEY, owner_id int, amount int);
  CREATE TABLE marker (id int PRIMARY KEY);
  CREATE TABLE secret (id int PRIMARY KEY);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('note', 'public'), ('marker', 'public');
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('order', 'owner', 'owner_id');`;

const setup = { sql: SCHEMA, doors: [toyDoor] };

/** Fails loudly when a wait runs out. */
const TIMEOUT_MS = 10_000;

/** A /toy client for tests: keeps every line in order and lets a test wait for the one it expects. */
class ToyClient {
  readonly lines: string[] = [];
  closeCode: number | null = null;
  readonly #socket: WebSocket;
  readonly #taken = new Set<number>();
  #wake: () => void = () => {};

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (data) => {
      this.lines.push(data.toString());
      this.#wake();
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      this.#wake();
    });
    socket.on('error', () => {}); // the close that follows says what happened
  }

  static async connect(url: string): Promise<ToyClient> {
    const client = new ToyClient(new WebSocket(url));
    await new Promise<void>((resolve, reject) => {
      client.#socket.once('open', () => resolve());
      client.#socket.once('error', reject);
      client.#socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
    });
    return client;
  }

  send(frame: string | Buffer): void {
    this.#socket.send(frame);
  }

  /** The first line not taken yet that matches (passing over others, which stay for later calls). */
  async next(match: (line: string) => boolean): Promise<string> {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const index = this.lines.findIndex((line, i) => !this.#taken.has(i) && match(line));
      if (index >= 0) {
        this.#taken.add(index);
        return this.lines[index]!;
      }
      if (this.closeCode !== null) throw new Error(`connection closed (${this.closeCode}) while waiting; lines: ${JSON.stringify(this.lines)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching line within ${TIMEOUT_MS} ms; lines: ${JSON.stringify(this.lines)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Sends a frame and returns the answer line (`OK …`, `ERR …`) that follows it. */
  async request(frame: string | Buffer): Promise<string> {
    this.send(frame);
    return this.next((line) => line.startsWith('OK ') || line.startsWith('ERR '));
  }

  close(): void {
    this.#socket.close();
  }
}

/** Opens a /toy connection for `claims` on the fixture's server (closed when the test ends). */
async function toy(t: ExecutionContext, { server }: ServerFixture, claims: Record<string, unknown>): Promise<ToyClient> {
  const client = await ToyClient.connect(`ws://127.0.0.1:${server.port}/toy?token=${signToken(claims)}`);
  t.teardown(() => client.close());
  return client;
}

/** Event lines of `topic` a client got so far. */
const eventsOf = (client: ToyClient, topic: string) => client.lines.filter((line) => line.startsWith(`EV ${topic} `));

test('a /toy client and a /live client on the same table both get an INSERT, each in its own framing', withServer, setup, async (t, fixture) => {
  const { db, server, connect } = fixture;
  const alice = await toy(t, fixture, { sub: '1' });
  const live = await connect({ sub: '2' });
  t.is(await alice.request('SUB note'), 'OK note');
  await live.subscribe('note');
  t.like(server.status().connectionsByDoor, { toy: 1, live: 1 });

  await db.query(`INSERT INTO note VALUES (1, 'hello world')`);
  t.is(await alice.next((line) => line.startsWith('EV ')), 'EV note create 1 {"id":1,"title":"hello world"}');
  const [event] = await live.events(1);
  t.like(event, { type: 'event', topic: 'note', event: 'create', data: { type: 'note', id: '1', attributes: { id: 1, title: 'hello world' } } });
});

test('per-row permissions apply on /toy: a user gets only the rows they may read', withServer, setup, async (t, fixture) => {
  const { db } = fixture;
  const alice = await toy(t, fixture, { sub: '1' });
  const bob = await toy(t, fixture, { sub: '2' });
  const admin = await toy(t, fixture, { sub: '99', role: 'admin' });
  for (const client of [alice, bob, admin]) {
    t.is(await client.request('SUB order'), 'OK order');
    t.is(await client.request('SUB marker'), 'OK marker');
  }
  t.is(await alice.request('SUB secret'), 'ERR TOPIC_NOT_FOUND', 'a table only admins read is not there for alice');
  t.is(await admin.request('SUB secret'), 'OK secret');

  await db.query(`INSERT INTO "order" VALUES (10, 1, 5), (20, 2, 7)`);
  await db.query(`INSERT INTO secret VALUES (1)`);
  // Everything committed before the marker has arrived once the marker has.
  await db.query(`INSERT INTO marker VALUES (1)`);
  for (const client of [alice, bob, admin]) await client.next((line) => line === 'EV marker create 1 {"id":1}');

  t.deepEqual(eventsOf(alice, 'order'), ['EV order create 10 {"id":10,"owner_id":1,"amount":5}']);
  t.deepEqual(eventsOf(bob, 'order'), ['EV order create 20 {"id":20,"owner_id":2,"amount":7}']);
  t.deepEqual(eventsOf(admin, 'order'), ['EV order create 10 {"id":10,"owner_id":1,"amount":5}', 'EV order create 20 {"id":20,"owner_id":2,"amount":7}']);
  t.deepEqual(eventsOf(alice, 'secret'), []);
  t.deepEqual(eventsOf(admin, 'secret'), ['EV secret create 1 {"id":1}']);
});

test('UNSUB on /toy stops its events, and only its own (a /live subscriber of the topic goes on)', withServer, setup, async (t, fixture) => {
  const { db, connect } = fixture;
  const alice = await toy(t, fixture, { sub: '1' });
  const live = await connect({ sub: '2' });
  t.is(await alice.request('SUB note'), 'OK note');
  t.is(await alice.request('SUB marker'), 'OK marker');
  await live.subscribe('note');
  await db.query(`INSERT INTO note VALUES (1, 'before')`);
  await alice.next((line) => line.startsWith('EV note create 1 '));

  t.is(await alice.request('UNSUB note'), 'OK note');
  await db.query(`INSERT INTO note VALUES (2, 'after')`);
  await db.query(`INSERT INTO marker VALUES (1)`);
  await alice.next((line) => line.startsWith('EV marker create 1 '));
  t.deepEqual(eventsOf(alice, 'note'), ['EV note create 1 {"id":1,"title":"before"}']);
  t.deepEqual((await live.events(2)).map((event) => event['data'].id), ['1', '2']);

  t.is(await alice.request('UNSUB note'), 'ERR NOT_SUBSCRIBED');
});

test('bad input to /toy gets its coded error and the connection stays up', withServer, setup, async (t, fixture) => {
  const { db, server } = fixture;
  const alice = await toy(t, fixture, { sub: '1' });
  for (const frame of ['HELLO', 'SUB', 'SUB note extra', 'sub note', Buffer.from('SUB note')]) {
    t.is(await alice.request(frame), 'ERR INVALID_MESSAGE', `for ${JSON.stringify(String(frame))}`);
  }
  t.is(await alice.request('SUB no_such_table'), 'ERR TOPIC_NOT_FOUND');
  t.is(await alice.request('UNSUB note'), 'ERR NOT_SUBSCRIBED');

  t.is(await alice.request('SUB note'), 'OK note');
  await db.query(`INSERT INTO note VALUES (1, 'still here')`);
  t.is(await alice.next((line) => line.startsWith('EV ')), 'EV note create 1 {"id":1,"title":"still here"}');
  t.is(alice.closeCode, null);
  t.like(server.status().connectionsByDoor, { toy: 1 });
});

test('/toy refuses a token that fails verification, with the core\'s codes', withServer, setup, async (t, { server }) => {
  const url = `ws://127.0.0.1:${server.port}/toy`;
  const refusals = {
    'no token': [url, 401, 'ERR TOKEN_INVALID'],
    'not a JWT': [`${url}?token=garbage`, 401, 'ERR TOKEN_INVALID'],
    'another secret': [`${url}?token=${signToken({ sub: '1' }, 'some-other-secret-0123456789')}`, 401, 'ERR TOKEN_INVALID'],
    expired: [`${url}?token=${signToken({ sub: '1', exp: Math.floor(Date.now() / 1000) - 3600 })}`, 401, 'ERR TOKEN_INVALID'],
    'no sub (anonymous connections are off)': [`${url}?token=${signToken({ name: 'nobody' })}`, 403, 'ERR FORBIDDEN'],
  } as const;
  for (const [what, [target, status, body]] of Object.entries(refusals)) {
    t.deepEqual(await upgradeStatus(target), { status, body }, what);
  }
  t.is(server.status().connectionsByDoor['toy'], undefined);
  t.is((await upgradeStatus(`${url}?token=${signToken({ sub: '1' })}`)).status, 101, 'a good token passes');
});
