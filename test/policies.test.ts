import test from 'ava';
import { errorOf, eventOn } from './helpers/live-client.js';
import { withServer } from './helpers/with-server.js';

const TABLES = `
  CREATE TABLE notes (id int PRIMARY KEY, text text);
  CREATE TABLE secrets (id int PRIMARY KEY, text text);
  CREATE TABLE unmanaged (id int PRIMARY KEY, text text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public'), ('secrets', 'admin');`;

for (const table of ['secrets', 'unmanaged']) {
  test(`a table with ${table === 'secrets' ? 'the admin policy' : 'no policy'} is invisible to a non-admin`, withServer, { sql: TABLES }, async (t, { connect }) => {
    const user = await connect({ sub: '7', role: 'user' });
    const response = await user.request('subscribe', { topicName: table });
    t.like(response, { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
    const unknown = await user.request('subscribe', { topicName: 'no_such_table' });
    t.like(unknown, { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
    t.is(errorOf(response).message.replace(table, 'X'), errorOf(unknown).message.replace('no_such_table', 'X'));
    const get = await user.request('get-topic', { topicName: table });
    t.like(get, { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
    const list = await user.call('list-topic');
    t.deepEqual(list.topics.map((x) => x.name), ['notes']);
  });

  test(`a table with ${table === 'secrets' ? 'the admin policy' : 'no policy'} is delivered to an admin`, withServer, { sql: TABLES }, async (t, { db, connect }) => {
    const admin = await connect({ sub: '1', role: 'admin' });
    await admin.subscribe(table);
    await db.query(`INSERT INTO ${table} VALUES (1, 'for admins')`);
    const [event] = await admin.events(1);
    t.like(event, { topic: table, event: 'create', data: { attributes: { text: 'for admins' } } });
  });
}

test('a multi-topic subscribe with one forbidden name subscribes nothing', withServer, {
  sql: `${TABLES}
    CREATE TABLE marker (id int PRIMARY KEY);
    INSERT INTO rowcast.table_policies (table_name, read) VALUES ('marker', 'public');`,
}, async (t, { db, connect }) => {
  const user = await connect({ sub: '7' });
  const response = await user.request('subscribe', { topicName: 'notes,secrets' });
  t.like(response, { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  await user.subscribe('marker');
  await db.query(`INSERT INTO notes VALUES (1, 'not for this client')`);
  await db.query(`INSERT INTO marker VALUES (1)`);
  // The stream is ordered: once the later marker is here, a notes event would have been too.
  await user.next(eventOn('marker'));
  t.false(user.frames.some((f) => 'topic' in f && f.topic === 'notes'));
});

test('a multi-topic subscribe with valid names subscribes to all of them', withServer, { sql: TABLES }, async (t, { db, connect }) => {
  const admin = await connect({ sub: '1', role: 'admin' });
  const response = await admin.subscribe(' notes , secrets ');
  t.deepEqual(response.data.topics, ['notes', 'secrets']);
  await db.query(`INSERT INTO notes VALUES (1, 'a'); INSERT INTO secrets VALUES (1, 'b')`);
  const events = await admin.events(2);
  t.deepEqual(events.map((e) => e.topic), ['notes', 'secrets']);
});

test('a nested ROLE_CLAIM decides who is an admin', withServer, {
  sql: TABLES,
  env: { ROLE_CLAIM: 'app_metadata.role' },
}, async (t, { connect }) => {
  const flat = await connect({ sub: '1', role: 'admin' });
  t.like(await flat.request('subscribe', { topicName: 'secrets' }), { ok: false, error: { code: 'TOPIC_NOT_FOUND' } });
  const nested = await connect({ sub: '1', app_metadata: { role: 'admin' } });
  t.like(await nested.request('subscribe', { topicName: 'secrets' }), { ok: true });
});

test('a table created while the server runs becomes a topic', withServer, { sql: TABLES }, async (t, { db, connect }) => {
  const admin = await connect({ sub: '1', role: 'admin' });
  await db.query(`CREATE TABLE later (id int PRIMARY KEY)`);
  await admin.subscribe('later');
  await db.query(`INSERT INTO later VALUES (5)`);
  const [event] = await admin.events(1);
  t.like(event, { topic: 'later', data: { id: '5' } });
});
