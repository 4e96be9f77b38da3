import { createHealthEngine, type AdapterCapabilities, type HealthAdapter, type HealthEngine, type HealthEngineOptions } from "healthstate";
import type { Ports } from "./interceptors";

/** Options of `describeAdapterConformance`. */
export interface AdapterConformanceOptions {
  /** Names the suite in the test report. */
  readonly name: string;
  /**
   * Creates a fresh adapter over its own, empty namespace (a new schema, a new database file, a
   * new in-memory instance). Called for each test, and for each run of most properties (the two
   * lock properties of G5, in-process and cross-process, each use one adapter for all their
   * runs); the kit calls `close()` on it when that test or that run ends.
   */
  readonly create: () => Promise<HealthAdapter> | HealthAdapter;
  /** What the adapter declares on `store.capabilities` and `emitter.capabilities`; tests adapt to it. */
  readonly capabilities: AdapterCapabilities;
  /**
   * Creates a second adapter instance over the same data as `adapter` (another pool on the same
   * schema): what another process would use. Required when `capabilities.crossProcess` is true;
   * engines on peers do not share the in-process lock, so every cross-process guarantee is
   * exercised through the store alone. The kit closes peers before their adapter.
   */
  readonly createPeer?: (adapter: HealthAdapter) => Promise<HealthAdapter> | HealthAdapter;
  /** Runs of each fast-check property; lower it for a slow adapter. @default 30 */
  readonly numRuns?: number;
  /** Timeout of each test, in milliseconds. @default 120000 */
  readonly testTimeoutMs?: number;
}

/** Options with their defaults applied. */
export interface ConformanceConfig extends AdapterConformanceOptions {
  readonly numRuns: number;
  readonly testTimeoutMs: number;
}

/**
 * Engine options of every engine the kit creates: no housekeeping timer, and delivery tuned so
 * that retries and polling take milliseconds (no test waits on them by time).
 */
export const KIT_ENGINE_OPTIONS = {
  timers: false,
  retry: { initialDelayMs: 1, maxDelayMs: 5 },
  delivery: { pollIntervalMs: 10 },
} as const;

/** A guard on waits that would otherwise hang: far above anything a conforming adapter needs. */
export const HANG_GUARD_MS = 20_000;

type EngineExtras = Omit<HealthEngineOptions, "store" | "lock" | "emitter">;

/**
 * One test's world: a fresh adapter, the peers and engines created over it, and the background
 * errors those engines reported. `close()` closes engines, then peers, then the adapter.
 */
export class Harness {
  readonly backgroundErrors: unknown[] = [];
  readonly #engines: HealthEngine[] = [];
  readonly #peers: HealthAdapter[] = [];
  #closed = false;

  private constructor(
    readonly adapter: HealthAdapter,
    readonly config: ConformanceConfig,
  ) {}

  static async open(config: ConformanceConfig): Promise<Harness> {
    return new Harness(await config.create(), config);
  }

  /** Whether engines in separate "processes" (peers) can be created. */
  get crossProcess(): boolean {
    return this.config.capabilities.crossProcess && this.config.createPeer !== undefined;
  }

  /** An engine over `ports` (the adapter by default) with the kit's options; closed with the harness. */
  engine(ports: Ports = this.adapter, extras: EngineExtras = {}): HealthEngine {
    const engine = createHealthEngine({
      ...KIT_ENGINE_OPTIONS,
      onBackgroundError: (error) => {
        this.backgroundErrors.push(error);
      },
      ...extras,
      delivery: { ...KIT_ENGINE_OPTIONS.delivery, ...extras.delivery },
      store: ports.store,
      lock: ports.lock,
      emitter: ports.emitter,
    });
    this.#engines.push(engine);
    return engine;
  }

  /** A peer adapter over the same data (`createPeer`); closed with the harness, before the adapter. */
  async peer(): Promise<HealthAdapter> {
    const createPeer = this.config.createPeer;
    if (createPeer === undefined) throw new Error("conformance kit: this test needs the createPeer option");
    const peer = await createPeer(this.adapter);
    this.#peers.push(peer);
    return peer;
  }

  /**
   * The adapter another "process" uses: a new peer with `crossProcess` (sharing no in-process
   * lock with the adapter), the adapter itself otherwise.
   */
  async otherProcess(): Promise<HealthAdapter> {
    return this.crossProcess ? this.peer() : this.adapter;
  }

  /** Two engines: one on the adapter, one on `otherProcess()`. */
  async enginePair(extras: EngineExtras = {}): Promise<[HealthEngine, HealthEngine]> {
    const other = await this.otherProcess();
    return [this.engine(this.adapter, extras), this.engine(other, extras)];
  }

  /** Closes every engine, then every peer, then the adapter. Idempotent. Rethrows the first failure. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const results = [
      ...(await Promise.allSettled(this.#engines.map((engine) => engine.close()))),
      ...(await Promise.allSettled(this.#peers.map((peer) => peer.close()))),
      ...(await Promise.allSettled([this.adapter.close()])),
    ];
    const failed = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  }
}

/**
 * Opens harnesses for the tests of one suite and closes those still open after each test
 * (register `closeAll` in `afterEach`).
 */
export class HarnessPool {
  #open: Harness[] = [];

  constructor(readonly config: ConformanceConfig) {}

  async open(): Promise<Harness> {
    const harness = await Harness.open(this.config);
    this.#open.push(harness);
    return harness;
  }

  /**
   * Closes every harness of the test that just ended and fails if an engine reported a
   * background error (an emitter call that rejected during delivery, for example).
   */
  async closeAll(): Promise<void> {
    const harnesses = this.#open;
    this.#open = [];
    for (const harness of harnesses) await harness.close();
    const errors = harnesses.flatMap((harness) => harness.backgroundErrors);
    if (errors.length > 0) {
      throw new Error(`engines reported ${errors.length} background error(s); the first: ${String(errors[0])}`, {
        cause: errors[0],
      });
    }
  }
}
