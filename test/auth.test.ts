/**
 * Issue 6, authentication: the three ways to present a token, the accepted
 * algorithms and claims, 401 against 403, token expiry (close 4001) and
 * refresh-token.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import jwt from 'jsonwebtoken';
import { CLOSE_CODES } from '../src/protocol/index.js';
import { isEvent, LiveClient, upgradeStatus } from './helpers/live-client.js';
import { signToken, TEST_SECRET } from './helpers/tokens.js';
import { withServer } from './helpers/with-server.js';

const TABLES = `
  CREATE TABLE notes (id int PRIMARY KEY, body text);
  CREATE TABLE docs (id int PRIMARY KEY, team text);
  CREATE TABLE audit (id int PRIMARY KEY);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public'), ('audit', 'admin');
  INSERT INTO rowcast.table_policies (table_name, read, group_column) VALUES ('docs', 'group', 'team');`;

const now = () => Math.floor(Date.now() / 1000);
const keyDir = mkdtempSync(path.join(tmpdir(), 'rowcast-keys-'));
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaPublic = path.join(keyDir, 'rsa.pem');
const ecPublic = path.join(keyDir, 'ec.pem');
writeFileSync(rsaPublic, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
writeFileSync(ecPublic, ec.publicKey.export({ type: 'spki', format: 'pem' }));

const signed = (claims: object, key: jwt.Secret, algorithm: jwt.Algorithm) => jwt.sign({ exp: now() + 3600, ...claims }, key, { algorithm });
/** A token with `alg: none` and no signature, which must never pass. */
const unsigned = (claims: object) =>
  `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;

test('a token is accepted from ?token=, from Authorization: Bearer, and from the bearer.<JWT> subprotocol, which is echoed', withServer, { sql: TABLES }, async (t, { liveUrl }) => {
  const token = signToken({ sub: 'u1' });
  const fromQuery = await LiveClient.connect(`${liveUrl}?token=${token}`);
  t.like(fromQuery.frames[0], { type: 'session', data: { user: { sub: 'u1' } } });
  const fromHeader = await LiveClient.connect(liveUrl, { headers: { Authorization: `Bearer ${token}` } });
  t.like(fromHeader.frames[0], { data: { user: { sub: 'u1' } } });
  const onlyBearer = await LiveClient.connect(liveUrl, { protocols: [`bearer.${token}`] });
  t.is(onlyBearer.socket.protocol, `bearer.${token}`);
  t.like(onlyBearer.frames[0], { data: { user: { sub: 'u1' } } });
  const withOther = await LiveClient.connect(liveUrl, { protocols: ['rowcast', `bearer.${token}`] });
  t.is(withOther.socket.protocol, 'rowcast');
  t.like(withOther.frames[0], { data: { user: { sub: 'u1' } } });
  for (const client of [fromQuery, fromHeader, onlyBearer, withOther]) client.close();

  const { status, body } = await upgradeStatus(liveUrl, undefined, { headers: { Authorization: 'Bearer nonsense' } });
  t.is(status, 401);
  t.is(JSON.parse(body).error.code, 'TOKEN_INVALID');
});

test('HS256/384/512 pass with the secret; alg none, and algorithms outside JWT_ALGORITHMS, are 401', withServer, { sql: TABLES, env: { JWT_ALGORITHMS: 'HS256,HS512' } }, async (t, { liveUrl }) => {
  for (const algorithm of ['HS256', 'HS512'] as const) {
    t.is((await upgradeStatus(`${liveUrl}?token=${signed({ sub: '1' }, TEST_SECRET, algorithm)}`)).status, 101, algorithm);
  }
  // Signed with the secret, refused for its algorithm alone (HS384 passes where JWT_ALGORITHMS allows it, below).
  const refused = await upgradeStatus(`${liveUrl}?token=${signed({ sub: '1' }, TEST_SECRET, 'HS384')}`);
  t.is(refused.status, 401);
  t.like(JSON.parse(refused.body), { error: { code: 'TOKEN_INVALID' } });
  const none = await upgradeStatus(`${liveUrl}?token=${unsigned({ sub: '1', exp: now() + 60 })}`);
  t.is(none.status, 401);
  t.like(JSON.parse(none.body), { error: { code: 'TOKEN_INVALID' } });
});

test('RS256 and ES256 tokens pass with JWT_PUBLIC_KEY_FILE; a token signed with another key does not', withServer, { sql: TABLES, env: { JWT_PUBLIC_KEY_FILE: rsaPublic } }, async (t, { liveUrl }) => {
  t.is((await upgradeStatus(`${liveUrl}?token=${signed({ sub: '1' }, rsa.privateKey, 'RS256')}`)).status, 101);
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  t.is((await upgradeStatus(`${liveUrl}?token=${signed({ sub: '1' }, other.privateKey, 'RS256')}`)).status, 401);
  // The secret still works beside the key, with every HMAC algorithm.
  for (const algorithm of ['HS256', 'HS384', 'HS512'] as const) {
    t.is((await upgradeStatus(`${liveUrl}?token=${signed({ sub: '1' }, TEST_SECRET, algorithm)}`)).status, 101, algorithm);
  }
  // A public key is never usable as an HMAC secret (the classic algorithm confusion).
  const confused = jwt.sign({ sub: '1', exp: now() + 60 }, TEST_SECRET + 'x', { algorithm: 'HS256' });
  t.is((await upgradeStatus(`${liveUrl}?token=${confused}`)).status, 401);
});

test('ES256 with an EC public key', withServer, { sql: TABLES, env: { JWT_PUBLIC_KEY_FILE: ecPublic, JWT_ALGORITHMS: 'ES256' } }, async (t, { liveUrl }) => {
  t.is((await upgradeStatus(`${liveUrl}?token=${signed({ sub: '1' }, ec.privateKey, 'ES256')}`)).status, 101);
  // JWT_ALGORITHMS=ES256 turns HMAC tokens off even though a secret is configured.
  t.is((await upgradeStatus(`${liveUrl}?token=${signToken({ sub: '1' })}`)).status, 401);
});

test('exp and nbf are enforced with the configured leeway; aud and iss when configured', withServer, {
  sql: TABLES,
  env: { JWT_CLOCK_TOLERANCE_SECONDS: '30', JWT_AUDIENCE: 'rowcast-test', JWT_ISSUER: 'https://issuer.test' },
}, async (t, { liveUrl }) => {
  const good = { sub: '1', aud: 'rowcast-test', iss: 'https://issuer.test' };
  const status = async (claims: Record<string, unknown>) => (await upgradeStatus(`${liveUrl}?token=${signToken(claims)}`)).status;
  t.is(await status(good), 101);
  t.is(await status({ ...good, exp: now() - 10 }), 101, 'expired 10 s ago, within the 30 s leeway');
  t.is(await status({ ...good, exp: now() - 60 }), 401, 'expired past the leeway');
  t.is(await status({ ...good, nbf: now() + 10 }), 101, 'not before 10 s from now, within the leeway');
  t.is(await status({ ...good, nbf: now() + 120 }), 401);
  t.is(await status({ ...good, aud: 'someone-else' }), 401);
  t.is(await status({ sub: '1', iss: 'https://issuer.test' }), 401, 'no aud');
  t.is(await status({ ...good, iss: 'https://evil.test' }), 401);
});

test('a valid token without sub is 403 unless ALLOW_ANONYMOUS; no token at all is 401', withServer, { sql: TABLES }, async (t, { liveUrl }) => {
  const noSub = await upgradeStatus(`${liveUrl}?token=${signToken({ role: 'user' })}`);
  t.is(noSub.status, 403);
  t.like(JSON.parse(noSub.body), { error: { code: 'FORBIDDEN' } });
  t.regex(JSON.parse(noSub.body).error.message, /ALLOW_ANONYMOUS/);
  const none = await upgradeStatus(liveUrl);
  t.is(none.status, 401);
  t.like(JSON.parse(none.body), { error: { code: 'TOKEN_INVALID' } });
});

test('with ALLOW_ANONYMOUS a connection needs no token and reads public tables only', withServer, { sql: TABLES, env: { ALLOW_ANONYMOUS: 'true' } }, async (t, { liveUrl }) => {
  const anonymous = await LiveClient.connect(liveUrl);
  t.like(anonymous.frames[0], { data: { user: { sub: null } } });
  t.like(await anonymous.request('subscribe', { topicName: 'notes' }), { ok: true });
  // A table it may not read is, to it, a table that does not exist.
  t.like(await anonymous.request('subscribe', { topicName: 'audit' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  anonymous.close();
  t.is((await upgradeStatus(`${liveUrl}?token=${signToken({ role: 'user' })}`)).status, 101);
});

test('a connection whose token expires is closed with 4001; one that refreshed in time stays', withServer, { sql: TABLES, env: { JWT_CLOCK_TOLERANCE_SECONDS: '0' } }, async (t, { liveUrl, db }) => {
  // Long enough for both to connect, subscribe and refresh on a loaded machine; the close is waited for, not slept on.
  const soon = now() + 6;
  const expiring = await LiveClient.connect(`${liveUrl}?token=${signToken({ sub: 'e', exp: soon })}`);
  const refreshed = await LiveClient.connect(`${liveUrl}?token=${signToken({ sub: 'r', exp: soon })}`);
  await refreshed.subscribe('notes');
  const data = await refreshed.call('refresh-token', { token: signToken({ sub: 'r', exp: now() + 3600 }) });
  t.like(data, { sub: 'r', revoked: [] });
  t.is(await expiring.closed(15_000), CLOSE_CODES.TOKEN_EXPIRED);
  // The refreshed connection outlived its first token's exp, still subscribed.
  t.is(refreshed.closeCode, null);
  await db.query(`INSERT INTO notes VALUES (1, 'still here')`);
  t.like(await refreshed.next(isEvent), { data: { id: '1' } });
});

test('refresh-token: a token with other rights revokes exactly the subscriptions it reads differently', withServer, { sql: TABLES }, async (t, { connect }) => {
  const client = await connect({ sub: 'm', role: 'admin' });
  await client.subscribe('audit');
  const member = await connect({ sub: 'g', groups: ['red'] });
  await member.subscribe('docs');
  await member.subscribe('notes');

  t.like(await client.call('refresh-token', { token: signToken({ sub: 'm' }) }), { revoked: ['audit'] });
  t.like(await client.next((f) => f.type === 'subscription'), { topic: 'audit', status: 'revoked', reason: 'the new token does not allow reading this topic' });
  t.like(await client.request('subscribe', { topicName: 'audit' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });

  t.like(await member.call('refresh-token', { token: signToken({ sub: 'g', groups: ['blue'] }) }), { revoked: ['docs'] });
  t.like(await member.next((f) => f.type === 'subscription'), { topic: 'docs', status: 'revoked' });
  t.like(await member.call('refresh-token', { token: signToken({ sub: 'g', groups: ['blue'] }) }), { revoked: [] });

  t.like(await member.request('refresh-token', { token: signToken({ sub: 'someone-else' }) }), { ok: false, error: { code: 'FORBIDDEN' } });
  t.like(await member.request('refresh-token', { token: 'garbage' }), { ok: false, error: { code: 'TOKEN_INVALID' } });
  t.like(await member.request('refresh-token', { token: signToken({ sub: 'g', exp: now() - 3600 }) }), { ok: false, error: { code: 'TOKEN_INVALID' } });
  t.is(member.closeCode, null);
});
