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
 * Systems whose counts a `BucketDeltaCounter` keeps at most; the least recently counted go first
 * (they are counted again from the database the next time their state version is read).
 */
export const MAX_COUNTED_SYSTEMS = 100_000;

/** Systems whose pending bucket deltas one fold statement folds at most, those with the most first. */
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
 *
 * A transaction's appends and looks are staged (`BucketDeltaStage`) and reach the counts only when
 * it commits: an attempt that rolls back (and is retried) leaves them as they were, so the retry
 * looks again. A commit adds what its transaction appended to the count as it then stands (or,
 * after a look, sets it to what was appended since), so transactions of one adapter that append
 * to one system at the same time (writers without the system's lock: the engine always holds it)
 * count, except what one of them commits between another's fold and that one's commit (the look
 * restarts the count; the next fold takes those rows all the same). The counts say only when to
 * look, never what is folded.
 */
export class BucketDeltaCounter {
  readonly #pending = new Map<string, number>();

  constructor(
    readonly foldAfter: number,
    private readonly capacity = MAX_COUNTED_SYSTEMS,
  ) {}

  /** Whether this adapter has a count for the system, committed or staged. */
  knows(systemId: string, stage: BucketDeltaStage): boolean {
    return stage.has(systemId) || this.#pending.has(systemId);
  }

  /** Takes the pending counts read from the database (`systemIds` without a row have none). */
  seed(systemIds: readonly string[], pending: ReadonlyMap<string, number>): void {
    for (const systemId of systemIds) this.#set(systemId, pending.get(systemId) ?? 0);
  }

  /** Stages appended rows per system; returns the systems to look at now: unknown ones, and those whose count reached `foldAfter` (their counts restart). */
  append(rowsPerSystem: ReadonlyMap<string, number>, stage: BucketDeltaStage): string[] {
    const due: string[] = [];
    for (const [systemId, rows] of rowsPerSystem) {
      const { looked, rows: staged } = stage.get(systemId) ?? { looked: false, rows: 0 };
      // After this transaction's own look, only what it appended since counts.
      const committed = looked ? 0 : this.#pending.get(systemId);
      if (committed === undefined || committed + staged + rows >= this.foldAfter) {
        stage.set(systemId, { looked: true, rows: 0 });
        due.push(systemId);
      } else stage.set(systemId, { looked, rows: staged + rows });
    }
    return due;
  }

  /** Stages the restart of the counts of systems whose deltas are all folded by other means (retention folds before it rolls). */
  folded(systemIds: readonly string[], stage: BucketDeltaStage): void {
    for (const systemId of systemIds) stage.set(systemId, { looked: true, rows: 0 });
  }

  /**
   * Applies a committed transaction's stage: after a look, the rows appended since; otherwise the
   * rows appended added to the count as it stands now (other commits may have changed it). A
   * system forgotten meanwhile (`capacity`) stays unknown, so its next append looks.
   */
  commit(stage: BucketDeltaStage): void {
    for (const [systemId, { looked, rows }] of stage) {
      if (looked) this.#set(systemId, rows);
      else {
        const count = this.#pending.get(systemId);
        if (count !== undefined) this.#set(systemId, count + rows);
      }
    }
  }

  /** Sets a count as the most recent; forgets the least recent beyond `capacity`. */
  #set(systemId: string, count: number): void {
    this.#pending.delete(systemId);
    this.#pending.set(systemId, count);
    for (const oldest of this.#pending.keys()) {
      if (this.#pending.size <= this.capacity) break;
      this.#pending.delete(oldest);
    }
  }
}

/**
 * One transaction attempt's staged counts (`BucketDeltaCounter`), by system: whether it looked at
 * (or folded) the system's deltas, and the rows it appended since then (or in all, if it did not).
 */
export type BucketDeltaStage = Map<string, { readonly looked: boolean; readonly rows: number }>;

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
