import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 of a cluster-stream entry (`CLUSTER_SECRET`), over the
 * stream's key and the entry's data, as hex: an entry cannot be forged, nor
 * moved from another cluster's stream, by someone who can write to Redis but
 * does not hold the secret.
 *
 * @example
 * const s = signEntry(secret, 'rowcast:rowcast', data);
 * verifyEntry(secret, 'rowcast:rowcast', data, s) // true
 */
export function signEntry(secret: string, key: string, data: string): string {
  return createHmac('sha256', secret).update(key).update('\n').update(data).digest('hex');
}

/** Whether `signature` is the entry's {@link signEntry}, compared in constant time. */
export function verifyEntry(secret: string, key: string, data: string, signature: string | undefined): boolean {
  if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) return false;
  return timingSafeEqual(Buffer.from(signEntry(secret, key, data), 'hex'), Buffer.from(signature, 'hex'));
}
