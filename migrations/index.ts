import type { Migration } from 'kysely';
import * as rowcastSchema from './0001-rowcast-schema.js';
import * as policyIdentityTrigger from './0002-policy-identity-trigger.js';
import * as messagePositions from './0003-message-positions.js';
import * as messageOrigin from './0004-message-origin.js';
import * as topicPresence from './0005-topic-presence.js';
import * as replayFloors from './0006-replay-floors.js';
import * as hiddenColumns from './0007-hidden-columns.js';
import * as directMessages from './0008-direct-messages.js';

/**
 * Every migration, by name, in order. Listed here rather than read from the
 * folder so that they compile and ship with the server.
 */
export const migrations: Record<string, Migration> = {
  '0001-rowcast-schema': rowcastSchema,
  '0002-policy-identity-trigger': policyIdentityTrigger,
  '0003-message-positions': messagePositions,
  '0004-message-origin': messageOrigin,
  '0005-topic-presence': topicPresence,
  '0006-replay-floors': replayFloors,
  '0007-hidden-columns': hiddenColumns,
  '0008-direct-messages': directMessages,
};
