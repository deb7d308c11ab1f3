import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import type { RowcastCore } from '../core/rowcast-core.js';
import { RowcastError } from '../errors.js';
import { channelTopic } from '../doors/supabase/channel-topic.js';
import { httpRoute } from './http-route.js';

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
 * `POST /realtime/v1/api/broadcast` (docs/supabase.md, "Broadcast"): what
 * `@supabase/realtime-js` sends when a channel is not joined. The user is the
 * `Authorization: Bearer` token, else the `apikey` header; each message
 * `{topic, event, payload, private?}` is published as a socket's broadcast
 * would be (to the custom topic of that name, else to the open channel),
 * with the same permissions. All are checked and sent in order; the first
 * refusal answers with its code, and the ones before it were sent. 202 when
 * all were.
 */
export function mountSupabaseBroadcast(app: TemplatedApp, options: SupabaseBroadcastOptions): void {
  const { core } = options;
  app.post(
    '/realtime/v1/api/broadcast',
    httpRoute(options.logger, 'supabase broadcast', async (req, reply) => {
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.getHeader('authorization'))?.[1];
      const apikey = req.getHeader('apikey') || req.getHeader('x-api-key');
      const body = reply.readJson(options.maxBodyBytes, options.maxBodyDepth);
      body.catch(() => {}); // a refusal below wins over a bad body
      const principal = core.authenticate(bearer ?? apikey);
      const messages = (await body as { messages?: unknown } | undefined)?.messages;
      if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_MESSAGES) {
        throw new RowcastError('INVALID_MESSAGE', `the body is {"messages": [{"topic", "event", "payload", "private"?}, …]} with 1 to ${MAX_MESSAGES} messages`);
      }
      for (const message of messages as unknown[]) {
        const { topic, event, payload = null, private: isPrivate = false } = (message ?? {}) as Record<string, unknown>;
        if (typeof topic !== 'string' || topic === '' || topic.length > 255) throw new RowcastError('INVALID_MESSAGE', 'topic: the channel name, 1 to 255 characters');
        if (typeof event !== 'string' || event === '' || event.length > 255) throw new RowcastError('INVALID_MESSAGE', 'event: a string of 1 to 255 characters');
        const topicName = channelTopic(core, topic, isPrivate === true);
        if (topicName === null) throw new RowcastError('TOPIC_NOT_FOUND', `no custom topic named ${JSON.stringify(topic)}, and open channels are off (OPEN_CHANNELS)`);
        await core.call(principal, 'new-message', { topicName, message: { event, payload } });
      }
      reply.json('202 Accepted', {});
    }),
  );
}
