import type { HealthTransitionRecord, TransitionQuery } from "healthstate";
import { hasSequence, insertSorted } from "./sorted";
import { shared, timeOf } from "./lifecycle";

interface LoggedTransition {
  readonly record: HealthTransitionRecord;
  /** `record.occurredAt` in epoch milliseconds, parsed once. */
  readonly at: number;
}

const sequenceOf = (entry: LoggedTransition): number => entry.record.sequence;

/**
 * The committed transition log: per entity, its entries sorted by sequence. (entityId,
 * sequence) is unique, as a primary key would make it.
 */
export class TransitionLog {
  readonly #byEntity = new Map<string, LoggedTransition[]>();

  /** Whether an entry with this (entityId, sequence) is committed. */
  has(entityId: string, sequence: number): boolean {
    const entries = this.#byEntity.get(entityId);
    return entries !== undefined && hasSequence(entries, sequence, sequenceOf);
  }

  /**
   * Adds entries (already copied and checked for uniqueness by the store). Synchronous; part of
   * a commit.
   */
  insert(records: readonly HealthTransitionRecord[]): void {
    for (const record of records) {
      let entries = this.#byEntity.get(record.entityId);
      if (entries === undefined) {
        entries = [];
        this.#byEntity.set(record.entityId, entries);
      }
      insertSorted(entries, { record, at: Date.parse(record.occurredAt) }, sequenceOf);
    }
  }

  /**
   * Copies of an entity's entries in sequence order with `from ≤ occurredAt < to`, reduced to the
   * `limit` highest sequences. An unknown entity gives an empty list. `staged` are entries a
   * transaction appended but has not committed yet (unique against the committed ones, any
   * order): they are listed as if committed, so a transaction reads its own appends.
   */
  list(query: TransitionQuery, staged: readonly HealthTransitionRecord[] = []): HealthTransitionRecord[] {
    const from = query.from === undefined ? undefined : timeOf(query.from, "from");
    const to = query.to === undefined ? undefined : timeOf(query.to, "to");
    const limit = query.limit === undefined ? undefined : limitOf(query.limit);
    let entries: readonly LoggedTransition[] = this.#byEntity.get(query.entityId) ?? [];
    if (staged.length > 0) {
      const merged = [...entries];
      for (const record of staged) insertSorted(merged, { record, at: Date.parse(record.occurredAt) }, sequenceOf);
      entries = merged;
    }
    const matching = entries.filter((entry) => (from === undefined || entry.at >= from) && (to === undefined || entry.at < to));
    const kept = limit === undefined ? matching : matching.slice(matching.length - Math.min(limit, matching.length));
    return kept.map((entry) => shared(entry.record));
  }

  /**
   * Deletes, per entity, what the log no longer needs from `before` (epoch ms) on (see
   * `HealthStore.prune`): walking in sequence order, an entry takes effect at the latest
   * `occurredAt` so far; the kept part starts at the latest (by time, then sequence) of the
   * entries before the first one at or after `before`. The log thus still gives the status at
   * `before` and everything after it, kept entries keep their effective times, a late entry is
   * never cut out of the middle, and the newest entry always stays. Returns how many were
   * deleted. Synchronous, so atomic; deleting again deletes nothing.
   */
  prune(before: number): number {
    let deleted = 0;
    for (const [entityId, entries] of this.#byEntity) {
      if (entries.length === 0) {
        this.#byEntity.delete(entityId);
        continue;
      }
      // The entries before the first one at or after `before` all took effect before it; the kept
      // part starts at the one of them with the latest time (the last one, on a tie), so every
      // kept entry keeps its effective time (a late entry after it took effect at its time).
      let keepFrom = -1;
      let latest = Number.NEGATIVE_INFINITY;
      for (const [index, entry] of entries.entries()) {
        if (entry.at >= before) break;
        if (entry.at >= latest) {
          latest = entry.at;
          keepFrom = index;
        }
      }
      if (keepFrom <= 0) continue;
      deleted += keepFrom;
      this.#byEntity.set(entityId, entries.slice(keepFrom));
    }
    return deleted;
  }
}

/** A `limit` argument as a count: at least 0, fractions rounded down; `NaN` is a `TypeError`. */
export function limitOf(limit: number): number {
  if (typeof limit !== "number" || Number.isNaN(limit)) throw new TypeError("memory adapter: limit must be a number");
  return Math.max(0, Math.floor(limit));
}
