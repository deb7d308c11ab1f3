/**
 * The `/live` wire contract (docs/protocol.md): every client frame, every
 * server frame, the error and close codes and each method's response data.
 * Types and constants only, without dependencies, so the client packages
 * import it whole; the server's frame parser (zod) is
 * `parse-client-frame.ts`, which they never import.
 */
export * from './client-frames.js';
export * from './close-codes.js';
export * from './error-codes.js';
export * from './presence.js';
export * from './response-data.js';
export * from './server-frames.js';
export * from './topics.js';
