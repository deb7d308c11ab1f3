import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import { httpRoute } from './http-route.js';
import type { NodeHealth, NodeStatus } from './node-status.js';
import type { OperatorAccess } from './operator-access.js';

/** What `/status` and `/health` report. */
export interface StatusSources {
  /** The `/status` document (operators only). */
  readonly status: () => NodeStatus;
  /** Up or down per dependency: `failing` names the parts that are down. */
  readonly health: () => NodeHealth;
  readonly access: OperatorAccess;
  readonly logger: Logger;
}

/**
 * Mounts `GET /health` (open, for load balancers: 200 while every dependency
 * is up, else 503, and nothing but which parts are down) and `GET /status`
 * (the server's state as JSON, for operators: see {@link OperatorAccess}).
 */
export function mountStatusRoutes(app: TemplatedApp, sources: StatusSources): void {
  app.get(
    '/status',
    httpRoute(sources.logger, 'status', (req, reply) => {
      const refusal = sources.access(req.getHeader('authorization'));
      if (refusal) reply.error(refusal);
      else reply.json('200 OK', sources.status());
    }),
  );
  app.get(
    '/health',
    httpRoute(sources.logger, 'health', (_req, reply) => {
      const { ok, failing } = sources.health();
      reply.json(ok ? '200 OK' : '503 Service Unavailable', { ok, failing });
    }),
  );
}
