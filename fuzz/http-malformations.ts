/**
 * Ways the HTTP fuzzer (fuzz/http.ts) breaks a request at the HTTP level: a
 * bad request line, bad header syntax, contradictory body framing, junk after
 * the request. Besides syntax errors this includes valid HTTP that
 * uWebSockets.js does not parse (HTTP/1.0, the absolute form, more than 48
 * header fields, header names with characters other than letters, digits and
 * `-`): the server may answer all of them with a close, or not at all.
 */

export const MALFORMATIONS = [
  'lf-line-ends',
  'no-version',
  'bad-version',
  'http-1.0',
  'double-space',
  'tab-separated',
  'empty-method',
  'space-in-target',
  'control-byte-in-target',
  'relative-target',
  'absolute-form',
  'garbage-request-line',
  'header-without-colon',
  'unusual-header-name',
  'space-in-header-name',
  'space-before-colon',
  'control-byte-in-header',
  'bare-cr',
  'obs-fold',
  'no-host',
  'too-many-headers',
  'negative-length',
  'two-lengths',
  'length-and-chunked',
  'length-too-long',
  'trailing-garbage',
] as const;
export type Malformation = (typeof MALFORMATIONS)[number];

/** A request on its way to bytes. Text is latin1: one character per byte. */
export interface RequestParts {
  readonly method: string;
  readonly target: string;
  requestLine: string;
  /** `Name: value` lines, `Host` first. */
  headers: string[];
  body: Buffer;
  newline: string;
}

/** Breaks `parts` the way `how` says. */
export function malform(parts: RequestParts, how: Malformation): void {
  const { method, target, headers } = parts;
  /** Replaces the body's framing headers with `lines`. */
  const framing = (...lines: string[]) => {
    parts.headers = [...headers.filter((h) => !/^(Content-Length|Transfer-Encoding):/.test(h)), ...lines];
  };
  switch (how) {
    case 'lf-line-ends':
      parts.newline = '\n';
      break;
    case 'no-version':
      parts.requestLine = `${method} ${target}`;
      break;
    case 'bad-version':
      parts.requestLine = `${method} ${target} ${pick(target, ['HTTP/2.0', 'HTTP/9.9', 'HTTX/1.1', 'http/1.1', 'HTTP/1', 'HTTP/1.1.1', 'HTTP/1.1 extra', 'HTTP/01.1'])}`;
      break;
    case 'http-1.0':
      parts.requestLine = `${method} ${target} HTTP/1.0`;
      break;
    case 'double-space':
      parts.requestLine = `${method}  ${target} HTTP/1.1`;
      break;
    case 'tab-separated':
      parts.requestLine = `${method}\t${target}\tHTTP/1.1`;
      break;
    case 'empty-method':
      parts.requestLine = ` ${target} HTTP/1.1`;
      break;
    case 'space-in-target':
      parts.requestLine = `${method} ${insert(target, ' ')} HTTP/1.1`;
      break;
    case 'control-byte-in-target':
      parts.requestLine = `${method} ${insert(target, pick(target, ['\x00', '\x01', '\x08', '\x0b', '\x1b', '\x1f']))} HTTP/1.1`;
      break;
    case 'relative-target':
      parts.requestLine = `${method} ${target.replace(/^\/+/, '')} HTTP/1.1`;
      break;
    case 'absolute-form':
      parts.requestLine = `${method} http://127.0.0.1${target} HTTP/1.1`;
      break;
    case 'garbage-request-line':
      parts.requestLine = pick(target, ['GET', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 'PRI * HTTP/2.0', '/health', 'HTTP/1.1 200 OK', '\xff\xfe\xfd', '{"method":"ping"}']);
      break;
    case 'header-without-colon':
      headers.push('X-Fuzz-Garbage');
      break;
    case 'unusual-header-name':
      headers.push(`${pick(target, ['X_Fuzz', 'x.fuzz', 'x|fuzz', 'x~', "x'", 'x#', 'x!', 'x*', 'x+', 'x^', 'x`'])}: 1`);
      break;
    case 'space-in-header-name':
      headers.push('X Fuzz: 1');
      break;
    case 'space-before-colon':
      headers.push('X-Fuzz : 1');
      break;
    case 'control-byte-in-header':
      headers.push('X-Fuzz: a\x01b\x7fc');
      break;
    case 'bare-cr':
      headers.push('X-Fuzz: a\rb');
      break;
    case 'obs-fold':
      headers.push('X-Fuzz: a\r\n b');
      break;
    case 'no-host':
      headers.shift();
      break;
    case 'too-many-headers':
      for (let i = 0; i < 60; i++) headers.push(`X-Fuzz-${i}: ${i}`);
      break;
    case 'negative-length':
      framing('Content-Length: -1');
      break;
    case 'two-lengths':
      framing(`Content-Length: ${parts.body.length + 1}`, `Content-Length: ${parts.body.length}`);
      break;
    case 'length-and-chunked':
      framing('Transfer-Encoding: chunked', `Content-Length: ${parts.body.length}`);
      break;
    case 'length-too-long':
      framing(`Content-Length: ${parts.body.length + 10}`);
      break;
    case 'trailing-garbage':
      // The body as its framing says, then bytes that start no request.
      if (!headers.some((h) => /^(Content-Length|Transfer-Encoding):/.test(h))) headers.push('Content-Length: 0');
      parts.body = Buffer.concat([parts.body, Buffer.from(' \x00garbage\r\n\r\n', 'latin1')]);
      break;
  }
}

/** A choice from `options` that depends on `seed` only (so that a request always encodes the same way). */
function pick(seed: string, options: readonly string[]): string {
  let hash = 0;
  for (let i = 0; i < seed.length; i += 97) hash = (hash * 31 + seed.charCodeAt(i)) | 0;
  return options[Math.abs(hash + seed.length) % options.length]!;
}

/** `text` with `what` in its middle. */
function insert(text: string, what: string): string {
  const at = Math.min(text.length, 1 + (text.length >> 1));
  return text.slice(0, at) + what + text.slice(at);
}
