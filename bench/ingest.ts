/**
 * Ingest benchmark (issue 8): changes per second from commit to one admin
 * subscriber, bulk inserts, against a ceiling measured in the same run: the
 * same rows read by a bare `pg-logical-replication` stream (pgoutput, its own
 * slot) that only looks at each message's first byte: no decoding, nothing
 * else. Both readers are live before the write; pgoutput
 * sends a transaction once it commits, so both are timed from the commit to
 * the last change received: the write itself (slow on a small machine) is
 * reported but not part of the rate.
 *
 *   npm run bench:ingest                   # one transaction of 500,000 rows
 *   npm run bench:ingest -- --quick        # 50,000 rows
 *   npm run bench:ingest -- --cluster      # two nodes on Redis: the subscriber on the follower (leader → Redis → follower)
 *
 * The subscriber is its own process (bench/ingest-worker.ts) and counts
 * frames without parsing them; its CPU is reported. Results go to
 * bench/results/ingest.json (ingest-cluster.json with `--cluster`).
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { BENCH_SECRET, cpuMs, startBenchServer } from './lib/bench-server.js';

const { values: args } = parseArgs({
  options: { rows: { type: 'string' }, batch: { type: 'string' }, quick: { type: 'boolean', default: false }, cluster: { type: 'boolean', default: false } },
});
const ROWS = Number(args.rows ?? (args.quick ? 50_000 : 500_000));
const BATCH = Number(args.batch ?? ROWS);

/** pgoutput without decoding: an insert message starts with 'I'. */
class CountingPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    return { tag: buffer[0] === 0x49 ? 'insert' : 'other' } as unknown as Pgoutput.Message;
  }
}

const server = await startBenchServer(`CREATE TABLE ingest (id bigserial PRIMARY KEY, v int NOT NULL, note text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('ingest', 'admin');
  CREATE PUBLICATION bench_ceiling FOR TABLE ingest;`, { followers: args.cluster ? 1 : 0 });
