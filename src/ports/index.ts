export type { ClaimedEvent, DeadLetter, HealthEmitter } from "./emitter";
export type { HealthLock } from "./lock";
export type { AdapterCapabilities, BucketQuery, HealthStore, StoreTransaction, TransitionQuery } from "./store";

import type { HealthEmitter } from "./emitter";
import type { HealthLock } from "./lock";
import type { HealthStore } from "./store";

/** What an adapter factory returns: the three ports plus `close()`, which releases its resources. */
export interface HealthAdapter {
  readonly store: HealthStore;
  readonly lock: HealthLock;
  readonly emitter: HealthEmitter;
  /** Releases timers and connections the adapter itself opened (never a client the caller passed in). */
  close(): Promise<void>;
}
