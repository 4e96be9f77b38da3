import { z } from "zod";
import { ValidationError } from "../errors";
import type { FlappingConfig } from "../kernel";
import type { HealthEmitter, HealthLock, HealthStore } from "../ports";
import { flappingSchema, retentionSchema, toConfigurationIssues, type RetentionConfig, type RetentionInput } from "../validation";

const positiveInt = z.number().int("must be an integer").min(1, "must be at least 1");

const optionsSchema = z.object({
  retry: z
    .strictObject({
      initialDelayMs: positiveInt.max(60_000).default(100),
      maxDelayMs: positiveInt.max(3_600_000).default(30_000),
    })
    .refine((retry) => retry.initialDelayMs <= retry.maxDelayMs, {
      path: ["maxDelayMs"],
      message: "must be at least initialDelayMs",
    })
    .default({ initialDelayMs: 100, maxDelayMs: 30_000 }),
  delivery: z
    .strictObject({
      maxAttempts: positiveInt.default(25),
      // A day at most: a handler still running when its lease runs out has failed the attempt,
      // timed by a timer, and Node's timers hold at most 2^31 - 1 ms (longer ones fire at once).
      leaseMs: positiveInt.max(86_400_000).default(60_000),
      pollIntervalMs: positiveInt.max(60_000).default(500),
      concurrency: positiveInt.max(10_000).default(64),
      retentionMs: positiveInt.default(24 * 3_600_000),
      maxRetainedEvents: positiveInt.default(100_000),
    })
    .default({
      maxAttempts: 25,
      leaseMs: 60_000,
      pollIntervalMs: 500,
      concurrency: 64,
      retentionMs: 24 * 3_600_000,
      maxRetainedEvents: 100_000,
    }),
  timers: z.boolean().default(true),
  tickIntervalMs: positiveInt.max(3_600_000).default(1_000),
  flapping: flappingSchema.default({ enabled: true, low: 20, high: 30 }),
  retention: retentionSchema.default({ rawRetentionDays: 7, hourlyRetentionDays: 30, dailyRetentionDays: 365 }),
  stateCacheSystems: z.number().int("must be an integer").min(0, "must be at least 0").max(10_000_000).default(10_000),
});

/** Options of `createHealthEngine`. Every field but the three ports is optional. */
export interface HealthEngineOptions {
  readonly store: HealthStore;
  readonly lock: HealthLock;
  readonly emitter: HealthEmitter;
  /** Source of "now" for runs without a timestamp, topology changes and delivery scheduling. @default () => new Date() */
  readonly clock?: () => Date;
  /** Generates ids for runs recorded without a `runId`. @default crypto.randomUUID */
  readonly generateId?: () => string;
  /**
   * Redelivery backoff after a subscriber failure: first retry after `initialDelayMs`, doubling
   * each attempt, capped at `maxDelayMs`.
   * @default { initialDelayMs: 100, maxDelayMs: 30000 }
   */
  readonly retry?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** Delivery tuning; see `DeliveryOptions`. */
  readonly delivery?: Partial<DeliveryOptions>;
  /**
   * Whether the engine runs its own timers: maintenance boundaries (`tick`) every
   * `tickIntervalMs`, and outbox housekeeping. With `false`, call `tick()` from your own
   * scheduler. Delivery polling always runs while a subscription exists. @default true
   */
  readonly timers?: boolean;
  /** How often the engine's timer calls `tick()`. @default 1000 */
  readonly tickIntervalMs?: number;
  /**
   * Flap detection (SPEC §10): flapping starts when the percent state change of an entity's last
   * 21 evaluations reaches `high` and stops when it falls to `low`. Assignments may override any
   * field (`assignCheck({ flapping })`); each entity then uses the most sensitive settings of its
   * contributing assignments (`resolveEntityFlapping`).
   * @default { enabled: true, low: 20, high: 30 }
   */
  readonly flapping?: Partial<FlappingConfig>;
  /**
   * How long history is kept (SPEC §9), in days: raw runs, hourly buckets (then rolled into daily
   * ones) and daily buckets with the transition log. `raw < hourly < daily`.
   * @default { rawRetentionDays: 7, hourlyRetentionDays: 30, dailyRetentionDays: 365 }
   */
  readonly retention?: RetentionInput;
  /**
   * How many systems' committed state (system, assignments, slices, entities) the engine keeps
   * between its writes (its runs' and its topology changes'), least recently used ones evicted
   * first. With a store that has state versions (both reference adapters), a write to a kept
   * system whose version is unchanged reads only the version, not the rows. About 1–1.5 KB of heap
   * per system kept (five checks, three environments); size it to the systems one process writes
   * to keep its per-run cost flat as the fleet grows; `0` keeps nothing (every write reads its
   * systems' rows). An integer from 0 to 10,000,000. @default 10000
   */
  readonly stateCacheSystems?: number;
  /**
   * Called with errors of background work (delivery bookkeeping, housekeeping) that no caller
   * can receive. Delivery is retried regardless. @default logs to console.error
   */
  readonly onBackgroundError?: (error: unknown) => void;
}

