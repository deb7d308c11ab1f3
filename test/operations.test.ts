/**
 * Issue 7, operating rowcast: TLS, /metrics, the CLI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { LiveClient } from './helpers/live-client.js';
import { signToken } from './helpers/tokens.js';
import { withServer } from './helpers/with-server.js';

const NOTES = `
  CREATE TABLE notes (id int PRIMARY KEY, body text);
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('notes', 'public');`;

/** A self-signed certificate for 127.0.0.1 and localhost, made with openssl for this run. */
function certificate(): { cert: string; key: string; certPem: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rowcast-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key, certPem: readFileSync(cert, 'utf8') };
}
const tls = certificate();

test('with TLS_CERT_FILE and TLS_KEY_FILE, wss:// serves the same endpoint and events reach both kinds of socket', withServer, {
  sql: NOTES,
  env: { TLS_CERT_FILE: tls.cert, TLS_KEY_FILE: tls.key, TLS_PORT: '0' },
}, async (t, { server, connect, db }) => {
  t.truthy(server.tlsPort);
  const secure = await LiveClient.connect(`wss://127.0.0.1:${server.tlsPort}/live?token=${signToken({ sub: 's' })}`, { ca: tls.certPem });
  await secure.subscribe('notes');
  const plain = await connect({ sub: 'p' });
  await plain.subscribe('notes');
  await db.query(`INSERT INTO notes VALUES (1, 'over TLS')`);
  t.like(await secure.next((f) => f['type'] === 'event'), { data: { id: '1', attributes: { body: 'over TLS' } } });
  t.like(await plain.next((f) => f['type'] === 'event'), { data: { id: '1' } });
  secure.close();
});
