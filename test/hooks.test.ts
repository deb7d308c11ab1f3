/**
 * The host app's hooks in library mode (docs/library.md, "Hooks"):
 * onSubscribe and onMessage allow, refuse or modify, and a hook that throws,
 * times out or breaks its contract fails its request with INTERNAL (a
 * correlation id), never the server; onConnect and onClose see connections.
 * On `/live` and through the Supabase door with realtime-js.
 */
import test, { type ExecutionContext } from 'ava';
import { createRowcast, type Rowcast, type RowcastHooks } from '../src/library/index.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { errorOf, LiveClient, upgradeStatus } from './helpers/live-client.js';
import { Inbox, realtimeClient, subscribed } from './helpers/supabase-client.js';
import { signToken, TEST_SECRET } from './helpers/tokens.js';
import { waitFor } from './helpers/wait-for.js';

const SCHEMA = `
  CREATE TABLE item (id int PRIMARY KEY, owner_id text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('item', 'public');`;

/** A rowcast in library mode with `hooks` on a database of the test's own; `body` gets it and a connect function. */
async function withHooks(
  t: ExecutionContext,
  hooks: RowcastHooks,
  body: (rowcast: Rowcast, connect: (claims: Record<string, unknown>) => Promise<LiveClient>, port: number, db: TestDatabase) => Promise<void>,
): Promise<void> {
  const db = await createTestDatabase(SCHEMA);
  const rowcast = createRowcast({ databaseUrl: db.url, jwtSecret: TEST_SECRET, port: 0, host: '127.0.0.1', slotName: db.name, publicationName: db.name, logLevel: 'silent', hooks, hookTimeoutMs: 200 });
  const clients: LiveClient[] = [];
  try {
    const { port } = await rowcast.start();
    const connect = async (claims: Record<string, unknown>) => {
      const client = await LiveClient.connect(`ws://127.0.0.1:${port}/live?token=${signToken(claims)}`);
      clients.push(client);
      return client;
    };
    const admin = await connect({ sub: 'admin', role: 'admin' });
    for (const name of ['chat', 'open', 'slow', 'broken']) await admin.call('create-topic', { name, history: 10, writers: 'authenticated' });
    await body(rowcast, connect, port, db);
    t.pass();
  } finally {
    for (const client of clients) client.close();
    await rowcast.stop();
    await db.drop();
  }
}

/** A hook that must time out awaits this: it never settles, so the timeout (hookTimeoutMs, 200 ms) decides, not a race with a sleep. */
const NEVER = new Promise<never>(() => {});

const ONLY_MEMBERS: RowcastHooks = {
  onSubscribe: async (principal, topic) => {
    if (topic === 'chat' && principal.sub !== 'member') return { refuse: { code: 'FORBIDDEN', message: 'members only' } };
    if (topic === 'slow') await NEVER;
    if (topic === 'broken') throw new Error('the hook broke');
    if (topic === 'item' && principal.sub === 'odd') return { refuse: { code: 'NOT_A_CODE' as never, message: 'x' } };
    return undefined;
  },
};

test('onSubscribe: allows, refuses with its code, and a hook that throws, times out or answers an unknown code fails with INTERNAL', async (t) => {
  await withHooks(t, ONLY_MEMBERS, async (_rowcast, connect) => {
    const member = await connect({ sub: 'member' });
    t.like(await member.subscribe('chat'), { ok: true });
    const stranger = await connect({ sub: 'stranger' });
    t.like(errorOf(await stranger.request('subscribe', { topicName: 'chat' })), { code: 'FORBIDDEN', message: 'members only' });
    // All or nothing: one refused topic refuses the request.
    t.is(errorOf(await stranger.request('subscribe', { topicName: 'open,chat' })).code, 'FORBIDDEN');
    t.false(stranger.frames.some((f) => f.type === 'response' && f.ok && f.method === 'subscribe'));
    for (const [topic, claims] of [['slow', { sub: 'member' }], ['broken', { sub: 'member' }], ['item', { sub: 'odd' }]] as const) {
      const client = await connect(claims);
      const error = errorOf(await client.request('subscribe', { topicName: topic }));
      t.is(error.code, 'INTERNAL', topic);
      t.regex(error.message, /[0-9a-f]{8}-[0-9a-f]{4}/, 'a correlation id');
      t.like(await client.request('ping'), { type: 'pong' }, 'the connection stays up');
    }
  });
});

const MODERATED: RowcastHooks = {
  onMessage: async (message, { topic, principal }) => {
    const text = (message as { text?: string } | null)?.text ?? '';
    if (text.includes('spam')) return { cancel: { code: 'FORBIDDEN', message: 'no spam' } };
    if (text === 'slow') await NEVER;
    if (text === 'throw') throw new Error('moderation is down');
    if (text === 'bad') return { modify: undefined };
    if (text === 'nul') return { modify: { text: 'a\u0000b' } };
    return { modify: { text: text.replaceAll('darn', '****'), by: principal.sub, topic } };
  },
};

