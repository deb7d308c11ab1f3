/** Where a token came from on the upgrade request, and the subprotocol to answer with. */
export interface Credentials {
  /** `''` when the request carries none. */
  readonly token: string;
  /** The `Sec-WebSocket-Protocol` to echo (`''`: none). */
  readonly protocol: string;
}

const BEARER_PROTOCOL = 'bearer.';

/**
 * Finds the token of an upgrade request, in this order: `?token=`, an
 * `Authorization: Bearer <JWT>` header (servers and native apps), or a
 * `bearer.<JWT>` WebSocket subprotocol (browsers, which cannot set headers
 * and may not want tokens in URLs and access logs). A browser only accepts
 * the upgrade if the server echoes one of the subprotocols it offered: any
 * other protocol it offered (say `rowcast`) is preferred, else the
 * `bearer.<JWT>` entry itself.
 *
 * @example
 * credentials('', '', 'rowcast, bearer.eyJ…') // { token: 'eyJ…', protocol: 'rowcast' }
 */
export function credentials(query: string, authorization: string, protocols: string): Credentials {
  const offered = protocols
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const bearer = offered.find((p) => p.startsWith(BEARER_PROTOCOL));
  const protocol = offered.find((p) => !p.startsWith(BEARER_PROTOCOL)) ?? bearer ?? '';
  if (query !== '') return { token: query, protocol };
  const header = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (header) return { token: header[1]!, protocol };
  return { token: bearer?.slice(BEARER_PROTOCOL.length) ?? '', protocol };
}