/** Delivery tuning of `createHealthEngine({ delivery })`. */
export interface DeliveryOptions {
  /** Failed attempts after which an event is moved to the group's dead letters. @default 25 */
  readonly maxAttempts: number;
  /**
   * How long a claimed event is reserved for one consumer before another may take it; also how
   * long a handler may run: one still running then has failed that attempt (retried with backoff,
   * its slot freed). At most 86400000 (a day). @default 60000
   */
  readonly leaseMs: number;
  /** How often an idle subscription looks for events committed by other processes. @default 500 */
  readonly pollIntervalMs: number;
  /** Events one subscription delivers at the same time (each from a different entity). @default 64 */
  readonly concurrency: number;
  /** Settled events older than this are deleted from the outbox. @default 86400000 (24 h) */
  readonly retentionMs: number;
  /** At most this many settled events are retained. @default 100000 */
  readonly maxRetainedEvents: number;
}

export interface ResolvedOptions {
  readonly store: HealthStore;
  readonly lock: HealthLock;
  readonly emitter: HealthEmitter;
  readonly clock: () => Date;
  readonly generateId: () => string;
  readonly retry: { readonly initialDelayMs: number; readonly maxDelayMs: number };
  readonly delivery: DeliveryOptions;
  readonly timers: boolean;
  readonly tickIntervalMs: number;
  readonly flapping: FlappingConfig;
  readonly retention: RetentionConfig;
  readonly stateCacheSystems: number;
  readonly onBackgroundError: (error: unknown) => void;
}

/** Validates engine options. @throws ValidationError listing every problem. */
export function resolveOptions(options: HealthEngineOptions): ResolvedOptions {
  const issues = [];
  for (const port of ["store", "lock", "emitter"] as const) {
    if (typeof options?.[port] !== "object" || options[port] === null) {
      issues.push({ path: [port], message: `a ${port} adapter is required` });
    }
  }
  const parsed = optionsSchema.safeParse({
    retry: options?.retry,
    delivery: options?.delivery,
    timers: options?.timers,
    tickIntervalMs: options?.tickIntervalMs,
    flapping: options?.flapping,
    retention: options?.retention,
    stateCacheSystems: options?.stateCacheSystems,
  });
  if (!parsed.success) issues.push(...toConfigurationIssues(parsed.error.issues));
  for (const hook of ["clock", "generateId", "onBackgroundError"] as const) {
    if (options?.[hook] !== undefined && typeof options[hook] !== "function") issues.push({ path: [hook], message: "must be a function when given" });
  }
  if (issues.length > 0 || !parsed.success) throw new ValidationError(issues);
  const report =
    options.onBackgroundError ??
    ((error: unknown) => {
      console.error("healthstate: background error", error);
    });
  return {
    store: options.store,
    lock: options.lock,
    emitter: options.emitter,
    clock: options.clock ?? (() => new Date()),
    generateId: options.generateId ?? (() => globalThis.crypto.randomUUID()),
    retry: parsed.data.retry,
    delivery: parsed.data.delivery,
    timers: parsed.data.timers,
    tickIntervalMs: parsed.data.tickIntervalMs,
    flapping: parsed.data.flapping,
    retention: parsed.data.retention,
    stateCacheSystems: parsed.data.stateCacheSystems,
    // Called from timers and delivery loops, where a throw would be an unhandled rejection (a
    // crash under Node's default): a reporter that throws is ignored.
    onBackgroundError: (error: unknown) => {
      try {
        report(error);
      } catch {
        // Nothing left to report to.
      }
    },
  };
}

/**
 * Delay before the retry that follows the `attempt`-th failed delivery (1-based): `initialDelayMs`
 * doubled per attempt, capped at `maxDelayMs`.
 */
export function backoffDelay(attempt: number, retry: ResolvedOptions["retry"]): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** exponent);
}
