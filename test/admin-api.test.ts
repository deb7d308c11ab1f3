/**
 * Issue 7, the admin HTTP API: every route with an admin token, a user token
 * (403) and no token (401); the socket's rules and error codes.
 */
import test from 'ava';
import { CLOSE_CODES } from '../src/protocol/index.js';
import { isEvent, isOk } from './helpers/live-client.js';
import { withServer, type ServerFixture } from './helpers/with-server.js';
import { waitFor } from './helpers/wait-for.js';

const SCHEMA = `
  CREATE TABLE orders (id int PRIMARY KEY, owner_id text);
  CREATE TABLE notes (id int PRIMARY KEY);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;

type Fetch = (method: string, path: string, body?: unknown) => Promise<{ status: number; json: any }>;

function client(fixture: ServerFixture, token: string | null): Fetch {
  return async (method, path, body) => {
    const response = await fetch(`http://127.0.0.1:${fixture.server.port}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    return { status: response.status, json: await response.json() };
  };
}

const ROUTES: Array<[string, string, unknown?]> = [
  ['GET', '/admin/topics'],
  ['POST', '/admin/topics', { name: 'x' }],
  ['DELETE', '/admin/topics/x'],
  ['POST', '/admin/topics/x/messages', { message: 'hi' }],
  ['GET', '/admin/topics/x/history'],
  ['GET', '/admin/policies'],
  ['PUT', '/admin/policies/orders', { read: 'public' }],
  ['DELETE', '/admin/policies/orders'],
  ['GET', '/admin/connections'],
  ['GET', '/admin/connections/nobody'],
  ['POST', '/admin/connections/nobody/message', { message: 'hi' }],
  ['POST', '/admin/users/u/message', { message: 'hi' }],
  ['DELETE', '/admin/connections/nobody'],
];

test('every admin route: 401 without a token or with a bad one, 403 with a user token, nothing done', withServer, { sql: SCHEMA }, async (t, fixture) => {
  const anonymous = client(fixture, null);
  const forged = client(fixture, 'not-a-jwt');
  const user = client(fixture, fixture.token({ sub: 'u' }));
  for (const [method, path, body] of ROUTES) {
    t.like(await anonymous(method, path, body), { status: 401, json: { error: { code: 'TOKEN_INVALID' } } }, `${method} ${path}`);
    t.like(await forged(method, path, body), { status: 401, json: { error: { code: 'TOKEN_INVALID' } } }, `${method} ${path}`);
    t.like(await user(method, path, body), { status: 403, json: { error: { code: 'FORBIDDEN' } } }, `${method} ${path}`);
  }
  const { rows } = await fixture.db.query(`SELECT name FROM rowcast.topics WHERE name <> '@me'`);
  t.is(rows.length, 0);
  const { rows: messages } = await fixture.db.query(`SELECT id FROM rowcast.messages`);
  t.is(messages.length, 0);
});

test('topics: create, list, publish, history, destroy; the socket sees the same, with the same codes', withServer, { sql: SCHEMA }, async (t, fixture) => {
  const admin = client(fixture, fixture.token({ sub: 'root', role: 'admin' }));
  const reader = await fixture.connect({ sub: 'r' });

  t.like(await admin('POST', '/admin/topics', { name: 'news', history: 10, readers: 'anyone' }), { status: 201, json: { name: 'news', history: 10 } });
  t.like(await admin('POST', '/admin/topics', { name: 'news' }), { status: 409, json: { error: { code: 'TOPIC_EXISTS' } } });
  t.like(await admin('POST', '/admin/topics', { name: 'bad name!' }), { status: 400, json: { error: { code: 'INVALID_ATTRIBUTES' } } });
  t.like(await admin('POST', '/admin/topics', '{not json'), { status: 400, json: { error: { code: 'INVALID_MESSAGE' } } });
  t.like(await admin('POST', '/admin/topics', { name: 'n', history: 'lots' }), { status: 400, json: { error: { code: 'INVALID_ATTRIBUTES' } } });
  const listed = await admin('GET', '/admin/topics');
  t.is(listed.status, 200);
  t.deepEqual(listed.json.topics.map((topic: { name: string }) => topic.name), ['news', 'notes', 'orders']);

  await reader.subscribe('news');
  const published = await admin('POST', '/admin/topics/news/messages', { message: { text: 'from the API' } });
  t.is(published.status, 201);
  t.truthy(published.json.seq);
  t.like(await reader.next(isEvent), { event: 'new-message', topic: 'news', data: { attributes: { message: { text: 'from the API' }, sender: 'root' } } });
  t.like(await admin('POST', '/admin/topics/notes/messages', { message: 'x' }), { status: 409, json: { error: { code: 'READ_ONLY_TOPIC' } } });
  t.like(await admin('POST', '/admin/topics/nope/messages', { message: 'x' }), { status: 404, json: { error: { code: 'TOPIC_NOT_FOUND' } } });

  const history = await admin('GET', '/admin/topics/news/history?limit=5');
  t.is(history.status, 200);
  t.like(history.json, { messages: [{ message: { text: 'from the API' }, sender: 'root' }] });
  t.like(await admin('GET', '/admin/topics/news/history?limit=1000'), { status: 400, json: { error: { code: 'INVALID_ATTRIBUTES' } } });

  t.like(await admin('DELETE', '/admin/topics/news'), { status: 200, json: { name: 'news' } });
  t.like(await reader.next((f) => f.type === 'subscription'), { topic: 'news', status: 'revoked' });
  t.like(await admin('DELETE', '/admin/topics/news'), { status: 404, json: { error: { code: 'TOPIC_NOT_FOUND' } } });
});

