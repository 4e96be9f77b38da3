import type { HealthTransitionRecord } from "../kernel";
import type { TransitionQuery } from "../ports";

/** Reads transitions of one entity, as `StoreTransaction.listTransitions` does. */
export type ListTransitions = (query: TransitionQuery) => Promise<HealthTransitionRecord[]>;

/**
 * The part of an entity's transition log (in sequence order) from which `statusBefore(log, t)`
 * gives, for every `t ≥ since`, what it gives over the whole log; read in a few queries instead
 * of the whole log, so processing a maintenance boundary costs what happened since the window
 * started, not the entity's history.
 *
 * `statusBefore` walks the log in sequence order with the running maximum of `occurredAt` and
 * stops at the first transition whose running maximum reaches `t`: call it `first(t)`. Every
 * transition before `first(since)` is earlier than `since`, so for `t ≥ since` the walk never
 * stops before `first(since)` and reads nothing before the transition just ahead of it. The
 * suffix is therefore that predecessor (when there is one) and every transition after it:
 * - `first(since)` is the lowest sequence with `occurredAt ≥ since` (one read: `from: since`);
 * - the transitions after it that are earlier than `since` (out of timestamp order), and the
 *   predecessor, are the highest sequences with `occurredAt < since` down to the first one
 *   below `first(since)` (reads of `to: since` with a doubling `limit`: one read of one row
 *   unless runs arrived out of order);
 * - when no transition is at or after `since`, the suffix is the newest transition alone.
 */
export async function logSuffixSince(list: ListTransitions, entityId: string, since: Date): Promise<HealthTransitionRecord[]> {
  const after = await list({ entityId, from: since });
  const first = after[0];
  if (first === undefined) return list({ entityId, limit: 1 });
  for (let limit = 1; ; limit *= 2) {
    const earlier = await list({ entityId, to: since, limit });
    let predecessorAt = earlier.length - 1;
    while (predecessorAt >= 0 && (earlier[predecessorAt] as HealthTransitionRecord).sequence > first.sequence) predecessorAt -= 1;
    // Found the predecessor, or read every earlier transition (then `first` opens the log).
    if (predecessorAt !== -1 || earlier.length < limit) {
      return mergeBySequence(earlier.slice(Math.max(predecessorAt, 0)), after);
    }
  }
}

/** Two lists in sequence order with no sequence in common, merged in sequence order. */
function mergeBySequence(a: readonly HealthTransitionRecord[], b: readonly HealthTransitionRecord[]): HealthTransitionRecord[] {
  const merged: HealthTransitionRecord[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && (a[i] as HealthTransitionRecord).sequence < (b[j] as HealthTransitionRecord).sequence);
    merged.push((next ? a[i++] : b[j++]) as HealthTransitionRecord);
  }
  return merged;
}
