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
 * The path (from `root`) of the first string or key in `value` that is not
 * {@link storableText}, or `null`: what a `jsonb` column would refuse.
 * Iterative, so deep nesting cannot exhaust the stack.
 */
export function unstorableText(value: unknown, root: string): string | null {
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === 'string') {
      if (!storableText(item)) return path;
    } else if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) stack.push([item[i], `${path}[${i}]`]);
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        if (!storableText(key)) return `${path} (a key)`;
        stack.push([child, `${path}.${key}`]);
      }
    }
  }
  return null;
}
