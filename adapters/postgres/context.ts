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
 * Says when to look for a system's pending bucket deltas (`foldBucketDeltasAfter`): the first
 * time this adapter appends rows of the system, and then each time it has appended that many more.
 * A look is the fold statement's own test: it folds the systems that have at least that many rows
 * pending, whoever appended them (other processes, this one before a restart, short-lived jobs
 * that each append a few), so what is pending stays near `foldBucketDeltasAfter` per system
 * however the writers come and go. The count is only when to look, never what is folded: a
 * rolled-back append or fold only moves the next look.
 */
export class BucketDeltaCounter {
  readonly #appended = new Map<string, number>();

  constructor(readonly foldAfter: number) {}

  /** Records appended rows per system; returns the systems to look at now (their counts restart). */
  append(rowsPerSystem: ReadonlyMap<string, number>): string[] {
    const due: string[] = [];
    for (const [systemId, rows] of rowsPerSystem) {
      const before = this.#appended.get(systemId);
      const count = (before ?? 0) + rows;
      if (before === undefined || count >= this.foldAfter) {
        this.#appended.set(systemId, 0);
        due.push(systemId);
      } else this.#appended.set(systemId, count);
    }
    return due;
  }

  /** Restarts the counts of systems whose deltas were all folded by other means (retention folds before it rolls). */
  folded(systemIds: readonly string[]): void {
    for (const systemId of systemIds) this.#appended.set(systemId, 0);
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
