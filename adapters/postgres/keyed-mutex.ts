import type { HealthLock } from "healthstate";

/**
 * In-process mutual exclusion per key: the Postgres adapter's `HealthLock`. It keeps two calls of
 * this process that touch the same entity from both holding a pooled connection while one waits
 * for the other's advisory lock; across processes the store's advisory locks serialize them.
 * Keys are taken one at a time in sorted order, so overlapping calls cannot deadlock, and calls
 * with disjoint keys never wait for each other.
 */
export class KeyedMutex implements HealthLock {
  readonly #tails = new Map<string, Promise<void>>();

  async withLock<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const ordered = [...new Set(keys)].sort();
    const releases: (() => void)[] = [];
    try {
      for (const key of ordered) releases.push(await this.#acquire(key));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  /** Number of keys currently held or waited for (for leak checks in tests). */
  get size(): number {
    return this.#tails.size;
  }

  #acquire(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let unlock!: () => void;
    const held = new Promise<void>((resolve) => {
      unlock = resolve;
    });
    const tail = previous.then(() => held);
    this.#tails.set(key, tail);
    return previous.then(() => () => {
      unlock();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
  }
}
