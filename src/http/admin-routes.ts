import type { Logger } from 'pino';
import type { HttpRequest, TemplatedApp } from 'uWebSockets.js';
import type { Principal } from '../auth/principal.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Database } from '../db/database.js';
import { RowcastError } from '../errors.js';
import { decodePathParameter, httpRoute, type Reply } from './http-route.js';
import type { AdminMethod, ConnectionDetail, ConnectionInfo, RowcastCore } from '../core/rowcast-core.js';
import { deletePolicy, listPolicies, setPolicy, type PolicyInput } from '../policies/policy-store.js';

/** What the admin API works with. */
export interface AdminApi {
  readonly verifyToken: TokenVerifier;
  readonly db: Database;
  /** Runs a socket method for `principal` (same validation and errors as the socket). */
  readonly call: (principal: Principal, method: AdminMethod, attributes: unknown) => Promise<unknown>;
  readonly connections: () => ConnectionInfo[];
  readonly connection: (id: string) => ConnectionDetail | undefined;
  /** Closes a connection (1008, with `reason`); `false` when there is none with that id. */
  readonly closeConnection: (id: string, reason: string) => boolean;
  readonly messageConnection: RowcastCore['messageConnection'];
  readonly maxBodyBytes: number;
  /** Bodies nested deeper are refused (`MAX_FRAME_DEPTH`). */
  readonly maxBodyDepth: number;
  readonly logger: Logger;
}

/** What a route gets: the admin, its path parameters and query, and the JSON body (if it takes one). */
interface Call {
  readonly admin: Principal;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  readonly body: unknown;
}

/**
 * The admin HTTP API under `/admin` (docs/operations.md): an admin JWT as
 * `Authorization: Bearer`, JSON in and out, the socket's error codes in
 * `{"error": {"code", "message"}}` with a matching HTTP status. Topic routes
 * run the socket's own handlers, so validation and rules are the same.
 *
 * | route | does |
 * |---|---|
 * | `GET /admin/topics` | tables and custom topics |
 * | `POST /admin/topics` | create a custom topic (`create-topic` attributes) |
 * | `DELETE /admin/topics/:name` | destroy it |
 * | `POST /admin/topics/:name/messages` | publish `{"message": …}` |
 * | `GET /admin/topics/:name/history?before=&limit=` | stored messages, newest first |
 * | `GET /admin/topics/:name/presence` | who is present (`{topic, state}`) |
 * | `GET /admin/policies` | every table policy |
 * | `PUT /admin/policies/:table` | set `{"read", "ownerColumn"?, "groupColumn"?, "groupClaim"?}` |
 * | `DELETE /admin/policies/:table` | remove it |
 * | `GET /admin/connections` | id, client, user, subscriptions, buffered bytes |
 * | `GET /admin/connections/:id` | its principal, each subscription (topic, filter, partitions), its presences |
 * | `POST /admin/connections/:id/message` | `{message}`: a `direct` frame to that connection only (kept nowhere) |
 * | `POST /admin/users/:sub/message` | `{message}`: a direct message to user `sub`, kept in their inbox `@me` |
 * | `DELETE /admin/connections/:id` | close it (1008) |
 */
