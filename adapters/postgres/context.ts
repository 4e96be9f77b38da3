import { ClosedError, type AdapterCapabilities } from "healthstate";
import { barrierLockKey } from "./lock-keys";
import type { AvailabilityHub } from "./notifications";
import type { TransactionRetryOptions } from "./retry";
import type { SchemaNames } from "./schema-name";
import type { SqlClient, TransactionSettings } from "./sql-client";

/** What the store and the emitter of one adapter share. */
export interface AdapterContext {
  readonly sql: SqlClient;
  readonly names: SchemaNames;
  readonly capabilities: AdapterCapabilities;
  readonly clock: () => Date;
  readonly retry: TransactionRetryOptions;
  readonly settings: TransactionSettings;
  /** Above this many distinct lock keys a transaction takes the exclusive barrier instead. */
  readonly maxLockKeys: number;
  /** `barrierLockKey(schema)` as a decimal string. */
  readonly barrierKey: string;
  readonly hub: AvailabilityHub;
  readonly lifecycle: Lifecycle;
  /** When hourly bucket deltas are folded (`foldBucketDeltasAfter`), and what this adapter appended since. */
  readonly bucketDeltas: BucketDeltaCounter;
}

/** Systems whose pending bucket deltas one transaction folds at most (`BucketDeltaCounter.append`). */
export const MAX_FOLD_SYSTEMS = 32;

/**
 * Says when a writing transaction should look at a system's pending bucket deltas, and fold them
 * if at least `foldAfter` are pending (`foldBucketDeltasAfter`): a count per system of the rows
 * pending as far as this adapter knows. It learns a system's count from the database when an
 * engine reads the system's state version (`seed`, in the same statement), or else by looking on
 * its first append of the system, and adds what it appends; the fold statement counts again and
 * folds only if there are that many. A fold takes every pending row of the system, whoever
 * appended it (other processes, this one before a restart, short-lived jobs that each append a
 * few), so what is pending stays near `foldAfter` per system however the writers come and go.
 * The count is only when to look, never what is folded: a rolled-back append or fold, or rows
 * another process appended since, only move the next look.
 */
export class BucketDeltaCounter {
  readonly #pending = new Map<string, number>();

  constructor(readonly foldAfter: number) {}

  /** Whether this adapter has a count for the system. */
  knows(systemId: string): boolean {
    return this.#pending.has(systemId);
  }

  /** Takes the pending counts read from the database (`systemIds` without a row have none). */
  seed(systemIds: readonly string[], pending: ReadonlyMap<string, number>): void {
    for (const systemId of systemIds) this.#pending.set(systemId, pending.get(systemId) ?? 0);
  }

  /**
   * Records appended rows per system; returns the systems to look at now, at most
   * `MAX_FOLD_SYSTEMS`, unknown ones first, then those with the most pending (their counts
   * restart; the others stay due for their next append). Systems that started together come due
   * together (a fleet's first batch, then every `foldAfter` runs each): without the cap one
   * transaction in `foldAfter` would fold them all, tens of thousands of rows; with it the folds
   * spread over the next transactions and drift apart.
   */
  append(rowsPerSystem: ReadonlyMap<string, number>): string[] {
    const due: { readonly systemId: string; readonly priority: number }[] = [];
    for (const [systemId, rows] of rowsPerSystem) {
      const before = this.#pending.get(systemId);
      const count = (before ?? 0) + rows;
      this.#pending.set(systemId, count);
      if (before === undefined || count >= this.foldAfter) due.push({ systemId, priority: before === undefined ? Infinity : count });
    }
    due.sort((a, b) => b.priority - a.priority);
    const chosen = due.slice(0, MAX_FOLD_SYSTEMS).map((entry) => entry.systemId);
    for (const systemId of chosen) this.#pending.set(systemId, 0);
    return chosen;
  }

  /** Restarts the counts of systems whose deltas were all folded by other means (retention folds before it rolls). */
  folded(systemIds: readonly string[]): void {
    for (const systemId of systemIds) this.#pending.set(systemId, 0);
  }
}

/** Open/closed state of an adapter: after `close()` every port call rejects with a `ClosedError`. */
export class Lifecycle {
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
  }

  /** @throws ClosedError after `close()`. */
  assertOpen(operation: string): void {
    if (this.#closed) throw new ClosedError(`postgres adapter ${operation}`);
  }
}

export function barrierKeyOf(schema: string): string {
  return barrierLockKey(schema).toString();
}
