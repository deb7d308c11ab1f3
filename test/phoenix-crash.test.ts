/**
 * A Phoenix client through two SIGKILLs of the server: phoenix.js reconnects
 * by itself and rejoins with its params function, which gives `since` the
 * last `seq` it saw (through a proxy, as behind a load balancer). Every row
 * written arrives exactly once, in order.
 */
import net from 'node:net';
import test from 'ava';
import { Collected, phoenixSocket } from './helpers/phoenix-client.js';
import { signToken } from './helpers/tokens.js';
import { withServerProcess } from './helpers/with-server-process.js';

const ROWS = 600;

test(`a phoenix.js client loses nothing and sees nothing twice while the server is SIGKILLed twice under ${ROWS} writes`, withServerProcess, {
  sql: `CREATE TABLE items (id int PRIMARY KEY, body text);
        INSERT INTO rowcast.table_policies (table_name, read) VALUES ('items', 'public');`,
}, async (t, { db, start }) => {
  let server = await start();
  const proxy = await balancer(() => server.port);
  t.teardown(() => proxy.close());
  const socket = phoenixSocket(proxy.port, signToken({ sub: 'reader' }));
  t.teardown(() => socket.disconnect());
  let lastSeq: string | undefined;
  const items = socket.channel('table:items', () => (lastSeq ? { since: lastSeq } : {}));
  const seen = new Collected<{ id: string; seq: string }>(items, ['create']);
  items.on('create', (payload: { seq: string }) => {
    lastSeq = payload.seq;
  });
  const joins: Array<Record<string, unknown>> = [];
  items.join().receive('ok', (reply) => joins.push(reply as Record<string, unknown>));
  while (joins.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));

  const writer = (async () => {
    for (let id = 1; id <= ROWS; id++) {
      await db.query(`INSERT INTO items VALUES ($1, $2)`, [id, `row ${id}`]);
      if (id % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  for (const at of [ROWS / 3, (2 * ROWS) / 3]) {
    await seen.atLeast(at, 30_000);
    await server.kill('SIGKILL');
    server = await start();
  }
  await writer;
  const received = await seen.atLeast(ROWS, 60_000);
  // Give a duplicate the chance to show: the server routes a marker row after everything else.
  await db.query(`INSERT INTO items VALUES (${ROWS + 1}, 'marker')`);
  await seen.atLeast(ROWS + 1, 30_000);
  const ids = received.map((e) => Number(e.payload.id));
  t.is(ids.length, ROWS + 1, `${ids.length - ROWS - 1} duplicates`);
  t.deepEqual(ids, Array.from({ length: ROWS + 1 }, (_, i) => i + 1));
  t.true(joins.length >= 3, `joined ${joins.length} times`);
  t.true(joins.slice(1).every((reply) => reply['resumed'] === true), JSON.stringify(joins));
});

/**
 * A TCP proxy in front of the server, as a load balancer would be: the client
 * keeps one URL while the server behind it is replaced. (A killed server's
 * port stays unusable for a while, its connections in TIME_WAIT.)
 */
async function balancer(backend: () => number): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(backend(), '127.0.0.1');
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    close: () => {
      proxy.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
