import type { Lsn } from '../replication/lsn.js';

/**
 * The `seq` of change number `index` of the transaction committed at
 * `commitLsnHex` (docs/architecture.md): fixed-width upper-case hex, so string order
 * is stream order and every node computes the same value.
 *
 * @example
 * formatSeq('00000000016B3A28', 0) // '00000000016B3A28-00000000'
 */
export function formatSeq(commitLsnHex: string, index: number): string {
  return `${commitLsnHex}-${index.toString(16).toUpperCase().padStart(8, '0')}`;
}

/** The commit LSN a `seq` carries (for an ephemeral message, the position just before the next commit). */
export function seqLsn(seq: string): Lsn {
  return BigInt(`0x${seq.slice(0, 16)}`);
}

/**
 * Where a client resumes: the `seq` of the last frame it saw and, when that
 * frame had one, its `part` (`"<seq>/1"`). A row moving between two
 * partitions one subscription reads arrives as `delete` (part 1) then
 * `create` (part 2) with one seq; the part says which of them the client got.
 */
export interface Since {
  readonly seq: string;
  /** 0: every frame of `seq` was seen. */
  readonly part: number;
}

/** Splits a `since` attribute (shaped as `SINCE_PATTERN` of protocol/parse-client-frame.ts says). */
export function parseSince(text: string): Since {
  const slash = text.indexOf('/');
  return slash === -1 ? { seq: text, part: 0 } : { seq: text.slice(0, slash), part: Number(text.slice(slash + 1)) };
}
