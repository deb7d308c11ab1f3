/**
 * Who is present on which topic, on this node and (in a cluster) on every
 * other: the presence model of docs/presence.md. A presence is one meta of
 * one key on one topic, with a unique `ref`; the store keeps them all and
 * tells subscribers what changed in batches.
 *
 * Two views of each topic are kept. `entries` is the truth now (limits are
 * checked against it). `visible` is what subscribers have been told: the
 * state a joiner gets, which the diffs after it continue. A change goes to
 * `entries` at once and into the topic's pending diff; every `batchMs` the
 * pending diffs are serialized once per topic, published, and applied to
 * `visible`. A meta that joins and leaves within one batch is never seen.
 */

import type { PresenceChanges, PresenceEntry, PresenceReplica } from '../../cluster/presence-sync.js';

export type { PresenceChanges, PresenceEntry } from '../../cluster/presence-sync.js';

/** What the store needs. */
export interface PresenceStoreOptions {
  /** This node's id: entries with it are the node's own. */
  readonly node: string;
  /** How long changes wait to be sent together (`PRESENCE_BATCH_MS`). */
  readonly batchMs: number;
  /** Sends a topic's diff (`{"joins":…,"leaves":…}` as JSON) to every subscriber of the topic on this node. */
  readonly publish: (topic: string, diff: string) => void;
}

/** A topic's presences. */
class TopicPresence {
  /** ref → entry: the truth now. */
  readonly entries = new Map<string, PresenceEntry>();
  /** key → its metas in `entries`. */
  readonly metasByKey = new Map<string, number>();
  /** About the bytes of `entries` as a state's JSON (see {@link stateWeight}). */
  bytes = 0;
  /** key → ref → entry: what subscribers have been told. */
  readonly visible = new Map<string, Map<string, PresenceEntry>>();
  /** Changes not yet sent. */
  readonly joins = new Map<string, PresenceEntry>();
  readonly leaves = new Map<string, PresenceEntry>();
  /** `visible` as JSON, made when first asked for after a change. */
  stateJson: string | null = '{}';

  constructor(readonly name: string) {}
}

/** See the file's comment. */
export class PresenceStore implements PresenceReplica {
  readonly node: string;
  readonly #options: PresenceStoreOptions;
  readonly #topics = new Map<string, TopicPresence>();
  /** node → its entries (every topic). */
  readonly #byNode = new Map<string, Set<PresenceEntry>>();
  readonly #dirty = new Set<TopicPresence>();
  #timer: NodeJS.Timeout | null = null;
  readonly #batchListeners: Array<(changes: PresenceChanges) => void> = [];

  constructor(options: PresenceStoreOptions) {
    this.node = options.node;
    this.#options = options;
  }

  /** Called after each batch with this node's own changes in it (the cluster shares them). */
  onLocalBatch(listener: (changes: PresenceChanges) => void): void {
    this.#batchListeners.push(listener);
  }

  /** Adds a presence; it is told with the next batch. */
  join(entry: PresenceEntry): void {
    let topic = this.#topics.get(entry.topic);
    if (!topic) this.#topics.set(entry.topic, (topic = new TopicPresence(entry.topic)));
    if (topic.entries.has(entry.ref)) return;
    topic.entries.set(entry.ref, entry);
    topic.metasByKey.set(entry.key, (topic.metasByKey.get(entry.key) ?? 0) + 1);
    topic.bytes += stateWeight(entry);
    let mine = this.#byNode.get(entry.node);
    if (!mine) this.#byNode.set(entry.node, (mine = new Set()));
    mine.add(entry);
    topic.joins.set(entry.ref, entry);
    this.#changed(topic);
  }

  /** Removes the presence `ref` of `topic`, if there is one; it is told with the next batch. */
  leave(topicName: string, ref: string): PresenceEntry | undefined {
    const topic = this.#topics.get(topicName);
    const entry = topic?.entries.get(ref);
    if (!topic || !entry) return undefined;
    topic.entries.delete(ref);
    topic.bytes -= stateWeight(entry);
    const metas = topic.metasByKey.get(entry.key)! - 1;
    if (metas === 0) topic.metasByKey.delete(entry.key);
    else topic.metasByKey.set(entry.key, metas);
    const mine = this.#byNode.get(entry.node)!;
    mine.delete(entry);
    if (mine.size === 0) this.#byNode.delete(entry.node);
    // Joined and left within one batch: nobody was told, nobody need be.
    if (!topic.joins.delete(ref)) topic.leaves.set(ref, entry);
    this.#changed(topic);
    return entry;
  }

