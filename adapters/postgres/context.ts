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
