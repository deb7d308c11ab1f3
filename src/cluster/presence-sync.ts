import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { signEntry, verifyEntry } from './entry-signature.js';

/** One presence as the cluster shares it (the core's PresenceEntry). */
export interface PresenceEntry {
  readonly topic: string;
  readonly key: string;
  readonly ref: string;
  /** The meta as clients see it, as JSON. */
  readonly json: string;
  readonly node: string;
}

/** One batch of a node's own changes. */
export interface PresenceChanges {
  readonly joins: readonly PresenceEntry[];
  readonly leaves: readonly PresenceEntry[];
}

/** What the sync needs of the node's presence store (the core's PresenceStore): its own entries, and a place for the others'. */
export interface PresenceReplica {
  readonly node: string;
  onLocalBatch(listener: (changes: PresenceChanges) => void): void;
  entriesOf(node: string): PresenceEntry[];
  nodes(): string[];
  join(entry: PresenceEntry): void;
  leave(topic: string, ref: string): unknown;
  replaceNode(node: string, entries: readonly PresenceEntry[]): void;
}

/** What the presence sync needs. */
export interface PresenceSyncOptions {
  readonly redisUrl: string;
  /** Key prefix: `rowcast:<slot>:presence`. */
  readonly prefix: string;
  /** The node's presence store: its own entries are shared, the others' are kept in it. */
  readonly store: PresenceReplica;
  /** A node whose heartbeat is this old is gone (`PRESENCE_NODE_TTL_MS`); heartbeats and checks run three times as often. */
  readonly ttlMs: number;
  /** `CLUSTER_SECRET`: messages and stored entries are signed, and unsigned ones ignored. */
  readonly secret?: string;
  readonly logger: Logger;
}

/** An entry as Redis holds it and messages carry it. */
interface WireEntry {
  readonly t: string;
  readonly k: string;
  readonly r: string;
  readonly m: string;
}

/** A message on the presence channel. */
type SyncMessage =
  | { readonly node: string; readonly seq: number; readonly joins: readonly WireEntry[]; readonly leaves: ReadonlyArray<{ readonly t: string; readonly r: string }> }
  | { readonly node: string; readonly seq: number; readonly announce: true }
  | { readonly node: string; readonly gone: true };

/** What this node knows of a peer: the last change it applied, and the messages held while it reads the peer's hash. */
interface Peer {
  seq: number;
  held: SyncMessage[] | null;
}

const SEQ_FIELD = '~seq';

/**
 * A batch, written only while the node's heartbeat (KEYS[1]) exists: its
 * joins (ARGV[5] field/value pairs from ARGV[6]) and leaves (the fields
 * after) into its hash (KEYS[2]) with `~seq` (ARGV[1]), the heartbeat
 * renewed (ARGV[2] ms), the message (ARGV[4]) published on ARGV[3].
 */
const SHARE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local joins = tonumber(ARGV[5])
local i = 6
for _ = 1, joins do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
  i = i + 1
