/**
 * rowcast as a library (docs/library.md): `createRowcast(options)` mounts
 * the server inside a Node app.
 *
 * @example
 * import { createRowcast } from 'rowcast';
 * const rowcast = createRowcast({ databaseUrl: process.env.DATABASE_URL, jwtSecret: process.env.JWT_SECRET });
 * await rowcast.start();
 */
export { createRowcast, type Rowcast, type RowcastOptions, type RowcastStarted } from './create-rowcast.js';
export type { HookConnection, HookRefusal, MessageContext, MessageVerdict, RowcastHooks, SubscribeContext, SubscribeVerdict } from '../core/hooks.js';
export type { Principal } from '../auth/principal.js';
export type { ConnectionInfo } from '../core/rowcast-core.js';
export type { NodeStatus } from '../http/node-status.js';
