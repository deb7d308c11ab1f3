import jwt from 'jsonwebtoken';

/** The HMAC secret of test servers. */
export const TEST_SECRET = 'rowcast-test-secret-0123456789';

/** Sign a token for these claims with the test secret. */
export function signToken(claims: Record<string, unknown>, secret = TEST_SECRET): string {
  return jwt.sign(claims, secret, { algorithm: 'HS256', ...('exp' in claims ? {} : { expiresIn: '1h' }) });
}
