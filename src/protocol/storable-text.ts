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
