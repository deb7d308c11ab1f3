import type { RowcastCore } from '../../core/rowcast-core.js';
import { RowcastError } from '../../errors.js';
import { OPEN_CHANNEL_PREFIX } from '../../topics/topic-registry.js';

/**
 * The rowcast topic of Supabase channel `realtime:<name>` for broadcast: the
 * custom topic `<name>` when there is one (it governs who may join and
 * send), else the open channel `~<name>` (`null` when `OPEN_CHANNELS` is off).
 * A private channel must be a custom topic.
 */
export function channelTopic(core: RowcastCore, name: string, isPrivate: boolean): string | null {
  if (core.topicKind(name) === 'custom') return name;
  if (isPrivate) throw new RowcastError('FORBIDDEN', `a private channel needs a custom topic named ${JSON.stringify(name)} that you may read`);
  const open = `${OPEN_CHANNEL_PREFIX}${name}`;
  return core.topicKind(open) === 'custom' ? open : null;
}
