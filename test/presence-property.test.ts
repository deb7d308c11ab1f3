/**
 * Presence as a property, over a cluster of two nodes: whatever the joins,
 * updates, leaves and dropped connections on either node, once things are
 * quiet every connected member's view, and an observer's on each node,
 * equals the set of live presences (each key with exactly the metas of its
 * live connections), with no ghost and none missing.
 */
import test from 'ava';
import fc from 'fast-check';
import { clusterNodes, REDIS_URL } from './helpers/cluster-nodes.js';
import { LiveClient } from './helpers/live-client.js';
import { presenceView } from './helpers/presence-view.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken } from './helpers/with-server.js';
import { withServerProcess } from './helpers/with-server-process.js';

const USERS = ['ann', 'ben', 'cat'];

/** One step: a connection (slot) joins on a node as a user, updates its meta, untracks, or drops. */
type Step =
  | { readonly kind: 'join'; readonly slot: number; readonly node: number; readonly user: number }
  | { readonly kind: 'update' | 'untrack' | 'drop'; readonly slot: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('join' as const), slot: fc.nat(7), node: fc.nat(1), user: fc.nat(USERS.length - 1) }),
  fc.record({ kind: fc.constantFrom('update' as const, 'untrack' as const, 'drop' as const), slot: fc.nat(7) }),
);

/** The metas a client sees on `topic`, as sorted `key/phx_ref/v`. */
function seen(client: LiveClient, topic: string): string {
  return [...(presenceView(client.frames, topic) ?? new Map())]
    .flatMap(([key, metas]) => [...metas.values()].map((meta) => `${key}/${meta['phx_ref']}/${meta['v']}`))
    .sort()
    .join(',');
}

test('at quiescence every view over the cluster equals the live presences', withServerProcess, {}, async (t, fixture) => {
  const nodes = await clusterNodes(t, fixture, 2, REDIS_URL, { PRESENCE_TRACK_RATE: '1000' });
  const admin = await LiveClient.connect(`${nodes[0]!.liveUrl}?token=${signToken({ sub: 'admin', role: 'admin' })}`);
  t.teardown(() => admin.close());
  let run = 0;
  const seed = Number(process.env['SEED'] ?? Date.now() % 100_000);
  t.log(`seed ${seed} (SEED=${seed} runs the same cases)`);

  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
      const topic = `room-${run++}`;
      await admin.call('create-topic', { name: topic, history: 0, presence: true });
      const observers = await Promise.all(nodes.map(async (node) => {
        const observer = await waitFor(`an observer on ${node.liveUrl}`, () => LiveClient.connect(`${node.liveUrl}?token=${signToken({ sub: 'observer' })}`).then(async (c) => (await c.subscribe(topic), c)).catch(() => null));
        return observer;
      }));
      const slots: Array<{ client: LiveClient; user: string; ref: string | null; v: number } | null> = Array(8).fill(null);
      try {
        for (const s of steps) {
          const held = slots[s.slot];
          if (s.kind === 'join') {
            if (held) continue;
            const user = USERS[s.user]!;
            const client = await LiveClient.connect(`${nodes[s.node]!.liveUrl}?token=${signToken({ sub: user })}`);
            await client.subscribe(topic);
            const { ref } = await client.call('track', { topicName: topic, meta: { v: 0 } });
            slots[s.slot] = { client, user, ref, v: 0 };
          } else if (!held) {
            continue;
          } else if (s.kind === 'update') {
            held.v++;
            held.ref = (await held.client.call('track', { topicName: topic, meta: { v: held.v } })).ref;
          } else if (s.kind === 'untrack') {
            await held.client.call('untrack', { topicName: topic });
            held.ref = null;
          } else {
            held.client.close();
            slots[s.slot] = null;
          }
        }
        const live = slots.flatMap((slot) => (slot?.ref ? [`${slot.user}/${slot.ref}/${slot.v}`] : [])).sort().join(',');
        const viewers = [...observers, ...slots.flatMap((slot) => (slot ? [slot.client] : []))];
        await waitFor(`every view equals the live presences (${live})`, () => viewers.every((viewer) => seen(viewer, topic) === live), 15_000);
        return true;
      } finally {
        for (const client of [...observers, ...slots.flatMap((slot) => (slot ? [slot.client] : []))]) client.close();
      }
    }),
    { numRuns: 25, seed, verbose: true },
  );
  t.pass();
});