test('onMessage: cancels (nothing stored or delivered), modifies what is stored and delivered, and fails with INTERNAL when it throws, times out or breaks its contract', async (t) => {
  await withHooks(t, MODERATED, async (rowcast, connect) => {
    const reader = await connect({ sub: 'reader' });
    await reader.subscribe('chat');
    const writer = await connect({ sub: 'writer' });
    t.like(errorOf(await writer.request('new-message', { topicName: 'chat', message: { text: 'buy spam' } })), { code: 'FORBIDDEN', message: 'no spam' });
    for (const text of ['slow', 'throw', 'bad']) {
      t.is(errorOf(await writer.request('new-message', { topicName: 'chat', message: { text } })).code, 'INTERNAL', text);
    }
    await writer.call('new-message', { topicName: 'chat', message: { text: 'darn it' } });
    const delivered = await reader.next((f) => f.type === 'event' && f.topic === 'chat');
    t.like(delivered, { data: { attributes: { message: { text: '**** it', by: 'writer', topic: 'chat' } } } });
    const history = await reader.call('history', { topicName: 'chat' });
    t.deepEqual(history.messages.map((m) => m.message), [{ text: '**** it', by: 'writer', topic: 'chat' }]);
    // The host's own messages go through it too.
    await t.throwsAsync(rowcast.publish('chat', { text: 'spam from the host' }), { message: 'no spam' });
    // Text Postgres cannot store is refused before anything is stored, whether sent or made by the hook.
    await t.throwsAsync(rowcast.publish('chat', { text: 'x\u0000' }), { message: /U\+0000/ });
    t.is(errorOf(await writer.request('new-message', { topicName: 'chat', message: { text: 'nul' } })).code, 'INVALID_ATTRIBUTES');
  });
});

test('onMessage sees direct messages (topic @me, to) and may cancel or modify them, the host’s sendDirect included', async (t) => {
  await withHooks(t, MODERATED, async (rowcast, connect) => {
    const alice = await connect({ sub: 'alice' });
    await alice.subscribe('@me');
    const admin = await connect({ sub: 'boss', role: 'admin' });
    t.like(errorOf(await admin.request('direct-message', { to: 'alice', message: { text: 'spam' } })), { code: 'FORBIDDEN', message: 'no spam' });
    await admin.call('direct-message', { to: 'alice', message: { text: 'darn' } });
    t.like(await alice.next((f) => f.type === 'direct'), { from: 'boss', message: { text: '****', by: 'boss', topic: '@me' } });
    await rowcast.sendDirect('alice', { text: 'from the host' });
    t.like(await alice.next((f) => f.type === 'direct' && f.from === null), { message: { text: 'from the host', by: null, topic: '@me' } });
    await t.throwsAsync(rowcast.sendDirect('alice', { text: 'spam' }), { message: 'no spam' });
  });
});

test('a connection’s messages run their onMessage hooks together, yet are stored and delivered in the order sent', async (t) => {
  let running = 0;
  let most = 0;
  const hooks: RowcastHooks = {
    onMessage: async (message) => {
      running++;
      most = Math.max(most, running);
      // Earlier messages take longer: if they ran one at a time or were handed on as their hooks finish, the order would show it.
      await new Promise((resolve) => setTimeout(resolve, 40 - 3 * (message as { n: number }).n));
      running--;
    },
  };
  await withHooks(t, hooks, async (_rowcast, connect) => {
    const reader = await connect({ sub: 'reader' });
    await reader.subscribe('chat');
    const writer = await connect({ sub: 'writer' });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, n) => writer.call('new-message', { topicName: 'chat', message: { n } })));
    t.true(most > 1, `at most ${most} hook(s) ran at once`);
    const events = await reader.events(10);
    t.deepEqual(events.map((e) => (e.data.attributes as { message: { n: number } }).message.n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    t.deepEqual(events.map((e) => e.seq), answers.map((a) => a.seq));
  });
});

test('onConnect and onClose see each connection with its door, user and close code; their failures are only logged', async (t) => {
  const seen: string[] = [];
  const hooks: RowcastHooks = {
    onConnect: (connection) => {
      seen.push(`open ${connection.door} ${connection.principal.sub} ${connection.client}`);
      throw new Error('a failing onConnect changes nothing');
    },
    onClose: (connection, code) => void seen.push(`close ${connection.principal.sub} ${code}`),
  };
  await withHooks(t, hooks, async (rowcast, connect) => {
    const client = await connect({ sub: 'visitor' });
    await waitFor('onConnect', () => seen.includes('open live visitor '));
    t.like(await client.request('ping'), { type: 'pong' });
    const [info] = rowcast.connections().filter((c) => c.user.sub === 'visitor');
    rowcast.closeConnection(info!.id, 'bye');
    await waitFor('onClose with 1008', () => seen.includes('close visitor 1008'));
  });
});

