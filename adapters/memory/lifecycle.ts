import { ClosedError, type AdapterCapabilities } from "healthstate";

/** What the memory adapter can guarantee: nothing survives the process, nothing is shared. */
export const MEMORY_CAPABILITIES: AdapterCapabilities = Object.freeze({ durable: false, crossProcess: false });

/**
 * The open/closed state one memory adapter's store and emitter share. `close()` flips it once;
 * every store and emitter operation checks it first, so nothing reads or writes a closed adapter.
 */
export class AdapterLifecycle {
  #closed = false;

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Marks the adapter closed. Idempotent. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Throws a `ClosedError` naming `operation` when the adapter is closed. Called inside a Promise
   * executor, so the caller sees a rejection, never a synchronous throw.
   */
  assertOpen(operation: string): void {
    if (this.#closed) throw new ClosedError(`memory adapter: ${operation}`);
  }
}

/**
 * Runs synchronous adapter work as a Promise: its result resolves it, a throw rejects it. The
 * work runs at call time, so a read sees the state of the moment it was called.
 */
export function promised<T>(work: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(work());
  });
}

/**
 * Milliseconds since the epoch of a `Date` argument. Throws a `TypeError` naming `name` for
 * anything that is not a valid `Date`, so a bad time never silently compares as `NaN`.
 */
export function timeOf(value: Date, name: string): number {
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (Number.isNaN(ms)) throw new TypeError(`memory adapter: ${name} must be a valid Date`);
  return ms;
}

/** A deep copy of plain data, so neither side of the adapter boundary can change the other's. */
export function copy<T>(value: T): T {
  return structuredClone(value);
}
