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

/**
 * Counts the bucket delta rows this adapter appended per system since it last folded the system's
 * deltas, and says which systems are due: those at `foldAfter` or more. Counted when the rows are
 * sent, not when they commit: a rolled-back append counts anyway, and a fold that rolls back is
 * forgotten. Either way the count is only when to fold, never what: a fold takes every delta row
 * of the system, whoever appended it (other processes, this one before a restart), so none is
 * lost, and a system's pending rows stay near `foldAfter` per process that writes to it.
 */
export class BucketDeltaCounter {
  readonly #appended = new Map<string, number>();

  constructor(readonly foldAfter: number) {}

  /** Records appended rows per system; returns the systems now due for a fold (their counts restart). */
  append(rowsPerSystem: ReadonlyMap<string, number>): string[] {
    const due: string[] = [];
    for (const [systemId, rows] of rowsPerSystem) {
      const count = (this.#appended.get(systemId) ?? 0) + rows;
      if (count >= this.foldAfter) {
        this.#appended.delete(systemId);
        due.push(systemId);
      } else this.#appended.set(systemId, count);
    }
    return due;
  }

  /** Forgets the systems whose deltas were folded by other means (retention folds before it rolls). */
  folded(systemIds: readonly string[]): void {
    for (const systemId of systemIds) this.#appended.delete(systemId);
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
