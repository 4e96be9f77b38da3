// Entry of healthstate/adapters/memory: the in-process reference adapter.
import type { HealthAdapter } from "healthstate";
import { KeyedMutex } from "./keyed-mutex";
import { AdapterLifecycle } from "./lifecycle";
import { MemoryEmitter } from "./memory-emitter";
import { MemoryOutbox } from "./memory-outbox";
import { MemoryStore } from "./memory-store";

export { KeyedMutex } from "./keyed-mutex";
export { MEMORY_CAPABILITIES } from "./lifecycle";
export type { MemoryEmitter } from "./memory-emitter";
export type { MemoryStore, MemoryTransaction, PruneCounts } from "./memory-store";

/** Options of `createMemoryAdapter`. */
export interface MemoryAdapterOptions {
  /**
   * Clock that stamps the commit time of enqueued events, which `emitter.prune({ olderThan })`
   * compares with. Inject a fake one in tests.
   * @default () => new Date()
   */
  readonly clock?: () => Date;
}

/** The in-memory adapter: the three ports, typed as their memory implementations. */
export interface MemoryAdapter extends HealthAdapter {
  readonly store: MemoryStore;
  readonly lock: KeyedMutex;
  readonly emitter: MemoryEmitter;
  /**
   * Closes the adapter: every later store or emitter call (and the commit of a transaction still
   * running) rejects with a `ClosedError`, and `onAvailable` listeners are dropped. Idempotent.
   * The lock keeps working. The data is not kept anywhere: it is gone with the adapter.
   */
  close(): Promise<void>;
}

/**
 * Creates an in-process adapter (`{ durable: false, crossProcess: false }`): tables in memory
 * with real copy-on-write transactions, a keyed async mutex, and an outbox delivering each event
 * once per group in per-entity order. Every engine sharing it must live in this process; one
 * adapter per engine group, created fresh for each test.
 *
 * @example
 * const engine = createHealthEngine(createMemoryAdapter());
 */
export function createMemoryAdapter(options: MemoryAdapterOptions = {}): MemoryAdapter {
  const clock = options.clock ?? (() => new Date());
  const lifecycle = new AdapterLifecycle();
  const outbox = new MemoryOutbox();
  const emitter = new MemoryEmitter(outbox, lifecycle);
  const store = new MemoryStore({
    lifecycle,
    outbox,
    clock,
    onEventsCommitted: () => {
      emitter.notifyAvailable();
    },
  });
  const lock = new KeyedMutex();
  return {
    store,
    lock,
    emitter,
    close: () => {
      lifecycle.close();
      emitter.releaseListeners();
      return Promise.resolve();
    },
  };
}
