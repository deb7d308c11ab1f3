import type { Change, Relation, Row, Transaction } from '../replication/transaction.js';

/**
 * What travels through the cluster's Redis stream (docs/cluster.md): the
 * decoded replication stream itself — changes and commits, in order — plus
 * ephemeral messages and the leader's position. Every node feeds these into
 * its own `EventBuilder`, so events, seqs, policy and topic changes come out
 * the same on every node, exactly as a single node makes them.
 */
export type StreamRecord =
  | { readonly t: 'change'; readonly tx: WireTransaction; readonly change: WireChange }
  /**
   * A change the leader could not serialize (a `jsonb` value nested too deep
   * for JSON): its rows cut down to their key columns, so every node tells
   * the topic's admins which row it was (`EVENT_DROPPED`) and keeps counting
   * the transaction's changes.
   */
  | { readonly t: 'dropped'; readonly tx: WireTransaction; readonly change: WireChange; readonly reason: string }
  | { readonly t: 'commit'; readonly tx: WireTransaction; readonly end: string }
  | { readonly t: 'ephemeral'; readonly topic: string; readonly sender: string | null; readonly message: unknown; readonly id: string; readonly at: string; readonly origin?: string | null }
  /** The leader has handed off everything before `lsn` (sent when idle, so followers know the stream moved on). */
  | { readonly t: 'position'; readonly lsn: string };

/** A transaction with its LSN as hex (JSON has no bigint). */
export interface WireTransaction {
  readonly xid: number;
  readonly commitLsnHex: string;
  readonly commitTime: string;
}

/** A relation without its per-column parser functions. */
export interface WireRelation {
  readonly relationOid: number;
  readonly schema: string;
  readonly name: string;
  readonly replicaIdentity: Relation['replicaIdentity'];
  readonly keyColumns: string[];
  readonly columns: Array<{ readonly name: string; readonly typeOid: number; readonly flags: number }>;
}

export type WireChange =
  | { readonly tag: 'insert'; readonly index: number; readonly relation: number; readonly new: Row }
  | { readonly tag: 'update'; readonly index: number; readonly relation: number; readonly old: Row | null; readonly new: Row; readonly unchanged: readonly string[] }
  | { readonly tag: 'delete'; readonly index: number; readonly relation: number; readonly old: Row }
  | { readonly tag: 'truncate'; readonly index: number; readonly relations: readonly number[] };

/** One entry of the Redis stream: records, and the relations their changes refer to (by OID). */
export interface StreamEntry {
  readonly relations: WireRelation[];
  readonly records: StreamRecord[];
}

export function wireTransaction(tx: Transaction): WireTransaction {
  return { xid: tx.xid, commitLsnHex: tx.commitLsnHex, commitTime: tx.commitTime };
}

export function fromWireTransaction(tx: WireTransaction): Transaction {
  return { xid: tx.xid, commitLsn: BigInt(`0x${tx.commitLsnHex}`), commitLsnHex: tx.commitLsnHex, commitTime: tx.commitTime };
}

export function wireRelation(relation: Relation): WireRelation {
  return {
    relationOid: relation.relationOid,
    schema: relation.schema,
    name: relation.name,
    replicaIdentity: relation.replicaIdentity,
    keyColumns: [...relation.keyColumns],
    columns: relation.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, flags: c.flags })),
  };
}

export function fromWireRelation(relation: WireRelation): Relation {
  return {
    tag: 'relation',
    relationOid: relation.relationOid,
    schema: relation.schema,
    name: relation.name,
    replicaIdentity: relation.replicaIdentity,
    keyColumns: relation.keyColumns,
    columns: relation.columns.map((c) => ({ ...c, typeSchema: null, typeName: null, typeMod: -1, parser: (text: string) => text })),
  } as unknown as Relation;
}

/** A change as it travels: its relation(s) by OID. `relations` collects the relations used. */
export function wireChange(change: Change, relations: Map<number, WireRelation>): WireChange {
  const use = (relation: Relation) => {
    if (!relations.has(relation.relationOid)) relations.set(relation.relationOid, wireRelation(relation));
    return relation.relationOid;
  };
  switch (change.tag) {
    case 'insert':
      return { tag: 'insert', index: change.index, relation: use(change.relation), new: change.new };
    case 'update':
      return { tag: 'update', index: change.index, relation: use(change.relation), old: change.old, new: change.new, unchanged: change.unchanged };
    case 'delete':
      return { tag: 'delete', index: change.index, relation: use(change.relation), old: change.old };
    case 'truncate':
      return { tag: 'truncate', index: change.index, relations: change.relations.map(use) };
  }
}

/** `change` with its rows cut down to the key columns of its relation (what a dropped change still carries). */
export function keyOnlyChange(change: Change): Change {
  if (change.tag === 'truncate') return change;
  const keys = change.relation.keyColumns;
  const cut = (row: Row | null): Row => {
    const kept: Row = {};
    for (const key of keys) if (row && typeof row[key] !== 'object') kept[key] = row[key];
    return kept;
  };
  switch (change.tag) {
    case 'insert':
      return { ...change, new: cut(change.new) };
    case 'update':
      return { ...change, old: null, new: cut(change.new), unchanged: [] };
    case 'delete':
      return { ...change, old: cut(change.old) };
  }
}

export function fromWireChange(change: WireChange, relations: ReadonlyMap<number, Relation>): Change {
  const relation = (oid: number) => {
    const found = relations.get(oid);
    if (!found) throw new Error(`stream entry refers to relation ${oid} without describing it`);
    return found;
  };
  switch (change.tag) {
    case 'insert':
      return { tag: 'insert', index: change.index, relation: relation(change.relation), new: change.new };
    case 'update':
      return { tag: 'update', index: change.index, relation: relation(change.relation), old: change.old, new: change.new, unchanged: change.unchanged };
    case 'delete':
      return { tag: 'delete', index: change.index, relation: relation(change.relation), old: change.old };
    case 'truncate':
      return { tag: 'truncate', index: change.index, relations: change.relations.map(relation) };
  }
}
