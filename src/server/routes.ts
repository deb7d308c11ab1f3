import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Config } from '../config/config.js';
import type { RowcastCore } from '../core/rowcast-core.js';
import type { Database } from '../db/database.js';
import type { LiveDoor } from '../doors/live/live-door.js';
import { RowcastError } from '../errors.js';
import { mountAdminRoutes } from '../http/admin-routes.js';
import { httpRoute } from '../http/http-route.js';
import { mountInspectorRoutes } from '../http/inspector-routes.js';
import type { createMetrics } from '../http/metrics.js';
import type { NodeHealth, NodeStatus } from '../http/node-status.js';
import type { OperatorAccess } from '../http/operator-access.js';
import { mountStatusRoutes } from '../http/status-routes.js';
import { mountSupabaseBroadcast } from '../http/supabase-broadcast-route.js';

/** What the node's routes serve. */
export interface RouteSources {
  readonly config: Config;
  readonly core: RowcastCore;
  readonly live: LiveDoor;
  /** Further doors (`startServer`'s `doors`): each mounts its route. */
  readonly doors: ReadonlyArray<(app: TemplatedApp) => void>;
  readonly db: Database;
  readonly verifyToken: TokenVerifier;
  readonly access: OperatorAccess;
  readonly status: () => NodeStatus;
  readonly health: () => NodeHealth;
  readonly mountMetrics: ReturnType<typeof createMetrics>;
  readonly logger: Logger;
}

/**
 * Mounts everything a node serves on one uWS app: the `/live` door and any
 * further doors, the operator pages, the inspector, the admin API, and a
 * coded 404 for anything else.
 */
export function mountRoutes(app: TemplatedApp, sources: RouteSources): void {
  const { config, core, logger } = sources;
  app.ws('/live', sources.live.behavior);
  for (const mount of sources.doors) mount(app);
  mountStatusRoutes(app, { status: sources.status, health: sources.health, access: sources.access, logger });
  sources.mountMetrics(app);
  if (config.INSPECTOR) mountInspectorRoutes(app, logger);
  mountSupabaseBroadcast(app, { core, maxBodyBytes: config.MAX_MESSAGE_BYTES, maxBodyDepth: config.MAX_FRAME_DEPTH, logger });
  mountAdminRoutes(app, {
    verifyToken: sources.verifyToken,
    db: sources.db,
    call: (principal, method, attributes) => core.call(principal, method, attributes),
    connections: () => core.connections(),
    connection: (id) => core.connection(id),
    closeConnection: (id, reason) => core.closeConnection(id, reason),
    messageConnection: (id, from, message) => core.messageConnection(id, from, message),
    maxBodyBytes: config.MAX_MESSAGE_BYTES,
    maxBodyDepth: config.MAX_FRAME_DEPTH,
    logger,
  });
  app.any(
    '/*',
    httpRoute(logger, 'not found', (_req, reply) => {
      reply.error(new RowcastError('NOT_FOUND', 'no such route: see docs/operations.md for the HTTP API'));
    }),
  );
}
