import uWS from 'uWebSockets.js';

/**
 * Which uWebSockets.js implementation loaded. The npm build rowcast uses falls
 * back silently to a slow JavaScript implementation when its native binary
 * does not load on this platform/Node ABI; start-up reports which one runs.
 */
export const uwsEngine: 'native' | 'javascript-fallback' =
  typeof (uWS as unknown as Record<string, unknown>)['getParts'] === 'function' ? 'native' : 'javascript-fallback';
