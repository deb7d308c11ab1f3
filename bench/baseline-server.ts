/**
 * The baseline (issue 8): the hand-made alternative to rowcast that the
 * benchmark compares it with. A trigger on each table calls `pg_notify` with
 * the row as JSON (installed by bench/baseline.ts); this process holds one
 * `LISTEN` connection and a `ws` server, checks each socket's JWT on
 * connect, and on every notification loops over the connected sockets,
 * sending the event frame (rowcast's shape) to each one subscribed to the
 * table that may read the row: admins everything, others the rows whose
 * `owner_id` is their `sub` (or every row of a table without `owner_id`).
 *
 * Usage (forked): baseline-server.ts '{"databaseUrl", "port", "secret"}';
 * it sends {type: 'listening'} over IPC once it accepts connections.
 */
import jwt from 'jsonwebtoken';
import pg from 'pg';
import { WebSocketServer, type WebSocket } from 'ws';

interface Options {
  readonly databaseUrl: string;
  readonly port: number;
  readonly secret: string;
}

interface Client {
  readonly socket: WebSocket;
  readonly sub: string;
  readonly admin: boolean;
  readonly topics: Set<string>;
}

const options = JSON.parse(process.argv[2]!) as Options;
const clients = new Set<Client>();
const EVENT = { INSERT: 'create', UPDATE: 'update', DELETE: 'delete' } as const;

const listener = new pg.Client({ connectionString: options.databaseUrl });
await listener.connect();
listener.on('notification', (notification) => {
  const change = JSON.parse(notification.payload!) as { table: string; op: keyof typeof EVENT; row: Record<string, unknown> };
  const { table, row } = change;
  const frame = JSON.stringify({ type: 'event', topic: table, event: EVENT[change.op], data: { type: table, id: String(row['id']), attributes: row } });
  const owner = 'owner_id' in row ? String(row['owner_id']) : undefined;
  for (const client of clients) {
    if (client.topics.has(table) && (client.admin || owner === undefined || owner === client.sub)) client.socket.send(frame);
  }
});
await listener.query('LISTEN rowcast_baseline');

const wss = new WebSocketServer({ host: '0.0.0.0', port: options.port, path: '/live', perMessageDeflate: false }, () => process.send!({ type: 'listening' }));
wss.on('connection', (socket, request) => {
  let claims: { sub: string; role?: string };
  try {
    const token = new URL(request.url!, 'http://localhost').searchParams.get('token') ?? '';
    claims = jwt.verify(token, options.secret, { algorithms: ['HS256'] }) as typeof claims;
  } catch {
    socket.close(4001, 'invalid token');
    return;
  }
  const client: Client = { socket, sub: claims.sub, admin: claims.role === 'admin', topics: new Set() };
  clients.add(client);
  socket.on('close', () => clients.delete(client));
  socket.on('message', (data) => {
    const request = JSON.parse(data.toString()) as { id: number; method: string; attributes: { topicName: string } };
    if (request.method === 'subscribe') client.topics.add(request.attributes.topicName);
    socket.send(JSON.stringify({ type: 'response', id: request.id, method: request.method, ok: true, data: {} }));
  });
  socket.send(JSON.stringify({ type: 'session', sub: client.sub }));
});
