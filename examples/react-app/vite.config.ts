import type { IncomingMessage, ServerResponse } from 'node:http';
import react from '@vitejs/plugin-react';
import jwt from 'jsonwebtoken';
import { defineConfig, type Plugin } from 'vite';

/**
 * The page's token endpoint, /api/rowcast-token, served by `vite` (dev) and
 * `vite preview`; in production your backend serves it (docs/tokens.md).
 * JWT_SECRET is the rowcast server's (`npm start` keeps it in .rowcast/jwt-secret).
 */
function rowcastToken(): Plugin {
  const handle = (_request: IncomingMessage, response: ServerResponse) => {
    const secret = process.env.JWT_SECRET;
    if (!secret) return void response.writeHead(500).end("set JWT_SECRET to the rowcast server's secret");
    // Who is asking: a real app reads its session here (401 without one). This demo signs everyone in as "demo".
    const token = jwt.sign({ sub: 'demo' }, secret, { algorithm: 'HS256', expiresIn: '10m' });
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ token }));
  };
  return {
    name: 'rowcast-token',
    configureServer: (server) => void server.middlewares.use('/api/rowcast-token', handle),
    configurePreviewServer: (server) => void server.middlewares.use('/api/rowcast-token', handle),
  };
}

export default defineConfig({ plugins: [react(), rowcastToken()] });
