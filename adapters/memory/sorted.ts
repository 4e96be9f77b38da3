/**
 * Index of the first item of `items` (sorted ascending by `sequenceOf`) whose sequence is
 * greater than `sequence`, or `items.length` when none is.
 */
export function firstAfter<T>(items: readonly T[], sequence: number, sequenceOf: (item: T) => number): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sequenceOf(items[mid] as T) <= sequence) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Whether `items` (sorted ascending by `sequenceOf`) holds an item with this sequence. */
export function hasSequence<T>(items: readonly T[], sequence: number, sequenceOf: (item: T) => number): boolean {
  const index = firstAfter(items, sequence - 1, sequenceOf);
  const item = items[index];
  return item !== undefined && sequenceOf(item) === sequence;
}

/**
 * Inserts `item` into `items`, kept sorted ascending by `sequenceOf`. Appending in sequence
 * order, the usual case, costs O(1).
 */
export function insertSorted<T>(items: T[], item: T, sequenceOf: (item: T) => number): void {
  const last = items[items.length - 1];
  if (last === undefined || sequenceOf(last) < sequenceOf(item)) {
    items.push(item);
    return;
  }
  items.splice(firstAfter(items, sequenceOf(item), sequenceOf), 0, item);
}
