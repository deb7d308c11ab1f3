import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Principal } from '../auth/principal.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Database } from '../db/database.js';
import { RowcastError, type ErrorCode } from '../errors.js';
import type { AdminMethod, ConnectionInfo } from '../live/live-server.js';
import { deletePolicy, listPolicies, setPolicy, type PolicyInput } from '../policies/policy-store.js';

/** What the admin API works with. */
export interface AdminApi {
  readonly verifyToken: TokenVerifier;
  readonly db: Database;
  /** Runs a socket method for `principal` (same validation and errors as the socket). */
  readonly call: (principal: Principal, method: AdminMethod, attributes: unknown) => Promise<unknown>;
  readonly connections: () => ConnectionInfo[];
  /** Closes a connection (1008, with `reason`); `false` when there is none with that id. */
  readonly closeConnection: (id: string, reason: string) => boolean;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
}

/** HTTP status of each error code. */
const STATUS: Record<ErrorCode, string> = {
  INVALID_MESSAGE: '400 Bad Request',
  INVALID_ATTRIBUTES: '400 Bad Request',
  UNKNOWN_METHOD: '404 Not Found',
  TOPIC_NOT_FOUND: '404 Not Found',
  TOKEN_INVALID: '401 Unauthorized',
  FORBIDDEN: '403 Forbidden',
  TOPIC_EXISTS: '409 Conflict',
  READ_ONLY_TOPIC: '409 Conflict',
  TOPIC_FULL: '409 Conflict',
  LIMIT_EXCEEDED: '413 Payload Too Large',
  RATE_LIMIT_EXCEEDED: '429 Too Many Requests',
  INTERNAL: '500 Internal Server Error',
};

/** What a route gets: the admin, its path parameters and query, and the JSON body (if it takes one). */
interface Call {
  readonly admin: Principal;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  readonly body: unknown;
}

/**
 * The admin HTTP API under `/admin` (DESIGN.md §2): an admin JWT as
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
 * | `GET /admin/policies` | every table policy |
 * | `PUT /admin/policies/:table` | set `{"read", "ownerColumn"?, "groupColumn"?, "groupClaim"?}` |
 * | `DELETE /admin/policies/:table` | remove it |
 * | `GET /admin/connections` | id, client, user, subscriptions, buffered bytes |
 * | `DELETE /admin/connections/:id` | close it (1008) |
 */
export function mountAdminRoutes(app: TemplatedApp, api: AdminApi): void {
  const route = (method: 'get' | 'post' | 'put' | 'del', pattern: string, params: number, run: (call: Call) => Promise<unknown>, status = '200 OK') => {
    app[method](pattern, (res, req) => handle(api, res, req, method !== 'get' && method !== 'del', params, run, status));
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
  route('get', '/admin/policies', 0, () => listPolicies(api.db));
  route('put', '/admin/policies/:table', 1, ({ params, body }) => setPolicy(api.db, params[0]!, (body ?? {}) as PolicyInput));
  route('del', '/admin/policies/:table', 1, async ({ params }) => {
    if (!(await deletePolicy(api.db, params[0]!))) throw new RowcastError('TOPIC_NOT_FOUND', `no policy for ${params[0]}`);
    return { table: params[0] };
  });
  route('get', '/admin/connections', 0, async () => api.connections());
  route('del', '/admin/connections/:id', 1, async ({ admin, params }) => {
    if (!api.closeConnection(params[0]!, `closed by admin ${admin.sub ?? ''}`.trim())) {
      throw new RowcastError('TOPIC_NOT_FOUND', `no connection ${params[0]}`);
    }
    return { closed: params[0] };
  });
}

/**
 * One admin request, by uWS's rules: everything is read from `req` first,
 * `onAborted` is set before anything asynchronous, the body is copied out of
 * uWS's buffers as it arrives, and the answer is corked and skipped when the
 * client is gone.
 */
function handle(
  api: AdminApi,
  res: HttpResponse,
  req: HttpRequest,
  withBody: boolean,
  paramCount: number,
  run: (call: Call) => Promise<unknown>,
  status: string,
): void {
  const authorization = req.getHeader('authorization');
  const params = Array.from({ length: paramCount }, (_, i) => decodeURIComponent(req.getParameter(i) ?? ''));
  const query = new URLSearchParams(req.getQuery() ?? '');
  let aborted = false;
  res.onAborted(() => (aborted = true));
  const answer = (httpStatus: string, body: unknown) => {
    if (aborted) return;
    res.cork(() => res.writeStatus(httpStatus).writeHeader('content-type', 'application/json').end(JSON.stringify(body)));
  };
  const fail = (error: unknown) => {
    let coded: RowcastError;
    if (error instanceof RowcastError) coded = error;
    else {
      const correlationId = randomUUID();
      api.logger.error({ err: error, correlationId }, 'admin request failed');
      coded = new RowcastError('INTERNAL', `internal error (correlation id ${correlationId})`);
    }
    answer(STATUS[coded.code], { error: { code: coded.code, message: coded.message } });
  };
  let admin: Principal;
  try {
    admin = authenticate(api, authorization);
  } catch (error) {
    if (withBody) res.onData(() => {}); // the body is not read, but must be consumed
    fail(error);
    return;
  }
  const body = withBody ? readJson(res, api.maxBodyBytes) : Promise.resolve(undefined);
  body.then((json) => run({ admin, params, query, body: json })).then((data) => answer(status, data), fail);
}

function authenticate(api: AdminApi, authorization: string): Principal {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) throw new RowcastError('TOKEN_INVALID', 'send an admin token as Authorization: Bearer <JWT>');
  const principal = api.verifyToken(match[1]!);
  if (!principal.isAdmin) throw new RowcastError('FORBIDDEN', 'the admin API needs an admin token');
  return principal;
}

/** The request body as JSON: `INVALID_MESSAGE` when it is not, `LIMIT_EXCEEDED` past `maxBytes`. */
function readJson(res: HttpResponse, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      size += chunk.byteLength;
      // uWS reuses the chunk's memory after this callback: copy it.
      if (size <= maxBytes) chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      if (size > maxBytes) return reject(new RowcastError('LIMIT_EXCEEDED', `the body is over ${maxBytes} bytes`));
      if (size === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new RowcastError('INVALID_MESSAGE', 'the body is not JSON'));
      }
    });
  });
}
