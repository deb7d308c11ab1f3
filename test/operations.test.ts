/**
 * Issue 7, operating rowcast: TLS, /metrics, the CLI (token, migrate,
 * policy, tail).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { NodeStatus } from '../src/http/node-status.js';
import { createTestDatabase } from './helpers/database.js';
import { isEvent, LiveClient } from './helpers/live-client.js';
import { operatorHeaders, signToken, TEST_SECRET } from './helpers/tokens.js';
import { withServer } from './helpers/with-server.js';

const NOTES = `
  CREATE TABLE notes (id int PRIMARY KEY, body text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;

/** A self-signed certificate for 127.0.0.1 and localhost, made with openssl for this run. */
function certificate(): { cert: string; key: string; certPem: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rowcast-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key, certPem: readFileSync(cert, 'utf8') };
}
const tls = certificate();

test('with TLS_CERT_FILE and TLS_KEY_FILE, wss:// serves the same endpoint and events reach both kinds of socket', withServer, {
  sql: NOTES,
  env: { TLS_CERT_FILE: tls.cert, TLS_KEY_FILE: tls.key, TLS_PORT: '0' },
}, async (t, { server, connect, db }) => {
  t.truthy(server.tlsPort);
  const secure = await LiveClient.connect(`wss://127.0.0.1:${server.tlsPort}/live?token=${signToken({ sub: 's' })}`, { ca: tls.certPem });
  await secure.subscribe('notes');
  const plain = await connect({ sub: 'p' });
  await plain.subscribe('notes');
  await db.query(`INSERT INTO notes VALUES (1, 'over TLS')`);
  t.like(await secure.next(isEvent), { data: { id: '1', attributes: { body: 'over TLS' } } });
  t.like(await plain.next(isEvent), { data: { id: '1' } });
  secure.close();
});

/**
 * Prometheus text exposition: `# HELP`/`# TYPE` comments and `name{labels} value` samples, nothing else
 * (prom-client writes NaN as `Nan`, which Prometheus parses case-insensitively).
 */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (-?(?:[0-9.]+(?:e[-+]?[0-9]+)?|NaN|Nan|\+Inf|-Inf))$/.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

test('/metrics is Prometheus text and its counters move when events flow', withServer, { sql: NOTES }, async (t, { server, connect, db }) => {
  const scrape = async () => parsePrometheus(await (await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: operatorHeaders() })).text());
  const client = await connect({ sub: 'm' });
  await client.subscribe('notes');
  const before = await scrape();
  t.is(before.get('rowcast_connections'), 1);
  t.is(before.get('rowcast_door_connections{door="live"}'), 1);
  t.is(before.get('rowcast_subscriptions'), 1);
  t.true(before.has('rowcast_process_nodejs_eventloop_lag_seconds'));
  await db.query(`INSERT INTO notes SELECT g, 'x' FROM generate_series(1, 5) g`);
  await client.events(5);
  const after = await scrape();
  t.is((after.get('rowcast_events_published_total') ?? 0) - (before.get('rowcast_events_published_total') ?? 0), 5);
  t.is(after.get('rowcast_events_total{topic="notes"}'), 5);
  t.is((after.get('rowcast_deliveries_total') ?? 0) - (before.get('rowcast_deliveries_total') ?? 0), 5);
  t.true((after.get('rowcast_replication_changes_total') ?? 0) >= 5);
  t.is(after.get('rowcast_replication_connected'), 1);
  const status = (await (await fetch(`http://127.0.0.1:${server.port}/status`, { headers: operatorHeaders() })).json()) as NodeStatus;
  t.regex(status.nodeId, /^.+:\d+$/);
  t.like(status, { connections: 1, topics: [{ name: 'notes', read: 'public', subscribers: 1 }] });
  // The slot monitor reads the slot once before startServer returns: there is a reading. The slot was
  // made moments ago, so it keeps far less WAL than max_wal_size ('reserved'), but at least the record
  // Postgres wrote when it made the slot, past its restart point.
  const slot = status.replication.slot;
  if (slot === null) throw new Error('/status has no slot reading');
  t.is(slot.walStatus, 'reserved');
  t.true(slot.retainedWalBytes > 0, `retainedWalBytes ${slot.retainedWalBytes}`);
});

test('rowcast token mints a token that connects', withServer, { sql: NOTES }, async (t, { liveUrl, db }) => {
  const token = execFileSync(process.execPath, ['dist/src/cli/main.js', 'token', '--sub', '42', '--role', 'admin', '--groups', 'a,b', '--ttl', '10m'], {
    env: { PATH: process.env['PATH'] ?? '', JWT_SECRET: TEST_SECRET, DATABASE_URL: db.url },
    encoding: 'utf8',
  }).trim();
  const client = await LiveClient.connect(`${liveUrl}?token=${token}`);
  t.like(client.frames[0], { type: 'session', data: { user: { sub: '42', role: 'admin' } } });
  client.close();
});

/** Runs the built CLI with `args` and the test database, and returns its exit code and output. */
function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/src/cli/main.js', ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('rowcast migrate creates the schema; policy set and policy list write and read policies, naming what is wrong', async (t) => {
  const db = await createTestDatabase();
  try {
    const env = { DATABASE_URL: db.url, JWT_SECRET: TEST_SECRET };
    t.like(await cli(['migrate'], env), { code: 0, stdout: 'migrations are up to date\n' });
    await db.query(`CREATE TABLE orders (id int PRIMARY KEY, owner_id text)`);
    t.like(await cli(['policy', 'set', 'orders', '--read', 'owner', '--owner-column', 'owner_id'], env), { code: 0 });
    const listed = await cli(['policy', 'list'], env);
    t.like(JSON.parse(listed.stdout.trim()), { table_schema: 'public', table_name: 'orders', read: 'owner', owner_column: 'owner_id' });
    const missing = await cli(['policy', 'set', 'nope', '--read', 'owner', '--owner-column', 'x'], env);
    t.is(missing.code, 1);
    t.regex(missing.stderr, /no table public\.nope/);
    const incomplete = await cli(['policy', 'set', 'orders', '--read', 'group'], env);
    t.is(incomplete.code, 1);
    t.regex(incomplete.stderr, /--group-column/);
  } finally {
    await db.drop();
  }
});

test('rowcast tail prints an event committed after it started, one JSON per line', withServer, { sql: NOTES }, async (t, { liveUrl, db }) => {
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'tail', 'notes', '--url', liveUrl], {
    env: { PATH: process.env['PATH'] ?? '', JWT_SECRET: TEST_SECRET, DATABASE_URL: db.url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await new Promise<void>((resolve) => child.stderr!.on('data', (chunk: Buffer) => chunk.toString().includes('tailing notes') && resolve()));
    await db.query(`INSERT INTO notes VALUES (7, 'tailed')`);
    const line = await new Promise<string>((resolve) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
    });
    t.like(JSON.parse(line), { type: 'event', topic: 'notes', event: 'create', data: { id: '7', attributes: { body: 'tailed' } } });
  } finally {
    child.kill();
  }
});
