import type { TemplatedApp } from 'uWebSockets.js';

/**
 * Mounts `GET /status` (JSON from `status()`) and `GET /health` (200 while
 * `healthy()` is true, else 503 naming the failing part).
 */
export function mountStatusRoutes(
  app: TemplatedApp,
  status: () => unknown,
  health: () => { ok: boolean; failing: string[] },
): void {
  app.get('/status', (res) => {
    res.writeHeader('content-type', 'application/json').end(JSON.stringify(status()));
  });
  app.get('/health', (res) => {
    const { ok, failing } = health();
    res
      .writeStatus(ok ? '200 OK' : '503 Service Unavailable')
      .writeHeader('content-type', 'application/json')
      .end(JSON.stringify({ ok, failing }));
  });
}
