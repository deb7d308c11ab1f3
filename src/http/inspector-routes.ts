import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { HttpRequest, TemplatedApp } from 'uWebSockets.js';
import { RowcastError } from '../errors.js';
import { httpRoute, type Reply } from './http-route.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The package's root: the nearest folder above this module with a package.json (from src/ or dist/src/). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('inspector: no package.json above the server module');
    dir = parent;
  }
  return dir;
}

/** The folder of the built `@rowcast/client` bundle (a dependency of the server, so it can be served). */
function clientDir(): string {
  try {
    return path.dirname(fileURLToPath(import.meta.resolve('@rowcast/client')));
  } catch {
    return '';
  }
}

/** The files of `dir` whose names end in one of {@link TYPES}, read once: name → [content type, body]. */
function readStatic(dir: string): Map<string, [string, Buffer]> {
  const files = new Map<string, [string, Buffer]>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, [type, readFileSync(path.join(dir, name))]);
  }
  return files;
}

/**
 * Mounts the inspector (issue 9): `GET /` is the page (inspector/index.html),
 * `GET /inspector/<file>` its script, and `GET /client/index.js` the
 * bundled client SDK (`@rowcast/client`), which the page imports as an ES
 * module (and so may any page: it is served with CORS): no build step,
 * nothing from a CDN. The page holds no data of its
 * own: it connects to /live with the token pasted into it.
 */
export function mountInspectorRoutes(app: TemplatedApp, logger: Logger): void {
  const root = packageRoot();
  const page = readStatic(path.join(root, 'inspector'));
  const client = readStatic(clientDir());
  if (client.size === 0) logger.warn('inspector: the built client (@rowcast/client, dist/) is missing; run npm run build');
  // The client is public code: pages on other origins may import it as a module (which needs CORS).
  const serve = (files: Map<string, [string, Buffer]>, crossOrigin: boolean) => (req: HttpRequest, reply: Reply) => {
    const name = req.getParameter(0) ?? '';
    const file = files.get(name);
    if (!file) throw new RowcastError('NOT_FOUND', `no file ${JSON.stringify(name.slice(0, 100))}`);
    reply.send('200 OK', file[0], file[1], crossOrigin ? CROSS_ORIGIN : SAME_ORIGIN);
  };
  app.get(
    '/',
    httpRoute(logger, 'inspector', (_req, reply) => {
      const index = page.get('index.html');
      if (!index) throw new RowcastError('NOT_FOUND', 'the inspector page is missing from this installation');
      reply.send('200 OK', index[0], index[1], SAME_ORIGIN);
    }),
  );
  app.get('/inspector/:file', httpRoute(logger, 'inspector', serve(page, false)));
  app.get('/client/:file', httpRoute(logger, 'client', serve(client, true)));
}

const SAME_ORIGIN = Object.freeze({ 'cache-control': 'no-cache' });
const CROSS_ORIGIN = Object.freeze({ 'cache-control': 'no-cache', 'access-control-allow-origin': '*' });
