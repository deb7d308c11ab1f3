/**
 * A WAL position (log sequence number) as a 64-bit unsigned integer. Postgres
 * writes it as two hex halves, `16/B374D848`.
 */
export type Lsn = bigint;

/** Parses `16/B374D848` into an {@link Lsn}. */
export function parseLsn(text: string): Lsn {
  const slash = text.indexOf('/');
  if (slash < 0) throw new TypeError(`not an LSN: ${text}`);
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) | BigInt(`0x${text.slice(slash + 1)}`);
}

/** Formats an {@link Lsn} the way Postgres does: `16/B374D848`. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The 16 upper-case hex digits of an LSN, the first half of a `seq`. */
export function lsnHex(lsn: Lsn): string {
  return lsn.toString(16).toUpperCase().padStart(16, '0');
}

/** The earlier of two positions, where `null` means "no limit". */
export function minLsn(a: Lsn | null, b: Lsn | null): Lsn | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}
