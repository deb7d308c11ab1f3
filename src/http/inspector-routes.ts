import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';

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
 * `GET /inspector/<file>` its script, and `GET /client/<file>.js` the
 * built client SDK (dist/src/client), which the page imports as an ES
 * module (and so may any page: it is served with CORS): no build step,
 * nothing from a CDN. The page holds no data of its
 * own: it connects to /live with the token pasted into it.
 */
export function mountInspectorRoutes(app: TemplatedApp, logger: Logger): void {
  const root = packageRoot();
  const page = readStatic(path.join(root, 'inspector'));
  const client = readStatic(path.join(root, 'dist', 'src', 'client'));
  if (client.size === 0) logger.warn('inspector: the built client (dist/src/client) is missing; run npm run build');
  // The client is public code: pages on other origins may import it as a module (which needs CORS).
  const serve = (files: Map<string, [string, Buffer]>, crossOrigin: boolean) => (res: HttpResponse, req: HttpRequest) => {
    const file = files.get(req.getParameter(0) ?? '');
    if (!file) {
      res.writeStatus('404 Not Found').end('not found');
      return;
    }
    res.cork(() => {
      if (crossOrigin) res.writeHeader('access-control-allow-origin', '*');
      res.writeHeader('content-type', file[0]).writeHeader('cache-control', 'no-cache').end(file[1]);
    });
  };
  app.get('/', (res) => {
    const index = page.get('index.html');
    if (!index) {
      res.writeStatus('404 Not Found').end('inspector page missing');
      return;
    }
    res.writeHeader('content-type', index[0]).writeHeader('cache-control', 'no-cache').end(index[1]);
  });
  app.get('/inspector/:file', serve(page, false));
  app.get('/client/:file', serve(client, true));
}