export function mountAdminRoutes(app: TemplatedApp, api: AdminApi): void {
  const route = (method: 'get' | 'post' | 'put' | 'del', pattern: string, params: number, run: (call: Call) => Promise<unknown>, status = '200 OK') => {
    const withBody = method === 'post' || method === 'put';
    app[method](pattern, httpRoute(api.logger, `admin ${pattern}`, (req, reply) => handle(api, req, reply, withBody, params, run, status)));
  };
  route('get', '/admin/topics', 0, ({ admin }) => api.call(admin, 'list-topic', {}));
  route('post', '/admin/topics', 0, ({ admin, body }) => api.call(admin, 'create-topic', body), '201 Created');
  route('del', '/admin/topics/:name', 1, ({ admin, params }) => api.call(admin, 'destroy-topic', { name: params[0] }));
  route('post', '/admin/topics/:name/messages', 1, ({ admin, params, body }) =>
    api.call(admin, 'new-message', { topicName: params[0], message: (body as { message?: unknown } | null)?.message }),
  '201 Created');
  route('get', '/admin/topics/:name/history', 1, ({ admin, params, query }) => {
    const limit = query.get('limit');
    return api.call(admin, 'history', {
      topicName: params[0],
      ...(query.has('before') ? { before: query.get('before') } : {}),
      ...(limit !== null ? { limit: Number(limit) } : {}),
    });
  });
  route('get', '/admin/topics/:name/presence', 1, ({ admin, params }) => api.call(admin, 'presence', { topicName: params[0] }));
  route('get', '/admin/policies', 0, () => listPolicies(api.db));
  route('put', '/admin/policies/:table', 1, ({ params, body }) => setPolicy(api.db, params[0]!, (body ?? {}) as PolicyInput));
  route('del', '/admin/policies/:table', 1, async ({ params }) => {
    if (!(await deletePolicy(api.db, params[0]!))) throw new RowcastError('TOPIC_NOT_FOUND', `no policy for ${params[0]}`);
    return { table: params[0] };
  });
  route('get', '/admin/connections', 0, async () => api.connections());
  route('get', '/admin/connections/:id', 1, async ({ params }) => {
    const connection = api.connection(params[0]!);
    if (!connection) throw new RowcastError('NOT_FOUND', `no connection ${params[0]}`);
    return connection;
  });
  route('post', '/admin/connections/:id/message', 1, async ({ admin, params, body }) => {
    const message = (body as { message?: unknown } | null)?.message;
    if (message === undefined) throw new RowcastError('INVALID_ATTRIBUTES', 'message: required');
    const sent = api.messageConnection(params[0]!, admin.sub, message);
    if (sent === 'none') throw new RowcastError('NOT_FOUND', `no connection ${params[0]}`);
    if (sent === 'unsupported') throw new RowcastError('INVALID_ATTRIBUTES', `connection ${params[0]} is on a door without direct frames (only /live has them)`);
    return { sent: params[0] };
  });
  route('post', '/admin/users/:sub/message', 1, async ({ admin, params, body }) =>
    api.call(admin, 'direct-message', { to: params[0], message: (body as { message?: unknown } | null)?.message }),
  );
  route('del', '/admin/connections/:id', 1, async ({ admin, params }) => {
    if (!api.closeConnection(params[0]!, `closed by admin ${admin.sub ?? ''}`.trim())) {
      throw new RowcastError('TOPIC_NOT_FOUND', `no connection ${params[0]}`);
    }
    return { closed: params[0] };
  });
}

/**
 * One admin request, by uWS's rules: everything is read from `req` first
 * (path parameters decoded there: a malformed escape is a coded refusal),
 * the body reader is attached before anything asynchronous, and the answer
 * goes through {@link Reply} (corked, dropped when the client is gone).
 */
async function handle(
  api: AdminApi,
  req: HttpRequest,
  reply: Reply,
  withBody: boolean,
  paramCount: number,
  run: (call: Call) => Promise<unknown>,
  status: string,
): Promise<void> {
  const authorization = req.getHeader('authorization');
  const query = new URLSearchParams(req.getQuery() ?? '');
  const rawParams = Array.from({ length: paramCount }, (_, i) => req.getParameter(i) ?? '');
  // The body is read (or drained) in any case: a refusal must not leave it in the connection.
  const body = withBody ? reply.readJson(api.maxBodyBytes, api.maxBodyDepth) : Promise.resolve(undefined);
  body.catch(() => {}); // a refusal below wins over a bad body
  const admin = authenticate(api, authorization);
  const params = rawParams.map(decodePathParameter);
  const data = await run({ admin, params, query, body: await body });
  reply.json(status, data);
}

function authenticate(api: AdminApi, authorization: string): Principal {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) throw new RowcastError('TOKEN_INVALID', 'send an admin token as Authorization: Bearer <JWT>');
  const principal = api.verifyToken(match[1]!);
  if (!principal.isAdmin) throw new RowcastError('FORBIDDEN', 'the admin API needs an admin token');
  return principal;
}
