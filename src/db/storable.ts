/**
 * Whether Postgres can store `text` in a `text` column: no U+0000, and
 * well-formed UTF-16 (a lone surrogate has no UTF-8 form). Text that is not
 * makes the query fail; checked at the door instead, as a coded refusal.
 *
 * @example
 * storable('a\u0000b') // false
 */
export function storable(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}
