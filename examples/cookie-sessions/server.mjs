// A small Node app that mounts rowcast in library mode (docs/library.md):
// its own cookie sessions decide who a WebSocket connection is (the
// `authenticate` hook, no JWT anywhere), and a moderation hook (`onMessage`)
// masks words and refuses spam before a chat message is stored or delivered.
//
//   DATABASE_URL=postgres://… node examples/cookie-sessions/server.mjs
//   curl -i -X POST localhost:3000/login -d '{"name":"alice"}'   # Set-Cookie: session=…
//   # then open ws://localhost:6336/live with that cookie, subscribe to "lobby" and send new-message
//
// Without DATABASE_URL rowcast starts its embedded Postgres (data in .rowcast/).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createRowcast } from 'rowcast';

const APP_PORT = Number(process.env.APP_PORT ?? 3000);
const ROWCAST_PORT = Number(process.env.ROWCAST_PORT ?? 6336);

/** The app's own sessions: cookie value → user. A real app keeps them in its session store. */
const sessions = new Map();

const rowcast = createRowcast({
  databaseUrl: process.env.DATABASE_URL,
  // Only for tokens rowcast might still be given (the CLI's dev tokens, an admin); the app's users come by cookie.
  jwtSecret: process.env.JWT_SECRET ?? randomBytes(32).toString('hex'),
  port: ROWCAST_PORT,
  host: '127.0.0.1',
  slotName: process.env.SLOT_NAME ?? 'rowcast',
  publicationName: process.env.PUBLICATION_NAME ?? 'rowcast',
  logLevel: 'warn',
  hooks: {
    // Who a connection is: the app's session cookie; without one, the JWT check decides (and refuses).
    authenticate: ({ headers }) => {
      const id = /(?:^|;\s*)session=([^;]+)/.exec(headers.cookie ?? '')?.[1];
      const user = id === undefined ? undefined : sessions.get(id);
      if (id !== undefined && !user) return { refuse: { status: 401, code: 'TOKEN_INVALID', message: 'unknown or expired session: log in again' } };
      return user ? { principal: { sub: user.name, role: user.admin ? 'admin' : null } } : undefined;
    },
    // Moderation before anything is stored or delivered.
    onMessage: (message, { principal }) => {
      const text = typeof message?.text === 'string' ? message.text : '';
      if (/\bspam\b/i.test(text)) return { cancel: { code: 'FORBIDDEN', message: 'that looks like spam' } };
      return { modify: { text: text.replace(/\bdarn\b/gi, '****').slice(0, 500), from: principal.sub } };
    },
  },
});

const started = await rowcast.start();
if (!(await rowcast.topics()).topics.some((topic) => topic.name === 'lobby')) {
  await rowcast.createTopic({ name: 'lobby', history: 100, readers: 'authenticated', writers: 'authenticated' });
}

const app = createServer(async (req, res) => {
  if (req.method === 'POST' && req.url === '/login') {
    let body = '';
    for await (const chunk of req) body += chunk;
    const name = String(JSON.parse(body || '{}').name ?? '').replace(/[^a-z0-9_-]/gi, '').slice(0, 32);
    if (!name) return void res.writeHead(400).end('a name, please');
    const id = randomBytes(16).toString('hex');
    sessions.set(id, { name, admin: name === 'admin' });
    res.writeHead(204, { 'set-cookie': `session=${id}; HttpOnly; SameSite=Strict; Path=/` }).end();
    return;
  }
  if (req.method === 'GET' && req.url === '/who') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(rowcast.connections().map((c) => c.user.sub)));
    return;
  }
  res.writeHead(404).end();
});
app.listen(APP_PORT, '127.0.0.1', () => {
  const { port } = app.address();
  console.log(JSON.stringify({ msg: 'example listening', app: port, rowcast: started.port }));
});

const stop = async () => {
  app.close();
  await rowcast.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
