import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/db/embedded-postgres.js';
import { freePort } from './free-port.js';

/** A Postgres of a test's own, which it may stop and restart. */
export interface PrivatePostgres {
  readonly url: string;
  readonly server: RunningPostgres;
  /** Stops it and removes its data directory. */
  destroy(): Promise<void>;
}

/** Starts a throw-away embedded Postgres (for a test that restarts it: other tests must not share it). */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = await mkdtemp(path.resolve('.rowcast', 'chaos-pg-'));
  const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port: await freePort() });
  return {
    url: server.url,
    server,
    destroy: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