const subscriberUrl = args.cluster ? server.followerUrls[0]! : server.urls[0]!;
try {
  // Its own statement: a slot cannot be created in a transaction that wrote.
  await server.db.query(`SELECT pg_create_logical_replication_slot('bench_ceiling', 'pgoutput')`);
  // The ceiling: a bare stream that counts inserts and acknowledges what it received.
  const bare = new LogicalReplicationService({ connectionString: server.databaseUrl }, { acknowledge: { auto: true, timeoutSeconds: 1 } });
  let bareReceived = 0;
  let bareDoneAt = 0;
  const bareSeries: Array<[number, number]> = [];
  const bareDone = new Promise<void>((resolve) => {
    bare.on('data', (_lsn: string, message: { tag: string }) => {
      if (message.tag !== 'insert') return;
      if (++bareReceived % 1000 === 0) bareSeries.push([Date.now(), bareReceived]);
      if (bareReceived === ROWS) {
        bareDoneAt = Date.now();
        resolve();
      }
    });
  });
  bare.on('error', () => {});
  void bare.subscribe(new CountingPlugin({ protoVersion: 1, publicationNames: ['bench_ceiling'] }), 'bench_ceiling');
  await new Promise<void>((resolve) => bare.once('start', () => resolve()));

  const worker = fork(path.resolve('bench/ingest-worker.ts'), [JSON.stringify({ url: subscriberUrl, secret: BENCH_SECRET, topic: 'ingest', expect: ROWS })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  type WorkerMessage = { type: string; at?: number; message?: string; cpu?: NodeJS.CpuUsage; series?: Array<[number, number]> };
  const messages: WorkerMessage[] = [];
  const next = (type: string) =>
    new Promise<WorkerMessage>((resolve, reject) => {
      const check = () => {
        const found = messages.find((m) => m.type === type || m.type === 'error');
        if (!found) return false;
        if (found.type === 'error') reject(new Error(found.message));
        else resolve(found);
        return true;
      };
      if (!check()) worker.on('message', () => check());
    });
  worker.on('message', (message: { type: string }) => messages.push(message));
  await next('ready');

  console.log(
    `ingest: ${ROWS.toLocaleString('en')} rows in transactions of ${BATCH.toLocaleString('en')}, one admin subscriber` +
      (args.cluster ? ', cluster mode: the subscriber on a follower (leader → Redis stream → follower)' : ''),
  );
  const serverCpuBefore = cpuMs(server.pid);
  const followerCpuBefore = server.followerPids.map(cpuMs);
  const writer = new pg.Client({ connectionString: server.databaseUrl });
  await writer.connect();
  const writeStarted = Date.now();
  let started = 0;
  for (let done = 0; done < ROWS; done += BATCH) {
    await writer.query(`INSERT INTO ingest (v, note) SELECT g, 'row ' || g FROM generate_series(1, $1::int) g`, [Math.min(BATCH, ROWS - done)]);
    started ||= Date.now(); // the first commit: from here on there is something to stream
  }
  const written = Date.now();
  await writer.end();
  const { at: rowcastDoneAt, cpu: clientCpu, series: rowcastSeries } = await next('done');
  await bareDone;
  const serverCpu = cpuMs(server.pid) - serverCpuBefore;
  const followerCpu = server.followerPids.map((pid, i) => cpuMs(pid) - followerCpuBefore[i]!);

  const seconds = (at: number) => (at - started) / 1000;
  const rowcastRate = ROWS / seconds(rowcastDoneAt!);
  const bareRate = ROWS / seconds(bareDoneAt);
  const report = {
    command: `npm run bench:ingest -- --rows ${ROWS} --batch ${BATCH}${args.cluster ? ' --cluster' : ''}`,
    cluster: args.cluster ? { followerCpuSeconds: followerCpu.map((ms) => ms / 1000) } : null,
    at: new Date().toISOString(),
    rows: ROWS,
    writeSeconds: (written - writeStarted) / 1000,
    rowcast: { seconds: seconds(rowcastDoneAt!), changesPerSecond: Math.round(rowcastRate), serverCpuSeconds: serverCpu / 1000 },
    ceiling: { seconds: seconds(bareDoneAt), changesPerSecond: Math.round(bareRate) },
    ratio: rowcastRate / bareRate,
    subscriberCpuSeconds: clientCpu ? (clientCpu.user + clientCpu.system) / 1e6 : null,
    /** [seconds since the first commit, changes received]: the throughput-over-time chart. */
    series: {
      rowcast: rowcastSeries!.map(([at, count]) => [seconds(at), count]),
      ceiling: bareSeries.map(([at, count]) => [seconds(at), count]),
    },
  };
  console.log(`  writes committed in ${report.writeSeconds.toFixed(2)} s`);
  console.log(`  bare replication stream (ceiling): ${report.ceiling.changesPerSecond.toLocaleString('en')} changes/s (${report.ceiling.seconds.toFixed(2)} s)`);
  console.log(
    `  rowcast to one admin subscriber:   ${report.rowcast.changesPerSecond.toLocaleString('en')} changes/s (${report.rowcast.seconds.toFixed(2)} s), ` +
      `server CPU ${report.rowcast.serverCpuSeconds.toFixed(1)} s${args.cluster ? ` (leader; follower ${(followerCpu[0]! / 1000).toFixed(1)} s)` : ''}, ` +
      `subscriber CPU ${report.subscriberCpuSeconds?.toFixed(1)} s`,
  );
  console.log(`  ratio to the ceiling: ${report.ratio.toFixed(2)} (target ≥ 0.7; target rate ≥ 100,000 changes/s)`);
  mkdirSync(path.resolve('bench/results'), { recursive: true });
  writeFileSync(path.resolve(`bench/results/${args.cluster ? 'ingest-cluster' : 'ingest'}.json`), JSON.stringify(report, null, 2));
  worker.send({ type: 'stop' });
  await bare.stop();
} finally {
  await server.db.query(`SELECT pg_drop_replication_slot('bench_ceiling')`).catch(() => {});
  await server.stop();
}
process.exit(0);
