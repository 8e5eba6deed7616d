/**
 * Keyboard navigation of the workbench's lists (pure, unit-tested).
 */

/** The index a key moves to in a list of `length` items from `index` (-1: none focused), or
 * null when the key is not a navigation key: ArrowUp/ArrowDown step (and stop at the ends),
 * Home/End jump. */
export function listKeyTarget(key: string, index: number, length: number): number | null {
  if (length <= 0) {
    return null;
  }
  switch (key) {
    case 'ArrowDown':
      return Math.min(index + 1, length - 1);
    case 'ArrowUp':
      return Math.max(index - 1, 0);
    case 'Home':
      return 0;
    case 'End':
      return length - 1;
    default:
      return null;
  }
}
