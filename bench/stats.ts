// Small statistics and measurement helpers: medians with their spread, nearest-rank
// percentiles, time-bounded repetitions, memory snapshots.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Median, extremes and relative spread of repeated measurements. */
export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max − min) / median, in percent. */
  readonly spreadPct: number;
  readonly samples: readonly number[];
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, spreadPct: Number.NaN, samples: [] };
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  const min = sorted[0] as number;
  const max = sorted[sorted.length - 1] as number;
  return { median, min, max, spreadPct: median === 0 ? 0 : ((max - min) / median) * 100, samples: [...samples] };
}

/** Nearest-rank percentile (`p` in 0..100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** One timed repetition: how much work was done in how long. */
export interface Timed {
  readonly units: number;
  readonly ms: number;
  /** Units per second. */
  readonly rate: number;
}

/**
 * Runs `step` over and over (each call does some units of work and returns how many) until
 * `minMs` have passed and at least `minUnits` were done. Returns the rate over the whole time.
 */
export async function timeUntil(options: { readonly minMs: number; readonly minUnits?: number }, step: () => Promise<number>): Promise<Timed> {
  const minUnits = options.minUnits ?? 1;
  const start = now();
  let units = 0;
  let elapsed = 0;
  while (elapsed < options.minMs || units < minUnits) {
    units += await step();
    elapsed = now() - start;
  }
  return { units, ms: elapsed, rate: (units / elapsed) * 1000 };
}

/**
 * `workers` concurrent loops, each calling `call` until `minMs` have passed (no call starts
 * after that), with at least `minUnits` calls in all. Returns the rate and every call's latency.
 */
export async function concurrentUntil(
  options: { readonly workers: number; readonly minMs: number; readonly minUnits?: number },
  call: (worker: number) => Promise<void>,
): Promise<Timed & { readonly latencies: number[] }> {
  const minUnits = options.minUnits ?? 1;
  const latencies: number[] = [];
  const start = now();
  let started = 0;
  const loop = async (worker: number) => {
    while (now() - start < options.minMs || started < minUnits) {
      started += 1;
      const t = now();
      await call(worker);
      latencies.push(now() - t);
    }
  };
  await Promise.all(Array.from({ length: options.workers }, (_, worker) => loop(worker)));
  const ms = now() - start;
  return { units: latencies.length, ms, rate: (latencies.length / ms) * 1000, latencies };
}

let gcFunction: (() => void) | undefined;

/** Forces a full garbage collection (the flag is set at run time, so `tsx` needs no option). */
export function collectGarbage(): void {
  if (gcFunction === undefined) {
    setFlagsFromString("--expose-gc");
    gcFunction = runInNewContext("gc") as () => void;
  }
  gcFunction();
  gcFunction();
}

/** Process memory after a full collection, in MiB. */
export function memorySnapshot(): { readonly rssMiB: number; readonly heapUsedMiB: number } {
  collectGarbage();
  const usage = process.memoryUsage();
  return { rssMiB: usage.rss / 2 ** 20, heapUsedMiB: usage.heapUsed / 2 ** 20 };
}
