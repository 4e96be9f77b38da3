/**
 * Mutual exclusion per key. `withLock` takes every key (in the canonical order given: the
 * engine sorts them), runs `fn`, and releases the keys when `fn` settles, whether it resolved or
 * rejected. Two calls with overlapping key sets never run `fn` at the same time; calls with
 * disjoint sets never wait for each other. Taking keys in one order makes deadlock impossible.
 *
 * The reference adapters serialize within the process with it; an adapter whose store is shared
 * across processes serializes across them inside `HealthStore.transaction` as well.
 */
export interface HealthLock {
  withLock<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>;
}