test('through the Supabase door: a join onSubscribe refuses is a channel error; a broadcast onMessage cancels is an error, one it modifies arrives modified', async (t) => {
  const hooks: RowcastHooks = {
    ...ONLY_MEMBERS,
    // A broadcast reaches the hook as the door stores it: {event, payload}.
    onMessage: (message) => {
      const { event, payload } = message as { event: string; payload: { text: string } };
      if (payload.text.includes('spam')) return { cancel: { code: 'FORBIDDEN', message: 'no spam' } };
      return { modify: { event, payload: { text: payload.text.replaceAll('darn', '****') } } };
    },
  };
  await withHooks(t, hooks, async (_rowcast, _connect, port) => {
    const stranger = realtimeClient(port, signToken({ sub: 'stranger' }));
    const member = realtimeClient(port, signToken({ sub: 'member' }));
    try {
      const refused = await subscribed(stranger.channel('chat', { config: { private: true } })).catch((error: Error) => error);
      t.regex(String(refused), /CHANNEL_ERROR.*FORBIDDEN: members only/);
      const got = new Inbox<{ event: string; payload: unknown }>();
      const channel = member.channel('chat', { config: { private: true, broadcast: { ack: true, self: true } } }).on('broadcast', { event: '*' }, got.add);
      await subscribed(channel);
      t.is(await channel.send({ type: 'broadcast', event: 'post', payload: { text: 'darn spam' } }), 'error');
      t.is(await channel.send({ type: 'broadcast', event: 'post', payload: { text: 'darn' } }), 'ok');
      const [message] = await got.atLeast(1);
      t.like(message, { event: 'post', payload: { text: '****' } });
      t.is(got.items.length, 1);
    } finally {
      stranger.disconnect();
      member.disconnect();
    }
  });
});

const COOKIE_AUTH: RowcastHooks = {
  authenticate: async ({ headers, token, door }) => {
    const session = /(?:^|; )session=([^;]+)/.exec(headers['cookie'] ?? '')?.[1];
    if (session === 'banned') return { refuse: { status: 403, code: 'FORBIDDEN', message: 'banned' } };
    if (session === 'slow') await NEVER;
    if (session === 'throw') throw new Error('the session store is down');
    if (session === 'odd') return { principal: { sub: '' } };
    if (session) return { principal: { sub: session, role: session === 'boss' ? 'admin' : null, claims: { door } } };
    if (token === 'key-member') return { principal: { sub: 'member' } };
    return undefined; // the JWT check decides
  },
};

test('authenticate: a session cookie makes the principal (admins by role), a refusal has its status and code, no cookie falls back to the token, and a hook that throws, times out or answers nonsense is 500 INTERNAL', async (t) => {
  await withHooks(t, COOKIE_AUTH, async (_rowcast, _connect, port) => {
    const url = `ws://127.0.0.1:${port}/live`;
    const alice = await LiveClient.connect(url, { headers: { cookie: 'theme=dark; session=alice' } });
    t.like(alice.session.user, { sub: 'alice', role: null });
    t.like(await alice.subscribe('item'), { ok: true });
    const boss = await LiveClient.connect(url, { headers: { cookie: 'session=boss' } });
    t.like(await boss.call('create-topic', { name: 'by-the-boss' }), { name: 'by-the-boss' });
    alice.close();
    boss.close();

    const banned = await upgradeStatus(url, undefined, { headers: { cookie: 'session=banned' } });
    t.is(banned.status, 403);
    t.like(JSON.parse(banned.body), { error: { code: 'FORBIDDEN', message: 'banned' } });
    for (const session of ['slow', 'throw', 'odd']) {
      const failed = await upgradeStatus(url, undefined, { headers: { cookie: `session=${session}` } });
      t.is(failed.status, 500, session);
      t.regex(JSON.parse(failed.body).error.message, /correlation id [0-9a-f-]{36}/);
    }
    // No cookie: the token decides, as without the hook.
    const byToken = await LiveClient.connect(`${url}?token=${signToken({ sub: 'jwt-user' })}`);
    t.is(byToken.session.user.sub, 'jwt-user');
    byToken.close();
    t.is((await upgradeStatus(url)).status, 401);
  });
});

test('authenticate on the Supabase door: an API key the hook knows makes the principal that onSubscribe then allows', async (t) => {
  await withHooks(t, { ...COOKIE_AUTH, onSubscribe: ONLY_MEMBERS.onSubscribe! }, async (_rowcast, _connect, port) => {
    const member = realtimeClient(port, 'key-member');
    const nobody = realtimeClient(port, 'key-unknown');
    try {
      await subscribed(member.channel('chat', { config: { private: true } }));
      t.pass();
      const refused = await subscribed(nobody.channel('chat', { config: { private: true } }), 3000).catch((error: Error) => error);
      t.true(refused instanceof Error);
    } finally {
      member.disconnect();
      nobody.disconnect();
    }
  });
});