end
redis.call('HSET', KEYS[2], '${'~seq'}', ARGV[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`;

/**
 * Presence over a cluster (docs/presence.md, "Cluster"), on the Redis the
 * cluster already runs on. Each node owns the presences of its own
 * connections and keeps, per node, in Redis:
 * - `<prefix>:members:<node>`: a hash of its entries and the `~seq` of its last change;
 * - `<prefix>:node:<node>`: its heartbeat, that `~seq`, expiring after `ttlMs`;
 * - its id in the set `<prefix>:nodes`.
 * Each batch of its own changes is written to its hash and published on
 * `<prefix>` in one MULTI, numbered. Peers apply the changes in order; a
 * gap in the numbers, an announcement, or a heartbeat ahead of what they
 * applied makes them read the node's hash again (and replace what they held
 * of it). A heartbeat gone means the node is gone: its members leave on
 * every other node (within `ttlMs` and one check). If this node finds its
 * own heartbeat gone (Redis restarted empty, or this node stalled past the
 * TTL), it writes everything it holds again and announces it; for one TTL
 * after, it does not judge others' missing heartbeats, so that they can do
 * the same and no live member is dropped.
 */
export class PresenceSync {
  readonly #options: PresenceSyncOptions;
  readonly #node: string;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #peers = new Map<string, Peer>();
  #seq = 0;
  /** Set when a write failed: the next heartbeat writes everything again. */
  #stale = true;
  #graceUntil = 0;
  #timer: NodeJS.Timeout | null = null;
  #beating = false;
  #stopped = false;
  #forgeries = 0;
  #forgeryLoggedAt = 0;

  constructor(options: PresenceSyncOptions) {
    this.#options = options;
    this.#node = options.store.node;
    this.#redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 2 });
    this.#subscriber = new Redis(options.redisUrl);
    this.#redis.on('error', () => {});
    this.#subscriber.on('error', () => {});
  }

  /** Starts sharing: subscribes, announces this node, reads the others, then heartbeats. Redis being down does not stop it. */
  start(): void {
    this.#options.store.onLocalBatch((changes) => void this.#share(changes));
    this.#subscriber.on('message', (_channel, text: string) => this.#receive(text));
    this.#subscriber.subscribe(this.#options.prefix).catch(() => {});
    const beat = () => {
      if (this.#stopped) return;
      void this.#heartbeat().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(beat, Math.max(100, Math.floor(this.#options.ttlMs / 3)));
      });
    };
    beat();
  }

  /** Leaves the cluster: this node's members leave every other node at once, and its keys go. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    try {
      await this.#redis
        .multi()
        .del(this.#heartbeatKey(this.#node), this.#membersKey(this.#node))
        .srem(this.#nodesKey(), this.#node)
        .publish(this.#options.prefix, this.#sign(JSON.stringify({ node: this.#node, gone: true })))
        .exec();
    } catch {
      // Redis is gone: the heartbeat expires instead.
    }
    this.#subscriber.disconnect();
    this.#redis.disconnect();
  }

  /**
   * One batch of this node's own changes: into its hash and out to its
   * peers, numbered, in one script that runs only while the node's
   * heartbeat exists. A hash is so either whole or absent: a batch never
   * writes into one that Redis lost (or that peers removed, judging the node
   * gone), where a peer reading it would find members missing. Then the
   * node announces everything instead.
   */
  async #share({ joins, leaves }: PresenceChanges): Promise<void> {
    const seq = ++this.#seq;
    const message: SyncMessage = { node: this.#node, seq, joins: joins.map(wire), leaves: leaves.map((entry) => ({ t: entry.topic, r: entry.ref })) };
    const members = this.#membersKey(this.#node);
    const args = [String(seq), String(this.#options.ttlMs), this.#options.prefix, this.#sign(JSON.stringify(message)), String(joins.length)];
    for (const entry of joins) args.push(field(entry.topic, entry.ref), this.#signed(members, JSON.stringify(wire(entry))));
    for (const entry of leaves) args.push(field(entry.topic, entry.ref));
    try {
      const written = await this.#redis.eval(SHARE_SCRIPT, 2, this.#heartbeatKey(this.#node), members, ...args);
      if (written !== 1) this.#lost();
    } catch {
      this.#lost();
    }
  }

  /** A write failed or found the heartbeat gone: everything is written again and announced, at once if Redis answers. */
  #lost(): void {
    this.#stale = true;
    void this.#heartbeat();
  }

  /** Renews this node's heartbeat (writing everything again if it was lost), then checks every peer's. */
  async #heartbeat(): Promise<void> {
    if (this.#beating) return;
    this.#beating = true;
    try {
      const stale = this.#stale;
      const renewed = await this.#redis.set(this.#heartbeatKey(this.#node), String(this.#seq), 'PX', this.#options.ttlMs, 'XX');
      if (renewed === null || stale) {
        if (renewed === null && !stale) {
          this.#options.logger.warn({ node: this.#node }, 'presence: this node\'s heartbeat was gone from Redis (Redis lost its data, or this node stalled): announcing its members again');
        }
        await this.#announce();
        this.#graceUntil = Date.now() + this.#options.ttlMs;
      }
      await this.#checkPeers();
    } catch {
      // Redis is unreachable: nothing is judged until it answers again.
    } finally {
      this.#beating = false;
    }
  }

  /** Writes everything this node holds to its hash and heartbeat and announces it (peers read it again). */
  async #announce(): Promise<void> {
    const seq = ++this.#seq;
    const members = this.#membersKey(this.#node);
    const entries = this.#options.store.entriesOf(this.#node);
    const multi = this.#redis.multi().del(members);
    const fields = Object.fromEntries(entries.map((entry) => [field(entry.topic, entry.ref), this.#signed(members, JSON.stringify(wire(entry)))]));
    multi.hset(members, { ...fields, [SEQ_FIELD]: String(seq) });
    multi.set(this.#heartbeatKey(this.#node), String(seq), 'PX', this.#options.ttlMs);
    multi.sadd(this.#nodesKey(), this.#node);
    multi.publish(this.#options.prefix, this.#sign(JSON.stringify({ node: this.#node, seq, announce: true })));
    const results = await multi.exec();
    if (results === null || results.some(([error]) => error)) throw new Error('presence: announcing failed');
    this.#stale = false;
  }

  /** Peers: gone ones (no heartbeat, past the grace) leave; those ahead of what was applied, or not known yet, are read again. */
  async #checkPeers(): Promise<void> {
    const listed = await this.#redis.smembers(this.#nodesKey());
    const nodes = [...new Set([...listed, ...this.#peers.keys(), ...this.#options.store.nodes()])].filter((node) => node !== this.#node);
    if (nodes.length === 0) return;
    const beats = await this.#redis.mget(nodes.map((node) => this.#heartbeatKey(node)));
    for (const [i, node] of nodes.entries()) {
      const beat = beats[i];
      if (beat === null || beat === undefined) {
        if (Date.now() >= this.#graceUntil) await this.#drop(node);
        continue;
      }
      const peer = this.#peers.get(node);
      if (!peer || (peer.held === null && Number(beat) > peer.seq)) void this.#resync(node);
    }
  }

  /** A node is gone: its members leave here; its keys are removed (it rewrites them if it was only slow). */
  async #drop(node: string): Promise<void> {
    const held = this.#options.store.entriesOf(node).length;
    this.#peers.delete(node);
    this.#options.store.replaceNode(node, []);
    if (held > 0) this.#options.logger.warn({ node, members: held }, 'presence: a node\'s heartbeat stopped: its members left');
    await this.#redis.multi().srem(this.#nodesKey(), node).del(this.#membersKey(node)).exec();
  }

  /** Reads `node`'s hash and makes what this node holds of it exactly that; messages that came meanwhile are applied after. */
  async #resync(node: string): Promise<void> {
    let peer = this.#peers.get(node);
    if (peer?.held) return;
    if (!peer) this.#peers.set(node, (peer = { seq: 0, held: null }));
    peer.held = [];
    try {
      const hash = await this.#redis.hgetall(this.#membersKey(node));
      const entries: PresenceEntry[] = [];
      for (const [name, value] of Object.entries(hash)) {
        if (name === SEQ_FIELD) continue;
        const entry = this.#verified(this.#membersKey(node), value, node);
        if (entry) entries.push(entry);
      }
      if (this.#peers.get(node) !== peer) return;
      this.#options.store.replaceNode(node, entries);
      peer.seq = Number(hash[SEQ_FIELD] ?? 0);
    } catch {
      // Redis is unreachable: the next heartbeat tries again.
    } finally {
      const held = peer.held ?? [];
      peer.held = null;
      for (const message of held) this.#apply(message);
    }
  }

  #receive(text: string): void {
    let message: SyncMessage;
    try {
      const data = this.#unsign(text);
      if (data === null) return;
      message = JSON.parse(data) as SyncMessage;
    } catch {
      return;
    }
    if (typeof message?.node !== 'string' || message.node === this.#node || this.#stopped) return;
    this.#apply(message);
  }

  #apply(message: SyncMessage): void {
    const { node } = message;
    if ('gone' in message) {
      this.#peers.delete(node);
      this.#options.store.replaceNode(node, []);
      return;
    }
    const peer = this.#peers.get(node);
    if (peer?.held) {
      peer.held.push(message);
      return;
    }
    if ('announce' in message || !peer || message.seq !== peer.seq + 1) {
      if (peer && message.seq <= peer.seq) return;
      void this.#resync(node);
      return;
    }
    peer.seq = message.seq;
    const { store } = this.#options;
    for (const leave of message.leaves) store.leave(leave.t, leave.r);
    for (const join of message.joins) {
      if (isWire(join)) store.join({ topic: join.t, key: join.k, ref: join.r, json: join.m, node });
    }
  }

  #verified(key: string, value: string, node: string): PresenceEntry | null {
    const text = this.#options.secret === undefined ? value : unsignedOf(this.#options.secret, key, value);
    if (text === null) return this.#forged(`an entry of ${node}'s hash`);
    try {
      const entry = JSON.parse(text) as WireEntry;
      return isWire(entry) ? { topic: entry.t, key: entry.k, ref: entry.r, json: entry.m, node } : null;
    } catch {
      return null;
    }
  }

  /** A stored value: with CLUSTER_SECRET, `<signature> <json>`. */
  #signed(key: string, json: string): string {
    return this.#options.secret === undefined ? json : `${signEntry(this.#options.secret, key, json)} ${json}`;
  }

  #sign(data: string): string {
    return this.#signed(this.#options.prefix, data);
  }

  #unsign(text: string): string | null {
    if (this.#options.secret === undefined) return text;
    return unsignedOf(this.#options.secret, this.#options.prefix, text) ?? this.#forged('a message');
  }

  /** Something in Redis without CLUSTER_SECRET's signature was ignored: said at most every 10 s (whoever writes it could flood the log). */
  #forged(what: string): null {
    this.#forgeries++;
    if (Date.now() - this.#forgeryLoggedAt >= 10_000) {
      this.#forgeryLoggedAt = Date.now();
      this.#options.logger.warn({ ignored: this.#forgeries }, `presence: ${what} without a valid CLUSTER_SECRET signature was ignored (whoever can write to this Redis is trying to add or remove members)`);
    }
    return null;
  }

  #nodesKey(): string {
    return `${this.#options.prefix}:nodes`;
  }

  #heartbeatKey(node: string): string {
    return `${this.#options.prefix}:node:${node}`;
  }

  #membersKey(node: string): string {
    return `${this.#options.prefix}:members:${node}`;
  }
}

/** The JSON of a signed value, or `null` when its signature is not the secret's. */
function unsignedOf(secret: string, key: string, value: string): string | null {
  const space = value.indexOf(' ');
  if (space < 0) return null;
  const json = value.slice(space + 1);
  return verifyEntry(secret, key, json, value.slice(0, space)) ? json : null;
}

function wire(entry: PresenceEntry): WireEntry {
  return { t: entry.topic, k: entry.key, r: entry.ref, m: entry.json };
}

function isWire(value: unknown): value is WireEntry {
  const entry = value as WireEntry;
  return typeof entry?.t === 'string' && typeof entry.k === 'string' && typeof entry.r === 'string' && typeof entry.m === 'string';
}

/** A hash field: topic and ref (a topic name cannot hold U+0000). */
function field(topic: string, ref: string): string {
  return `${topic}\u0000${ref}`;
}
