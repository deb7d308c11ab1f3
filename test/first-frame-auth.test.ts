/**
 * Authentication by the first frame (`AUTH_FIRST_FRAME`, docs/protocol.md):
 * a `/live` connection opened without a token sends `auth` first; a wrong
 * token, any other frame, or no frame in time closes it with 4001.
 */
import test from 'ava';
import WebSocket from 'ws';
import { createClient, type ClientOptions } from '@rowcast/client';
import { waitFor } from './helpers/wait-for.js';
import { withServer } from './helpers/with-server.js';

const ENV = { AUTH_FIRST_FRAME: 'true', AUTH_TIMEOUT_SECONDS: '1' };

/** A raw socket on `url` that records frames and its close code. */
async function rawSocket(url: string): Promise<{ socket: WebSocket; frames: Array<Record<string, any>>; closed: Promise<{ code: number; reason: string }> }> {
  const socket = new WebSocket(url);
  const frames: Array<Record<string, any>> = [];
  socket.on('message', (data) => frames.push(JSON.parse(data.toString()) as Record<string, any>));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, frames, closed };
}

function within<T>(what: string, promise: Promise<T>, ms = 10_000): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);
}

test('auth first: no session frame before it; a valid token opens the session, and the connection works as any other', withServer, { env: ENV }, async (t, { liveUrl, token }) => {
  const { socket, frames, closed } = await rawSocket(liveUrl);
  socket.send(JSON.stringify({ method: 'auth', attributes: { token: token({ sub: 'alice', role: 'admin' }) } }));
  await within('the session frame', (async () => {
    while (!frames.some((f) => f['type'] === 'session')) await new Promise((resolve) => setImmediate(resolve));
  })());
  t.like(frames[0], { type: 'session', status: 'open', data: { user: { sub: 'alice', role: 'admin' } } });
  socket.send(JSON.stringify({ id: 1, method: 'create-topic', attributes: { name: 'after-auth' } }));
  await within('the answer', (async () => {
    while (!frames.some((f) => f['id'] === 1)) await new Promise((resolve) => setImmediate(resolve));
  })());
  t.like(frames.find((f) => f['id'] === 1), { ok: true, data: { name: 'after-auth' } });
  socket.close();
  await closed;
});

test('auth first: a wrong token, another frame first, or no frame in time closes with 4001', withServer, { env: ENV }, async (t, { liveUrl }) => {
  const wrong = await rawSocket(liveUrl);
  wrong.socket.send(JSON.stringify({ method: 'auth', attributes: { token: 'not-a-jwt' } }));
  t.like(await within('close', wrong.closed), { code: 4001 });
  t.deepEqual(wrong.frames, []);

  const early = await rawSocket(liveUrl);
  early.socket.send(JSON.stringify({ id: 1, method: 'subscribe', attributes: { topicName: 'x' } }));
  const closedEarly = await within('close', early.closed);
  t.is(closedEarly.code, 4001);
  t.regex(closedEarly.reason, /authenticate first/);
  t.deepEqual(early.frames, []);

  const silent = await rawSocket(liveUrl);
  const closedSilent = await within('close', silent.closed);
  t.is(closedSilent.code, 4001);
  t.regex(closedSilent.reason, /AUTH_TIMEOUT_SECONDS/);
});

test('with AUTH_FIRST_FRAME, a token in the URL works as before', withServer, { env: ENV }, async (t, { connect }) => {
  const client = await connect({ sub: 'bob' });
  t.is(client.session.user.sub, 'bob');
});

test('without AUTH_FIRST_FRAME (the default) a tokenless upgrade is refused with 401', withServer, {}, async (t, { liveUrl }) => {
  const error = await new Promise<number>((resolve) => {
    const socket = new WebSocket(liveUrl);
    socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    socket.on('open', () => resolve(101));
  });
  t.is(error, 401);
});

test('the SDK with tokenInFirstFrame: no token in the URL or headers, the auth frame first, then it works as usual', withServer, { env: ENV }, async (t, { liveUrl, token, connect }) => {
  const sent: string[] = [];
  const offered: Array<string | string[] | undefined> = [];
  class Recording extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      offered.push(protocols);
      t.false(url.includes('token='));
      const send = this.send.bind(this);
      this.send = ((data: string) => {
        sent.push(data);
        send(data);
      }) as typeof this.send;
    }
  }
  const client = createClient({ url: liveUrl, token: token({ sub: 'sdk-user' }), tokenInFirstFrame: true, WebSocket: Recording as unknown as ClientOptions['WebSocket'] });
  try {
    const admin = await connect({ sub: 'admin', role: 'admin' });
    await admin.call('create-topic', { name: 'first', history: 10, writers: 'authenticated' });
    const events: unknown[] = [];
    await client.subscribe('first', {}, (event) => events.push(event)).ready;
    await admin.call('new-message', { topicName: 'first', message: 'hello' });
    await waitFor('the message through the SDK', () => events.length === 1);
    t.like(JSON.parse(sent[0]!), { method: 'auth' });
    t.deepEqual(offered, [['rowcast']]);
  } finally {
    client.close();
  }
});
