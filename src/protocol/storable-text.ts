/**
 * Whether Postgres can store `text` in a `text` column: no U+0000, and
 * well-formed UTF-16 (a lone surrogate has no UTF-8 form). Text that is not
 * makes the query fail; the protocol refuses it at the door instead, with
 * `INVALID_ATTRIBUTES`.
 *
 * @example
 * storableText('a\u0000b') // false
 */
export function storableText(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}

/**
 * Whether every string in `value` (keys included) is {@link storableText}:
 * what a `jsonb` column accepts (it refuses `\u0000` and lone surrogates).
 * Walks what `JSON.parse` or a hook made, so its depth is already bounded.
 */
export function storableJson(value: unknown): boolean {
  if (typeof value === 'string') return storableText(value);
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every(storableJson);
  return Object.entries(value).every(([key, item]) => storableText(key) && storableJson(item));
}