test('policies: list, set (applied at once), refuse a bad one, delete', withServer, { sql: SCHEMA }, async (t, fixture) => {
  const admin = client(fixture, fixture.token({ sub: 'root', role: 'admin' }));
  t.like(await admin('GET', '/admin/policies'), { status: 200, json: [{ table_name: 'notes', read: 'public' }] });
  t.like(await admin('PUT', '/admin/policies/orders', { read: 'owner', ownerColumn: 'owner_id' }), { status: 200, json: { table_name: 'orders', read: 'owner', owner_column: 'owner_id' } });
  const user = await fixture.connect({ sub: 'alice' });
  await waitFor('the policy to reach the server', async () => isOk(await user.request('subscribe', { topicName: 'orders' })));
  await fixture.db.query(`INSERT INTO orders VALUES (1, 'alice'), (2, 'bob')`);
  t.like(await user.next(isEvent), { data: { id: '1' } });

  t.like(await admin('PUT', '/admin/policies/orders', { read: 'owner' }), { status: 400, json: { error: { code: 'INVALID_ATTRIBUTES' } } });
  t.like(await admin('PUT', '/admin/policies/orders', { read: 'everyone' }), { status: 400, json: { error: { code: 'INVALID_ATTRIBUTES' } } });
  const missing = await admin('PUT', '/admin/policies/nope', { read: 'owner', ownerColumn: 'x' });
  t.like(missing, { status: 400, json: { error: { code: 'INVALID_ATTRIBUTES' } } });
  t.regex(missing.json.error.message, /no table public\.nope/);

  t.like(await admin('DELETE', '/admin/policies/orders'), { status: 200 });
  t.like(await admin('DELETE', '/admin/policies/orders'), { status: 404, json: { error: { code: 'TOPIC_NOT_FOUND' } } });
  t.like(await admin('GET', '/admin/policies'), { json: [{ table_name: 'notes' }] });
});

test('connections: listed with client, user, subscriptions and buffered bytes; one is closed', withServer, { sql: SCHEMA }, async (t, fixture) => {
  const admin = client(fixture, fixture.token({ sub: 'root', role: 'admin' }));
  const watched = await fixture.connect({ sub: 'w', role: 'user' }, '&client=dashboard');
  await watched.subscribe('notes');
  const other = await fixture.connect({ sub: 'o' });
  const { status, json } = await admin('GET', '/admin/connections');
  t.is(status, 200);
  const entry = json.find((c: { client: string }) => c.client === 'dashboard');
  t.like(entry, { user: { sub: 'w', role: 'user' }, subscriptions: ['notes'], bufferedBytes: 0 });
  t.is(json.length, 2);
  // One in detail: its principal, each subscription with its filter and partitions.
  await watched.subscribe('notes', { filter: { id: { gt: 1 } } });
  const detail = await admin('GET', `/admin/connections/${encodeURIComponent(entry.id)}`);
  t.like(detail, { status: 200, json: { id: entry.id, door: 'live', client: 'dashboard', principal: { sub: 'w', role: 'user', isAdmin: false }, presences: [] } });
  t.is(detail.json.subscriptions.length, 1);
  t.like(detail.json.subscriptions[0], { topic: 'notes' });
  t.regex(detail.json.subscriptions[0].group, /gt/);
  t.like(await admin('GET', '/admin/connections/nobody'), { status: 404, json: { error: { code: 'NOT_FOUND' } } });
  t.like(await admin('DELETE', `/admin/connections/${entry.id}`), { status: 200, json: { closed: entry.id } });
  t.is(await watched.closed(), CLOSE_CODES.POLICY_VIOLATION);
  t.is(other.closeCode, null);
});
