// The benchmark workload: a topology of systems × environments × checks, and a deterministic
// stream of runs with realistic failure streaks (most checks pass; a failing check tends to keep
// failing for a while, sometimes for a long outage).
import { encodeHealthEntityId, type HealthStatus, type RunInput, type TopologyDoc } from "healthstate";

export const ENVIRONMENTS = ["prod", "staging", "dev"] as const;
/** Four checks with the default consecutive thresholds, one in window mode. */
export const CHECKS = ["http", "db", "queue", "disk", "latency"] as const;
const WINDOW_CHECK = "latency";

/** Entities per system: one per environment plus the rollup. */
export const ENTITIES_PER_SYSTEM = ENVIRONMENTS.length + 1;
export const SLICES_PER_SYSTEM = ENVIRONMENTS.length * CHECKS.length;

export const systemIdOf = (index: number): string => `sys-${index.toString().padStart(6, "0")}`;
/** The entity id of a system (`environmentId` null: its rollup) or of one of its environments. */
export const entityIdOf = (systemId: string, environmentId: string | null): string =>
  encodeHealthEntityId({ systemId, environmentId })._unsafeUnwrap();

/** Every entity id of the first `systems` systems (rollups and environment entities). */
export function entityIdsOf(systems: number): string[] {
  const ids: string[] = [];
  for (let index = 0; index < systems; index += 1) {
    ids.push(entityIdOf(systemIdOf(index), null));
    for (const environmentId of ENVIRONMENTS) ids.push(entityIdOf(systemIdOf(index), environmentId));
  }
  return ids;
}

/** The topology document of systems `[from, to)`. */
export function topologyOf(from: number, to: number, prefix = ""): TopologyDoc {
  const systems = [];
  for (let index = from; index < to; index += 1) {
    systems.push({
      systemId: prefix + systemIdOf(index),
      environmentIds: [...ENVIRONMENTS],
      checks: CHECKS.map((checkId) =>
        checkId === WINDOW_CHECK
          ? { checkId, thresholds: { mode: "window" as const, windowSize: 10, degraded: { minFailureCount: 3 }, unhealthy: { minFailureCount: 7 } } }
          : { checkId },
      ),
    });
  }
  return { systems };
}

/** mulberry32: a small, fast, seeded PRNG (uniform in [0, 1)). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const BASE_TIME = Date.parse("2026-11-30T00:00:00.000Z");
const ROUND_MS = 60_000;

/**
 * Failure-streak model of one slice: a healthy slice starts failing with probability 2 % per run;
 * a failure streak goes on with probability 75 % (mean 4 runs, which crosses the degraded
 * threshold of 2 and sometimes the unhealthy one of 5), and one streak in ten is an outage that
 * goes on with probability 95 % (mean 20 runs). A streak is mostly unhealthy or mostly degraded.
 */
interface SliceModel {
  failing: boolean;
  continueProbability: number;
  unhealthyShare: number;
}

/**
 * A deterministic, endless stream of runs over the first `systems` systems. Time advances in
 * rounds of one minute; within a round each slice reports once, in a random order. Run ids are
 * `<prefix>-<n>`, unique per stream.
 */
export class RunStream {
  readonly #random: () => number;
  readonly #systems: number;
  readonly #prefix: string;
  readonly #models: SliceModel[];
  #order: Uint32Array;
  #position: number;
  #round = 0;
  #counter = 0;

  readonly #failStart: number;
  readonly #streak: number;

  /**
   * `volatile` makes streaks start with probability 30 % and go on with probability 50 %: many
   * transitions (and flapping), for the contention scenario's exactly-once check.
   */
  constructor(options: {
    readonly systems: number;
    readonly seed: number;
    readonly prefix: string;
    readonly systemPrefix?: string;
    readonly volatile?: boolean;
  }) {
    this.#random = prng(options.seed);
    this.#failStart = options.volatile === true ? 0.3 : 0.02;
    this.#streak = options.volatile === true ? 0.5 : 0.75;
    this.#systems = options.systems;
    this.#prefix = options.prefix;
    this.#systemPrefix = options.systemPrefix ?? "";
    const slices = options.systems * SLICES_PER_SYSTEM;
    this.#models = Array.from({ length: slices }, () => ({ failing: false, continueProbability: 0, unhealthyShare: 0 }));
    this.#order = new Uint32Array(slices);
    this.#position = slices;
  }

