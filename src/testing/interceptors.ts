import type fc from "fast-check";
import type { HealthAdapter, HealthLock, HealthStore, StoreTransaction } from "healthstate";

type AnyFunction = (...args: unknown[]) => unknown;

/**
 * A proxy of `target` whose methods are replaced by `wrap(name, original)`. `original` is bound
 * to the target, so adapters built on private class fields keep working, and methods the ports
 * gain later pass through the same hook without this file knowing their names.
 */
export function proxyMethods<T extends object>(target: T, wrap: (method: string, original: AnyFunction) => AnyFunction): T {
  const cache = new Map<string, AnyFunction>();
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== "function" || typeof property !== "string") return value;
      let wrapped = cache.get(property);
      if (wrapped === undefined) {
        const method = value as AnyFunction;
        wrapped = wrap(property, (...args) => Reflect.apply(method, object, args));
        cache.set(property, wrapped);
      }
      return wrapped;
    },
  });
}

/** Whether a `StoreTransaction` method writes (by the ports' naming convention; `addToBuckets` merges). */
export function isWriteMethod(method: string): boolean {
  return /^(put|delete|insert|append|enqueue|add)/u.test(method);
}

/** A store whose `transaction` hands `fn` the transaction as transformed by `wrapTx`. */
function interceptTransactions(store: HealthStore, wrapTx: (tx: StoreTransaction) => StoreTransaction): HealthStore {
  return proxyMethods(store, (method, original) => {
    if (method !== "transaction") return original;
    return (options: unknown, fn: unknown) => {
      const body = fn as (tx: StoreTransaction) => Promise<unknown>;
      return original(options, (tx: StoreTransaction) => body(wrapTx(tx)));
    };
  });
}

/**
 * The order in which transactions of one test committed their runs, across every engine and
 * peer that share it. Each `insertRuns` call is stamped when it is made, and the stamp counts
 * once its transaction committed (the real `transaction` promise resolved). Two transactions that
 * touch one entity hold its lock from before their reads until their commit, so the second one's
 * `insertRuns` comes after the first one's commit: stamp order is commit order wherever order
 * matters, whichever way the commit acknowledgements race back to the caller.
 */
export class AcceptanceLog {
  #stamps = 0;
  readonly #committed: { readonly stamp: number; readonly runIds: readonly string[] }[] = [];

  /** Run ids of every committed transaction, in acceptance order. */
  runIds(): string[] {
    return [...this.#committed].sort((a, b) => a.stamp - b.stamp).flatMap((entry) => entry.runIds);
  }

  /** `store`, with its transactions' accepted runs logged here. */
  wrap(store: HealthStore): HealthStore {
    return proxyMethods(store, (method, original) => {
      if (method !== "transaction") return original;
      return async (options: unknown, fn: unknown) => {
        const body = fn as (tx: StoreTransaction) => Promise<unknown>;
        const inserted: { stamp: number; runIds: string[] }[] = [];
        const result = await original(options, (tx: StoreTransaction) =>
          body(
            proxyMethods(tx, (txMethod, txOriginal) => {
              if (txMethod !== "insertRuns") return txOriginal;
              return (runs: unknown) => {
                const runIds = (runs as readonly { readonly runId: string }[]).map((run) => run.runId);
                inserted.push({ stamp: (this.#stamps += 1), runIds });
                return txOriginal(runs);
              };
            }),
          ),
        );
        this.#committed.push(...inserted);
        return result;
      };
    });
  }
}

/** The error a `FailingStore` injects. */
export class InjectedFailure extends Error {
  constructor(readonly write: number, readonly method: string) {
    super(`injected failure on write #${write} (${method})`);
    this.name = "InjectedFailure";
  }
}

/**
 * A store that fails the `failOn`-th write call (1-based) of the next transaction it runs:
 * `"before"` rejects without calling the real method, `"after"` calls it (the write is staged
 * in the real transaction) and then rejects. Later transactions are not touched.
 */
export class FailingStore {
  readonly store: HealthStore;
  /** The failure it injected, once it did. */
  injected: InjectedFailure | undefined;
  /** Writes the armed transaction made (up to and including the failing one). */
  writes = 0;
  #armed = true;

  constructor(real: HealthStore, failOn: number, mode: "before" | "after") {
    this.store = interceptTransactions(real, (tx) => {
      if (!this.#armed) return tx;
      this.#armed = false;
      return proxyMethods(tx, (method, original) => {
        if (!isWriteMethod(method)) return original;
        return async (...args: unknown[]) => {
          this.writes += 1;
          if (this.writes !== failOn) return original(...args);
          this.injected = new InjectedFailure(failOn, method);
          if (mode === "after") await original(...args);
          throw this.injected;
        };
      });
    });
  }
}

/** The adapter's ports as one engine (or one process) sees them. */
export type Ports = Pick<HealthAdapter, "store" | "lock" | "emitter">;

/**
 * Runs one port call under the scheduler: the call starts only when the scheduler releases it,
 * and its outcome reaches the caller only when the scheduler releases that too. fast-check
 * decides the order of both, and replays it from the seed.
 */
async function scheduled<T>(s: fc.Scheduler, label: string, invoke: () => Promise<T>): Promise<T> {
  await s.schedule(Promise.resolve(), `${label} →`);
  // The return is scheduled only once the real call settled: a scheduled task must not wait on
  // other scheduled tasks, or releasing it would block the scheduler.
  const outcome = await new Promise<T>((resolve) => {
    resolve(invoke());
  }).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  await s.schedule(Promise.resolve(), `${label} ←`);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/**
 * The store and lock of `ports` with every call (lock acquisition, transaction start and commit
 * acknowledgement, each transaction method, each read) interleaved by the scheduler `s`. The
 * emitter is left alone: delivery runs on its own timers, which the scheduler cannot replay.
 */
export function scheduledPorts(s: fc.Scheduler, ports: Ports, name: string): Ports {
  const store = proxyMethods(ports.store, (method, original) => {
    if (method !== "transaction") return (...args) => scheduled(s, `${name}.${method}`, () => original(...args) as Promise<unknown>);
    return (options: unknown, fn: unknown) => {
      const body = fn as (tx: StoreTransaction) => Promise<unknown>;
      const keys = (options as { readonly lockKeys: readonly string[] }).lockKeys.join(",");
      return scheduled(s, `${name}.transaction[${keys}]`, () =>
        original(options, (tx: StoreTransaction) =>
          body(
            proxyMethods(tx, (txMethod, txOriginal) => (...args) =>
              scheduled(s, `${name}.tx.${txMethod}`, () => txOriginal(...args) as Promise<unknown>),
            ),
          ),
        ) as Promise<unknown>,
      );
    };
  });
  const lock: HealthLock = {
    withLock: (keys, fn) => scheduled(s, `${name}.withLock[${keys.join(",")}]`, () => ports.lock.withLock(keys, fn)),
  };
  return { store, lock, emitter: ports.emitter };
}

/**
 * A store whose transactions, once started, wait for `release` before running their body, after
 * resolving `entered`: holds a transaction open (its locks taken) for as long as a test needs.
 */
export function stallingStore(store: HealthStore, entered: () => void, release: Promise<void>): HealthStore {
  return interceptTransactions(store, (tx) => {
    entered();
    return proxyMethods(tx, (_method, original) => async (...args) => {
      await release;
      return original(...args);
    });
  });
}

/** The scheduler's tasks still waiting to be released, for a failure message. */
export function pendingTasks(s: fc.Scheduler): string {
  const pending = s.report().filter((task) => task.status === "pending");
  return pending.length === 0 ? "none" : pending.map((task) => task.label).join("; ");
}
