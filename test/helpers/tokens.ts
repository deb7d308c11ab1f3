import jwt from 'jsonwebtoken';

/** The HMAC secret of test servers. */
export const TEST_SECRET = 'rowcast-test-secret-0123456789';

/** `Authorization` for the operator pages (`/status`, `/metrics`): an admin token of the test secret. */
export function operatorHeaders(secret = TEST_SECRET): Record<string, string> {
  return { authorization: `Bearer ${signToken({ sub: 'operator', role: 'admin' }, secret)}` };
}

/** Sign a token for these claims with the test secret. */
export function signToken(claims: Record<string, unknown>, secret = TEST_SECRET): string {
  return jwt.sign(claims, secret, { algorithm: 'HS256', ...('exp' in claims ? {} : { expiresIn: '1h' }) });
}
