/**
 * Issue 6, slow consumers: a client that stops reading is closed with 1013
 * (it can resume with `since`) instead of growing server memory, while a
 * client on the same topic keeps receiving every event.
 */
import test from 'ava';
import { pino } from 'pino';
import { BackpressureGauge } from '../src/core/backpressure-gauge.js';
import type { SessionState } from '../src/core/session-types.js';
import { CLOSE_CODES } from '../src/protocol/index.js';
import { LiveClient, type ServerFrame } from './helpers/live-client.js';
import { signToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
import { withServerProcess } from './helpers/with-server-process.js';

const ROWS = 6000;
const ROW_BYTES = 16 * 1024;

test(`a client that stops reading is closed with 1013; a fast one on the same topic gets all ${ROWS} events; server memory stays bounded`, withServerProcess, {
  sql: `CREATE TABLE big (id int PRIMARY KEY, payload text);
    INSERT INTO rowcast.table_policies (table_name, read) VALUES ('big', 'public');`,
}, async (t, { db, start }) => {
  // A small window, so that what is measured is what sockets hold.
  const server = await start({ HISTORY_EVENTS: '100' });
  const url = `${server.liveUrl}?token=${signToken({ sub: 'reader' })}`;
  const fast = await LiveClient.connect(url);
  await fast.subscribe('big');
  const slow = await LiveClient.connect(url);
  await slow.subscribe('big');
  const slowTcp = (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  slowTcp.pause();
  const before = server.memory();

  let received = 0;
  const all = new Promise<void>((resolve) => {
    fast.socket.on('message', (data) => {
      if ((JSON.parse(data.toString()) as ServerFrame).type === 'event' && ++received === ROWS) resolve();
    });
  });
  for (let from = 1; from <= ROWS; from += 200) {
    await db.query(`INSERT INTO big SELECT g, repeat(md5(g::text), ${ROW_BYTES / 32}) FROM generate_series($1::int, $1::int + 199) g`, [from]);
  }
  await all;
  const after = server.memory();
  t.is(received, ROWS);
  const status = await waitFor('the slow consumer to be closed', async () => ((await server.status())['slowConsumersClosed'] >= 1 ? true : null));
  t.true(status);
  slowTcp.resume();
  t.is(await slow.closed(), CLOSE_CODES.SLOW_CONSUMER);
  const growth = after.peakMiB - before.rssMiB;
  t.log(`${((ROWS * ROW_BYTES) / 2 ** 20).toFixed(0)} MiB of events; server RSS ${before.rssMiB.toFixed(0)} MiB → peak ${after.peakMiB.toFixed(0)} MiB (+${growth.toFixed(0)})`);
  // The slow socket may hold MAX_BACKPRESSURE_BYTES (4 MiB), not the ~94 MiB that passed.
  t.true(growth < 64, `peak RSS grew by ${growth.toFixed(0)} MiB`);
});

test('a burst after a sweep that seemed slow: once half of MAX_BACKPRESSURE_BYTES is published, the next check sweeps', (t) => {
  // A sweep descheduled on a busy machine looks slow, and the CPU-share rule postpones the next one;
  // a burst in that gap once carried the slow socket past uWS's hard cap (a 1006, not a 1013).
  const maxBytes = 1000;
  let buffered = 0;
  const closed: number[] = [];
  const session = {
    id: 1,
    client: null,
    port: {
      bufferedBytes: () => {
        const until = performance.now() + 2; // every sweep takes 2 ms: 2 s until the next, by the CPU share
        while (performance.now() < until);
        return buffered;
      },
      close: (code: number) => closed.push(code),
    },
    congestedSince: 0,
    congestedBytes: 0,
    drainedAt: 0,
  } as unknown as SessionState;
  const gauge = new BackpressureGauge(new Set([session]), {
    highWaterBytes: maxBytes / 4,
    maxBytes,
    graceMs: 3_600_000,
    stallMs: 3_600_000,
    sweepIntervalMs: 0,
    sweepCpuShare: 0.001,
    logger: pino({ level: 'silent' }),
  });
  const sent: string[] = [];
  const publisher = gauge.metered({ publish: (_topic, message) => (sent.push(String(message)), true), numSubscribers: () => 1 });

  gauge.congested();
  buffered = 2 * maxBytes;
  t.false(gauge.congested(), 'nothing published: the last answer stands');
  t.deepEqual(closed, []);
  publisher.publish('t', 'x'.repeat(maxBytes / 2 - 1));
  gauge.congested();
  t.deepEqual(closed, [], 'below the budget: still the last answer');
  publisher.publish('t', 'x');
  gauge.congested();
  t.deepEqual(closed, [CLOSE_CODES.SLOW_CONSUMER], 'the budget reached: swept, and the socket past maxBytes closed with 1013');
  t.is(gauge.slowConsumersClosed, 1);
  t.is(sent.length, 2, 'the metered publisher publishes what it is given');
});
