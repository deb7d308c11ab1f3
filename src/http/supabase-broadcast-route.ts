import type { Logger } from 'pino';
import type { HttpRequest, TemplatedApp } from 'uWebSockets.js';
import type { Principal } from '../auth/principal.js';
import type { RowcastCore } from '../core/rowcast-core.js';
import { RowcastError } from '../errors.js';
import { channelTopic } from '../doors/supabase/channel-topic.js';
import { decodePathParameter, HTTP_STATUS, httpRoute, type RouteHandler } from './http-route.js';

/** What the broadcast route needs. */
export interface SupabaseBroadcastOptions {
  readonly core: RowcastCore;
  readonly maxBodyBytes: number;
  readonly maxBodyDepth: number;
  readonly logger: Logger;
}

/** Most messages one request may carry. */
const MAX_MESSAGES = 100;

/**
 * Supabase's broadcast over HTTP (docs/supabase.md, "Broadcast"), what
 * `@supabase/realtime-js` sends for a channel that is not joined:
 *
 * - `POST /realtime/v1/api/broadcast` with `{"messages": [{topic, event,
 *   payload, private?}]}` (`send()`'s fallback). All are checked and sent in
 *   order; the first refusal answers with its code, and those before it were
 *   sent.
 * - `POST /realtime/v1/api/broadcast/:topic/events/:event[?private=true]`
 *   with the payload as the JSON body (`httpSend()`).
 *
 * The user is the `Authorization: Bearer` token, else the `apikey` header.
 * Each message is published as a socket's broadcast would be (to the custom
 * topic of that name, else to the open channel), with the same permissions;
 * 202 when all were.
 */
export function mountSupabaseBroadcast(app: TemplatedApp, options: SupabaseBroadcastOptions): void {
  const { core } = options;
  app.post(
    '/realtime/v1/api/broadcast',
    httpRoute(options.logger, 'supabase broadcast', supabaseErrors(async (req, reply) => {
      const credentials = credentialsOf(req);
      const body = reply.readJson(options.maxBodyBytes, options.maxBodyDepth);
      body.catch(() => {}); // a refusal below wins over a bad body
      const principal = core.authenticate(credentials);
      const messages = ((await body) as { messages?: unknown } | undefined)?.messages;
      if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_MESSAGES) {
        throw new RowcastError('INVALID_MESSAGE', `the body is {"messages": [{"topic", "event", "payload", "private"?}, …]} with 1 to ${MAX_MESSAGES} messages`);
      }
      for (const message of messages as unknown[]) {
        const { topic, event, payload = null, private: isPrivate = false } = (message ?? {}) as Record<string, unknown>;
        await broadcast(core, principal, topic, event, payload, isPrivate === true);
      }
      reply.json('202 Accepted', {});
    })),
  );
  app.post(
    '/realtime/v1/api/broadcast/:topic/events/:event',
    httpRoute(options.logger, 'supabase httpSend', supabaseErrors(async (req, reply) => {
      const credentials = credentialsOf(req);
      const [topic, event] = [req.getParameter(0) ?? '', req.getParameter(1) ?? ''];
      const isPrivate = req.getQuery('private') === 'true';
      const body = reply.readJson(options.maxBodyBytes, options.maxBodyDepth);
      body.catch(() => {});
      const principal = core.authenticate(credentials);
      await broadcast(core, principal, decodePathParameter(topic), decodePathParameter(event), (await body) ?? null, isPrivate);
      reply.json('202 Accepted', {});
    })),
  );
}

/**
 * A refusal as Supabase's clients read it: realtime-js shows `error` (or
 * `message`) as text, so these routes answer `{"error": "<CODE>: <message>",
 * "code"}` with the code's HTTP status, not rowcast's `{"error": {code,
 * message}}`. Anything else stays the route guard's (INTERNAL).
 */
function supabaseErrors(handler: RouteHandler): RouteHandler {
  return async (req, reply) => {
    try {
      await handler(req, reply);
    } catch (error) {
      if (!(error instanceof RowcastError)) throw error;
      reply.json(HTTP_STATUS[error.code], { error: `${error.code}: ${error.message}`, code: error.code });
    }
  };
}

/** The token of a request: `Authorization: Bearer`, else the `apikey` (or `x-api-key`) header. */
function credentialsOf(req: HttpRequest): string {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.getHeader('authorization'))?.[1] ?? (req.getHeader('apikey') || req.getHeader('x-api-key'));
}

/** One broadcast to channel `topic`, checked as the door checks one. */
async function broadcast(core: RowcastCore, principal: Principal, topic: unknown, event: unknown, payload: unknown, isPrivate: boolean): Promise<void> {
  if (typeof topic !== 'string' || topic === '' || topic.length > 255) throw new RowcastError('INVALID_MESSAGE', 'topic: the channel name, 1 to 255 characters');
  if (typeof event !== 'string' || event === '' || event.length > 255) throw new RowcastError('INVALID_MESSAGE', 'event: a string of 1 to 255 characters');
  const topicName = channelTopic(core, topic, isPrivate);
  if (topicName === null) throw new RowcastError('TOPIC_NOT_FOUND', `no custom topic named ${JSON.stringify(topic)}, and open channels are off (OPEN_CHANNELS)`);
  await core.call(principal, 'new-message', { topicName, message: { event, payload } });
}