  /** The entries `node` holds (every topic). */
  entriesOf(node: string): PresenceEntry[] {
    return [...(this.#byNode.get(node) ?? [])];
  }

  /** Nodes with entries here. */
  nodes(): string[] {
    return [...this.#byNode.keys()];
  }

  /** Makes `node`'s entries exactly `entries`: those gone leave, new ones join (a node's announcement, or its end with none). */
  replaceNode(node: string, entries: readonly PresenceEntry[]): void {
    const wanted = new Map(entries.map((entry) => [`${entry.topic}\u0000${entry.ref}`, entry]));
    for (const held of this.entriesOf(node)) {
      if (!wanted.delete(`${held.topic}\u0000${held.ref}`)) this.leave(held.topic, held.ref);
    }
    for (const entry of wanted.values()) this.join(entry);
  }

  /** Topics with someone present, presences (metas) over the cluster, this node's own, and the nodes holding any: for /status. */
  stats(): { topics: number; presences: number; own: number; nodes: number } {
    let presences = 0;
    for (const entries of this.#byNode.values()) presences += entries.size;
    return { topics: this.#topics.size, presences, own: this.#byNode.get(this.node)?.size ?? 0, nodes: this.#byNode.size };
  }

  /** Distinct keys present on `topic` now. */
  keyCount(topic: string): number {
    return this.#topics.get(topic)?.metasByKey.size ?? 0;
  }

  /** About the bytes of `topic`'s state as JSON now (every meta and its key counted once each: an upper bound). */
  stateBytes(topic: string): number {
    return this.#topics.get(topic)?.bytes ?? 0;
  }

  /** Metas of `key` on `topic` now. */
  metaCount(topic: string, key: string): number {
    return this.#topics.get(topic)?.metasByKey.get(key) ?? 0;
  }

  /** What subscribers of `topic` have been told, as JSON (`{}` when nobody is there): the state a joiner gets, made once per batch. */
  stateJson(topicName: string): string {
    const topic = this.#topics.get(topicName);
    if (!topic) return '{}';
    return (topic.stateJson ??= stateJsonOf([...topic.visible].map(([key, metas]) => [key, metas.values()])));
  }

  /** Sends every pending diff now (the batch timer calls this). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    const ownJoins: PresenceEntry[] = [];
    const ownLeaves: PresenceEntry[] = [];
    for (const topic of dirty) {
      if (topic.joins.size === 0 && topic.leaves.size === 0) continue;
      const diff = `{"joins":${stateJsonOf(byKey(topic.joins.values()))},"leaves":${stateJsonOf(byKey(topic.leaves.values()))}}`;
      for (const entry of topic.leaves.values()) {
        const metas = topic.visible.get(entry.key);
        metas?.delete(entry.ref);
        if (metas?.size === 0) topic.visible.delete(entry.key);
        if (entry.node === this.node) ownLeaves.push(entry);
      }
      for (const entry of topic.joins.values()) {
        let metas = topic.visible.get(entry.key);
        if (!metas) topic.visible.set(entry.key, (metas = new Map()));
        metas.set(entry.ref, entry);
        if (entry.node === this.node) ownJoins.push(entry);
      }
      topic.joins.clear();
      topic.leaves.clear();
      topic.stateJson = null;
      if (topic.entries.size === 0 && topic.visible.size === 0) this.#topics.delete(topic.name);
      this.#options.publish(topic.name, diff);
    }
    if (ownJoins.length + ownLeaves.length > 0) for (const listener of this.#batchListeners) listener({ joins: ownJoins, leaves: ownLeaves });
  }

  /** Stops the batch timer (pending diffs are dropped: the node is going away). */
  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #changed(topic: TopicPresence): void {
    this.#dirty.add(topic);
    this.#timer ??= setTimeout(() => this.flush(), this.#options.batchMs);
  }
}

/** What `entry` adds to its topic's state as JSON, at most: its meta, its key with the `{"metas":[…]}` around it, and commas. */
export function stateWeight(entry: Pick<PresenceEntry, 'key' | 'json'>): number {
  return Buffer.byteLength(entry.json) + Buffer.byteLength(entry.key) + 16;
}

/** Entries grouped by key, in order. */
function byKey(entries: Iterable<PresenceEntry>): Map<string, PresenceEntry[]> {
  const keys = new Map<string, PresenceEntry[]>();
  for (const entry of entries) {
    const metas = keys.get(entry.key);
    if (metas) metas.push(entry);
    else keys.set(entry.key, [entry]);
  }
  return keys;
}

/** `{"<key>":{"metas":[…]},…}` from metas already serialized: the state or one half of a diff. */
function stateJsonOf(keys: Iterable<readonly [string, Iterable<PresenceEntry>]>): string {
  let json = '{';
  for (const [key, metas] of keys) {
    if (json.length > 1) json += ',';
    json += `${JSON.stringify(key)}:{"metas":[`;
    let first = true;
    for (const meta of metas) {
      json += first ? meta.json : `,${meta.json}`;
      first = false;
    }
    json += ']}';
  }
  return `${json}}`;
}
