/** The longest `sub` or group value, in characters. */
export const MAX_CLAIM_VALUE_LENGTH = 256;

/** The most values one group claim may list. */
export const MAX_CLAIM_GROUPS = 1000;

/**
 * A `sub` or group value as rowcast uses it, or `null` when it cannot be
 * one: a non-empty string of at most {@link MAX_CLAIM_VALUE_LENGTH}
 * characters, well-formed Unicode without U+0000, or a finite number
 * (stringified). Such values become parts of partition names, so nothing
 * downstream has to cope with anything else.
 *
 * @example
 * claimValue(42) // '42'
 * claimValue({ toString: 1 }) // null
 */
export function claimValue(value: unknown): string | null {
  const text = typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : null;
  if (text === null || text.length === 0 || text.length > MAX_CLAIM_VALUE_LENGTH) return null;
  if (!text.isWellFormed() || text.includes('\u0000')) return null;
  return text;
}
