// Serves index.html and its token endpoint, with nothing but node:http and jsonwebtoken. From the rowcast folder:
//   JWT_SECRET=$(cat .rowcast/jwt-secret) node examples/vanilla/server.mjs    (then open http://localhost:3000)
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import jwt from 'jsonwebtoken';

const secret = process.env.JWT_SECRET; // the rowcast server's: it checks the tokens signed here
if (!secret) throw new Error("set JWT_SECRET to the rowcast server's (npm start keeps it in .rowcast/jwt-secret)");

const server = createServer(async (request, response) => {
  if (request.url === '/api/rowcast-token') {
    // Who is asking: a real app reads its session here (401 without one). This demo signs everyone in as "demo".
    const token = jwt.sign({ sub: 'demo' }, secret, { algorithm: 'HS256', expiresIn: '10m' });
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    response.end(JSON.stringify({ token }));
  } else if (request.url === '/') {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(await readFile(new URL('index.html', import.meta.url)));
  } else {
    response.writeHead(404).end();
  }
});
server.listen(Number(process.env.PORT ?? 3000), () => console.log(`http://localhost:${server.address().port}`));
