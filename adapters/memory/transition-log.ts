import type { HealthTransitionRecord, TransitionQuery } from "healthstate";
import { hasSequence, insertSorted } from "./sorted";
import { copy, timeOf } from "./lifecycle";

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
   * `limit` highest sequences. An unknown entity gives an empty list.
   */
  list(query: TransitionQuery): HealthTransitionRecord[] {
    const from = query.from === undefined ? undefined : timeOf(query.from, "from");
    const to = query.to === undefined ? undefined : timeOf(query.to, "to");
    const entries = this.#byEntity.get(query.entityId) ?? [];
    const matching = entries.filter((entry) => (from === undefined || entry.at >= from) && (to === undefined || entry.at < to));
    const limit = query.limit === undefined ? matching.length : Math.max(0, Math.floor(query.limit));
    return matching.slice(matching.length - Math.min(limit, matching.length)).map((entry) => copy(entry.record));
  }
}

