import type { Lsn } from '../replication/lsn.js';

/**
 * The `seq` of change number `index` of the transaction committed at
 * `commitLsnHex` (DESIGN.md §1): fixed-width upper-case hex, so string order
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

/** Whether `text` is shaped like a `seq`. */
export const SEQ_PATTERN = /^[0-9A-F]{16}-[0-9A-F]{8}$/;
