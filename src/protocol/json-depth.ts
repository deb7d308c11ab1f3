/**
 * Whether parsed JSON nests containers deeper than `maxDepth` (the value
 * itself is level 1 when it is an object or array). Iterative, so no input
 * can exhaust the stack here; it stops at the first container too deep.
 *
 * Frames are checked at the door (`MAX_FRAME_DEPTH`) because
 * `JSON.stringify` is recursive: a value nested a few thousand levels deep
 * parses fine but throws when it is serialized again, possibly far from the
 * request that brought it.
 *
 * @example
 * exceedsDepth(JSON.parse('[[[1]]]'), 2) // true
 */
export function exceedsDepth(value: unknown, maxDepth: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (depth > maxDepth) return true;
    const children = Array.isArray(item) ? item : Object.values(item);
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child as object, depth + 1]);
    }
  }
  return false;
}
