import type { HealthLock } from "healthstate";

/** The waiters of a key held with none waiting (shared, never changed). */
const NO_WAITERS: (() => void)[] = [];

/**
 * An in-process keyed async mutex: the memory adapter's `HealthLock`.
 *
 * `withLock(keys, fn)` takes the keys one after another in the order given (duplicates once),
 * runs `fn`, and releases every key it took when `fn` settles, whether it resolved, rejected or
 * threw synchronously. Each key is handed over in FIFO order of the requests for it. Calls with
 * disjoint key sets never wait for each other; calls that all take their keys in one canonical
 * order (the engine sorts them) cannot deadlock. A key is forgotten as soon as nobody holds or
 * awaits it, so the mutex holds no memory for idle keys.
 *
 * Not reentrant: a `fn` that asks again for a key its own call holds waits forever.
 */
export class KeyedMutex implements HealthLock {
  // Present iff the key is held; the array holds the waiters for it, in arrival order.
  readonly #waiters = new Map<string, (() => void)[]>();

  /** Number of keys currently held (and perhaps awaited); 0 when the mutex is idle. */
  get size(): number {
    return this.#waiters.size;
  }

  /** Runs `fn` holding every key of `keys`; resolves or rejects as `fn` does. */
  async withLock<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const held: string[] = [];
    try {
      for (const key of new Set(keys)) {
        const turn = this.#acquire(key);
        if (turn !== undefined) await turn;
        held.push(key);
      }
      return await fn();
    } finally {
      for (let i = held.length - 1; i >= 0; i -= 1) this.#release(held[i] as string);
    }
  }

  /** Takes `key` now (`undefined`) or returns the promise of the caller's turn. */
  #acquire(key: string): Promise<void> | undefined {
    const waiters = this.#waiters.get(key);
    if (waiters === undefined) {
      // Most keys are never waited for: the list is made by the first waiter.
      this.#waiters.set(key, NO_WAITERS);
      return undefined;
    }
    return new Promise<void>((resolve) => {
      if (waiters === NO_WAITERS) this.#waiters.set(key, [resolve]);
      else waiters.push(resolve);
    });
  }

  /** Hands `key` to its oldest waiter, or frees it. */
  #release(key: string): void {
    const waiters = this.#waiters.get(key);
    if (waiters === undefined) return;
    const next = waiters.shift();
    if (next === undefined) this.#waiters.delete(key);
    else next();
  }
}