  readonly #systemPrefix: string;

  /** Number of runs produced so far. */
  get produced(): number {
    return this.#counter;
  }

  /** The next run of the round-robin stream. */
  next(): RunInput {
    if (this.#position >= this.#order.length) this.#newRound();
    const slice = this.#order[this.#position] as number;
    this.#position += 1;
    return this.#runOf(slice, this.#round * ROUND_MS + (this.#position % 60_000));
  }

  /** `count` runs of the round-robin stream. */
  take(count: number): RunInput[] {
    const runs: RunInput[] = [];
    for (let i = 0; i < count; i += 1) runs.push(this.next());
    return runs;
  }

  /**
   * A batch shaped independently of the number of systems: `systems` distinct random systems,
   * `perSystem` runs each (distinct slices of the system), so a batch costs the same at any size.
   */
  spread(systems: number, perSystem: number): RunInput[] {
    this.#round += 1;
    const chosen = new Set<number>();
    const wanted = Math.min(systems, this.#systems);
    while (chosen.size < wanted) chosen.add(Math.floor(this.#random() * this.#systems));
    const runs: RunInput[] = [];
    for (const system of chosen) {
      const slices = new Set<number>();
      while (slices.size < Math.min(perSystem, SLICES_PER_SYSTEM)) slices.add(Math.floor(this.#random() * SLICES_PER_SYSTEM));
      for (const slice of slices) runs.push(this.#runOf(system * SLICES_PER_SYSTEM + slice, this.#round * ROUND_MS + runs.length));
    }
    return runs;
  }

  /** Runs on one system only (the contention scenario), slices at random. */
  onSystem(system: number, count: number): RunInput[] {
    const runs: RunInput[] = [];
    for (let i = 0; i < count; i += 1) {
      this.#round += 1;
      runs.push(this.#runOf(system * SLICES_PER_SYSTEM + Math.floor(this.#random() * SLICES_PER_SYSTEM), this.#round * ROUND_MS));
    }
    return runs;
  }

  #newRound(): void {
    this.#round += 1;
    const order = this.#order;
    for (let i = 0; i < order.length; i += 1) order[i] = i;
    for (let i = order.length - 1; i > 0; i -= 1) {
      const j = Math.floor(this.#random() * (i + 1));
      const swap = order[i] as number;
      order[i] = order[j] as number;
      order[j] = swap;
    }
    this.#position = 0;
  }

  #runOf(slice: number, offsetMs: number): RunInput {
    const model = this.#models[slice] as SliceModel;
    const random = this.#random;
    if (model.failing) {
      if (random() >= model.continueProbability) model.failing = false;
    } else if (random() < this.#failStart) {
      model.failing = true;
      model.continueProbability = random() < 0.1 ? 0.95 : this.#streak;
      model.unhealthyShare = random() < 0.5 ? 0.9 : 0.2;
    }
    const status: HealthStatus = !model.failing ? "healthy" : random() < model.unhealthyShare ? "unhealthy" : "degraded";
    const system = Math.floor(slice / SLICES_PER_SYSTEM);
    const within = slice % SLICES_PER_SYSTEM;
    const checkId = CHECKS[within % CHECKS.length] as string;
    const environmentId = ENVIRONMENTS[Math.floor(within / CHECKS.length)] as string;
    this.#counter += 1;
    const latencyMs = Math.round((status === "healthy" ? 20 + random() * 80 : 200 + random() * 4_800) * 10) / 10;
    return {
      runId: `${this.#prefix}-${this.#counter}`,
      systemId: this.#systemPrefix + systemIdOf(system),
      checkId,
      environmentId,
      status,
      latencyMs,
      timestamp: new Date(BASE_TIME + offsetMs).toISOString(),
      ...(status === "healthy" ? {} : { message: status === "unhealthy" ? "connection refused" : "slow response" }),
    };
  }
}
