import type { HealthError } from "healthstate";

/** What the engine's operations return (neverthrow's `ResultAsync`), seen structurally. */
export interface Matchable<T> {
  match<A, B = A>(ok: (value: T) => A, err: (error: HealthError) => B): Promise<A | B>;
}

/** The value of a successful operation; a failed one throws an `Error` naming `what` and the error. */
export async function ok<T>(pending: Matchable<T>, what: string): Promise<T> {
  const settled = await pending.match(
    (value) => ({ ok: true as const, value }),
    (error) => ({ ok: false as const, error }),
  );
  if (settled.ok) return settled.value;
  throw new Error(`${what}: expected success, got ${settled.error.type} error: ${settled.error.message}`, {
    cause: settled.error,
  });
}

/** The error of a failed operation; a successful one throws an `Error` naming `what`. */
export async function failure<T>(pending: Matchable<T>, what: string): Promise<HealthError> {
  const settled = await pending.match(
    (value) => ({ ok: true as const, value }),
    (error) => ({ ok: false as const, error }),
  );
  if (!settled.ok) return settled.error;
  throw new Error(`${what}: expected an error, got success: ${JSON.stringify(settled.value)}`);
}

/** A promise with its resolve function exposed: lets a test decide when something happens. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
}

/** A new `Deferred`: its promise stays pending until the test calls `resolve`. */
export function deferred<T = void>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

/**
 * Waits for `promise`, failing with `describe()`'s text if it has not settled after `ms`. A guard
 * that turns a hang (a deadlock, a lost event) into a readable failure; never an assertion on
 * speed: `ms` is far above what any conforming adapter needs.
 */
export async function within<T>(promise: Promise<T>, ms: number, describe: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${describe()} (still pending after ${ms} ms)`)), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** Groups values by a key, keeping their order within each group. */
export function groupBy<T>(values: Iterable<T>, keyOf: (value: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const value of values) {
    const key = keyOf(value);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [value]);
    else group.push(value);
  }
  return groups;
}

/** An object with keys in sorted order, so that two maps compare equal regardless of insertion order. */
export function sortedRecord<V>(entries: Iterable<readonly [string, V]>): Record<string, V> {
  const record: Record<string, V> = {};
  for (const [key, value] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) record[key] = value;
  return record;
}
