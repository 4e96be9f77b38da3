import { fc, test } from "@fast-check/vitest";
import {
  addRuns,
  bucketStart,
  emptyBucket,
  mergeBuckets,
  successRate,
  summarizeLatency,
  type BucketKey,
  type HealthStatus,
  type RunBucket,
} from "healthstate";
import { describe, expect, it } from "vitest";
import {
  EMPTY_SKETCH,
  MIN_INDEXABLE,
  SKETCH_RELATIVE_ACCURACY,
  addToSketch,
  mergeSketches,
  sketchCount,
  sketchKey,
  sketchQuantile,
  sketchValue,
  sparseBins,
} from "../../src/buckets";

const H = "healthy";
const D = "degraded";
const U = "unhealthy";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const key: BucketKey = { systemId: "sys", checkId: "http", environmentId: "prod", granularity: "hour", start: "2026-11-30T12:00:00.000Z" };

function bucketOf(latencies: readonly (number | null)[], statuses: readonly HealthStatus[] = []): RunBucket {
  const runs = latencies.map((latencyMs, index) => ({ status: statuses[index] ?? H, latencyMs }));
  return addRuns(emptyBucket(key), runs);
}

/** The exact nearest-rank quantile: the ⌈p·n/100⌉-th smallest value (1-based). */
function nearestRank(sorted: readonly number[], percent: number): number {
  const rank = Math.max(1, Math.ceil((percent * sorted.length) / 100));
  return sorted[rank - 1] as number;
}

/** |estimate − exact| within the sketch's relative accuracy (plus float rounding). */
function expectWithinRelative(estimate: number, exact: number): void {
  expect(Math.abs(estimate - exact)).toBeLessThanOrEqual(SKETCH_RELATIVE_ACCURACY * Math.abs(exact) * (1 + 1e-9) + 1e-12);
}

describe("bucketStart (§9: all bucketing in UTC)", () => {
  it.each([
    ["2026-11-30T12:34:56.789Z", "2026-11-30T12:00:00.000Z", "2026-11-30T00:00:00.000Z"],
    ["2026-11-30T12:00:00.000Z", "2026-11-30T12:00:00.000Z", "2026-11-30T00:00:00.000Z"],
    ["2026-11-30T11:59:59.999Z", "2026-11-30T11:00:00.000Z", "2026-11-30T00:00:00.000Z"],
    ["2026-11-30T00:00:00.000Z", "2026-11-30T00:00:00.000Z", "2026-11-30T00:00:00.000Z"],
    ["2026-11-30T23:59:59.999Z", "2026-11-30T23:00:00.000Z", "2026-11-30T00:00:00.000Z"],
    // An offset is converted to UTC first: 01:30 in India is 20:00 UTC the day before.
    ["2026-11-30T01:30:00+05:30", "2026-11-29T20:00:00.000Z", "2026-11-29T00:00:00.000Z"],
    ["2026-11-29T22:45:00-05:00", "2026-11-30T03:00:00.000Z", "2026-11-30T00:00:00.000Z"],
    // Leap day, and before the epoch (negative milliseconds round down, not towards zero).
    ["2028-02-29T23:10:00Z", "2028-02-29T23:00:00.000Z", "2028-02-29T00:00:00.000Z"],
    ["1969-12-31T23:59:59.999Z", "1969-12-31T23:00:00.000Z", "1969-12-31T00:00:00.000Z"],
  ])("%s → hour %s, day %s", (time, hour, day) => {
    expect(bucketStart(time, "hour")).toBe(hour);
    expect(bucketStart(time, "day")).toBe(day);
    expect(bucketStart(new Date(time), "hour")).toBe(hour);
    expect(bucketStart(new Date(time), "day")).toBe(day);
  });

  test.prop([fc.date({ min: new Date("1900-01-01T00:00:00Z"), max: new Date("2200-01-01T00:00:00Z"), noInvalidDate: true })])(
    "is the aligned UTC start of the hour or day containing the time",
    (date) => {
      const hour = Date.parse(bucketStart(date, "hour"));
      const day = Date.parse(bucketStart(date, "day"));
      expect(hour).toBeLessThanOrEqual(date.getTime());
      expect(date.getTime()).toBeLessThan(hour + HOUR);
      expect(day).toBeLessThanOrEqual(date.getTime());
      expect(date.getTime()).toBeLessThan(day + DAY);
      const start = new Date(day);
      expect([start.getUTCHours(), start.getUTCMinutes(), start.getUTCSeconds(), start.getUTCMilliseconds()]).toEqual([0, 0, 0, 0]);
      expect(new Date(hour).getUTCMinutes() + new Date(hour).getUTCSeconds() + new Date(hour).getUTCMilliseconds()).toBe(0);
      expect(bucketStart(date.toISOString(), "day")).toBe(bucketStart(date, "day"));
      expect(new Date(hour).getUTCDate()).toBe(date.getUTCDate());
    },
  );

  it("does not depend on the host's time zone (TZ=Asia/Kolkata, +05:30)", () => {
    const saved = process.env.TZ;
    process.env.TZ = "Asia/Kolkata";
    try {
      // Around local midnight in India (18:30 UTC) and a local half hour (hh:30 UTC is hh+6:00 local).
      const localMidnight = new Date("2026-11-30T18:30:00.000Z");
      const justBefore = new Date(localMidnight.getTime() - 1);
      const halfPast = new Date("2026-11-30T18:45:00.000Z");
      // Node may have cached the zone before this test: only when it did switch are local fields
      // different from UTC ones; the buckets must be the UTC ones either way.
      if (localMidnight.getTimezoneOffset() === -330) {
        expect(localMidnight.getDate()).toBe(1);
        expect(justBefore.getDate()).toBe(30);
      }
      expect(bucketStart(justBefore, "day")).toBe("2026-11-30T00:00:00.000Z");
      expect(bucketStart(localMidnight, "day")).toBe("2026-11-30T00:00:00.000Z");
      expect(bucketStart(new Date("2026-11-30T23:59:59.999Z"), "day")).toBe("2026-11-30T00:00:00.000Z");
      expect(bucketStart(new Date("2026-12-01T00:00:00.000Z"), "day")).toBe("2026-12-01T00:00:00.000Z");
      expect(bucketStart(justBefore, "hour")).toBe("2026-11-30T18:00:00.000Z");
      expect(bucketStart(localMidnight, "hour")).toBe("2026-11-30T18:00:00.000Z");
      expect(bucketStart(halfPast, "hour")).toBe("2026-11-30T18:00:00.000Z");
      expect(bucketStart("2026-12-01T00:15:00+05:30", "day")).toBe("2026-11-30T00:00:00.000Z");
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});

describe("addRuns", () => {
  it("counts runs per status and summarizes reported latencies", () => {
    const bucket = addRuns(emptyBucket(key), [
      { status: H, latencyMs: 120 },
      { status: D, latencyMs: null },
      { status: U, latencyMs: 30 },
      { status: H, latencyMs: 0 },
    ]);
    expect(bucket).toMatchObject({
      ...key,
      runs: 4,
      healthy: 2,
      degraded: 1,
      unhealthy: 1,
      latencyCount: 3,
      latencySum: 150,
      latencyMin: 0,
      latencyMax: 120,
    });
    expect(sketchCount(bucket.sketch)).toBe(3);
  });

  it("an empty bucket has no latency; runs without latency keep it so", () => {
    expect(emptyBucket(key)).toEqual({
      ...key,
      runs: 0,
      healthy: 0,
      degraded: 0,
      unhealthy: 0,
      latencyCount: 0,
      latencySum: 0,
      latencyMin: null,
      latencyMax: null,
      sketch: EMPTY_SKETCH,
    });
    const bucket = addRuns(emptyBucket(key), [{ status: U, latencyMs: null }]);
    expect(bucket).toEqual({ ...emptyBucket(key), runs: 1, unhealthy: 1 });
    expect(addRuns(emptyBucket(key), [])).toEqual(emptyBucket(key));
  });

  it("adds to what a bucket holds and leaves the input unchanged", () => {
    const first = bucketOf([10, 20]);
    const copy = structuredClone(first);
    const second = addRuns(first, [
      { status: D, latencyMs: 5 },
      { status: H, latencyMs: 40 },
    ]);
    expect(first).toEqual(copy);
    expect(second).toMatchObject({ runs: 4, healthy: 3, degraded: 1, latencyCount: 4, latencySum: 75, latencyMin: 5, latencyMax: 40 });
    expect(sketchCount(second.sketch)).toBe(4);
    // Adding in one go or in two steps gives the same bucket.
    expect(second).toEqual(
      addRuns(emptyBucket(key), [
        { status: H, latencyMs: 10 },
        { status: H, latencyMs: 20 },
        { status: D, latencyMs: 5 },
        { status: H, latencyMs: 40 },
      ]),
    );
  });

  it("accepts any iterable", () => {
    function* runs() {
      yield { status: H, latencyMs: 1 } as const;
      yield { status: U, latencyMs: 2 } as const;
    }
    expect(addRuns(emptyBucket(key), runs())).toMatchObject({ runs: 2, healthy: 1, unhealthy: 1, latencySum: 3 });
  });
});

describe("mergeBuckets", () => {
  const day: BucketKey = { ...key, granularity: "day", start: "2026-11-30T00:00:00.000Z" };

  it("adds counts and sums, combines min and max, and takes the given key", () => {
    const a = bucketOf([10, 50], [H, D]);
    const b = bucketOf([null, 5, 70], [U, H, H]);
    const none = bucketOf([null], [D]);
    const merged = mergeBuckets(day, [a, b, none]);
    expect(merged).toMatchObject({
      ...day,
      runs: 6,
      healthy: 3,
      degraded: 2,
      unhealthy: 1,
      latencyCount: 4,
      latencySum: 135,
      latencyMin: 5,
      latencyMax: 70,
    });
    expect(sketchCount(merged.sketch)).toBe(4);
    expect(summarizeLatency([merged])).toEqual(summarizeLatency([a, b, none]));
  });

  it("of nothing, or of buckets without latency, is empty of latency", () => {
    expect(mergeBuckets(day, [])).toEqual(emptyBucket(day));
    expect(mergeBuckets(day, [bucketOf([null, null], [H, U])])).toEqual({ ...emptyBucket(day), runs: 2, healthy: 1, unhealthy: 1 });
  });

  it("merges sketches bin by bin, not as a max of quantiles", () => {
    // 99 fast runs in one hour and one slow run in another: the day's p50 is fast.
    const fast = bucketOf(Array.from({ length: 99 }, () => 10));
    const slow = bucketOf([5_000]);
    const summary = summarizeLatency([mergeBuckets(day, [fast, slow])]);
    expectWithinRelative(summary?.p50 as number, 10);
    expectWithinRelative(summary?.p99 as number, 10);
    expect(summary?.max).toBe(5_000);
  });

  it("mergeSketches of nothing is empty", () => {
    expect(mergeSketches([])).toEqual(EMPTY_SKETCH);
  });
});

describe("summarizeLatency", () => {
  it("is null when no run reported a latency", () => {
    expect(summarizeLatency([])).toBeNull();
    expect(summarizeLatency([emptyBucket(key), bucketOf([null])])).toBeNull();
  });

  it("min, max and mean are exact", () => {
    const summary = summarizeLatency([bucketOf([3, 7.5]), bucketOf([null]), bucketOf([1_000.25])]);
    expect(summary).toMatchObject({ count: 3, min: 3, max: 1_000.25, mean: (3 + 7.5 + 1_000.25) / 3 });
  });

  it("falls back to the exact min when the buckets' sketches hold nothing", () => {
    // A bucket whose sketch was lost (counts and extremes only): quantiles clamp to [min, max].
    const bare: RunBucket = { ...bucketOf([5, 9]), sketch: EMPTY_SKETCH };
    expect(summarizeLatency([bare])).toEqual({ count: 2, min: 5, max: 9, mean: 7, p50: 5, p95: 5, p99: 5 });
  });

  it("a single latency is every quantile", () => {
    expect(summarizeLatency([bucketOf([42])])).toEqual({ count: 1, min: 42, max: 42, mean: 42, p50: 42, p95: 42, p99: 42 });
    expect(summarizeLatency([bucketOf([0])])).toEqual({ count: 1, min: 0, max: 0, mean: 0, p50: 0, p95: 0, p99: 0 });
  });

  it("quantiles are nearest-rank: p95 of six values is the largest", () => {
    const latencies = [1, 1, 1, 1, 1, 1_000];
    const summary = summarizeLatency([bucketOf(latencies)]);
    const sorted = [...latencies].sort((a, b) => a - b);
    expectWithinRelative(summary?.p50 as number, nearestRank(sorted, 50));
    expectWithinRelative(summary?.p95 as number, nearestRank(sorted, 95));
    expectWithinRelative(summary?.p99 as number, nearestRank(sorted, 99));
    expect(nearestRank(sorted, 95)).toBe(1_000);
  });

  it("nearest rank at exact multiples: p50 of 1..10 is 5, p95 of 1..20 is 19, p99 of 1..100 is 99", () => {
    const range = (n: number) => Array.from({ length: n }, (_, index) => index + 1);
    expectWithinRelative(summarizeLatency([bucketOf(range(10))])?.p50 as number, 5);
    expectWithinRelative(summarizeLatency([bucketOf(range(20))])?.p95 as number, 19);
    expectWithinRelative(summarizeLatency([bucketOf(range(100))])?.p99 as number, 99);
    expectWithinRelative(summarizeLatency([bucketOf(range(100))])?.p50 as number, 50);
  });

  const latency = fc.oneof(
    fc.integer({ min: 0, max: 600_000 }),
    fc.double({ min: 0.001, max: 600_000, noNaN: true, noDefaultInfinity: true }),
  );
  test.prop([fc.array(latency, { minLength: 1, maxLength: 400 }), fc.array(fc.nat(), { maxLength: 60 })], { numRuns: 200 })(
    "p50/p95/p99 are within 1% of the exact nearest-rank quantile after merging many buckets",
    (latencies, cuts) => {
      // Split the latencies into consecutive buckets at random cut points (some may be empty).
      const points = [...new Set(cuts.map((cut) => cut % (latencies.length + 1)))].sort((a, b) => a - b);
      const buckets: RunBucket[] = [];
      let from = 0;
      for (const point of [...points, latencies.length]) {
        buckets.push(bucketOf(latencies.slice(from, Math.max(from, point))));
        from = Math.max(from, point);
      }
      const sorted = [...latencies].sort((a, b) => a - b);
      const exactSum = latencies.reduce((total, value) => total + value, 0);
      for (const summary of [summarizeLatency(buckets), summarizeLatency([mergeBuckets(key, buckets)])]) {
        expect(summary).not.toBeNull();
        const value = summary as NonNullable<typeof summary>;
        expect(value.count).toBe(latencies.length);
        expect(value.min).toBe(sorted[0]);
        expect(value.max).toBe(sorted.at(-1));
        expect(value.mean).toBeCloseTo(exactSum / latencies.length, 6);
        expectWithinRelative(value.p50, nearestRank(sorted, 50));
        expectWithinRelative(value.p95, nearestRank(sorted, 95));
        expectWithinRelative(value.p99, nearestRank(sorted, 99));
        expect(value.min).toBeLessThanOrEqual(value.p50);
        expect(value.p50).toBeLessThanOrEqual(value.p95);
        expect(value.p95).toBeLessThanOrEqual(value.p99);
        expect(value.p99).toBeLessThanOrEqual(value.max);
      }
    },
  );
});

describe("latency sketch", () => {
  test.prop([fc.double({ min: 2 * MIN_INDEXABLE, max: 1e9, noNaN: true, noDefaultInfinity: true })])(
    "a value's bin reports it within the relative accuracy",
    (value) => {
      expectWithinRelative(sketchValue(sketchKey(value)), value);
      expect(sketchKey(value * 1.05)).toBeGreaterThan(sketchKey(value));
    },
  );

  it("counts values at or below MIN_INDEXABLE as zero and reports them as 0", () => {
    const sketch = addToSketch(EMPTY_SKETCH, [0, MIN_INDEXABLE, 5]);
    expect(sketch.zero).toBe(2);
    expect(sketchCount(sketch)).toBe(3);
    expect(sketchQuantile(sketch, 0.5)).toBe(0);
    expectWithinRelative(sketchQuantile(sketch, 0.99) as number, 5);
  });

  it("is plain data: adding leaves the input alone, merging adds bins", () => {
    const one = addToSketch(EMPTY_SKETCH, [10, 10, 200]);
    expect(EMPTY_SKETCH).toEqual({ zero: 0, bins: {} });
    const two = addToSketch(one, [10, 0]);
    expect(sketchCount(one)).toBe(3);
    expect(two.bins[String(sketchKey(10))]).toBe(3);
    expect(JSON.parse(JSON.stringify(two))).toEqual(two);
    const merged = mergeSketches([one, two, EMPTY_SKETCH]);
    expect(merged).toEqual({ zero: 1, bins: { [String(sketchKey(10))]: 5, [String(sketchKey(200))]: 2 } });
    expect(mergeSketches([one, two])).toEqual(addToSketch(EMPTY_SKETCH, [10, 10, 200, 10, 10, 200, 10, 0]));
  });

  it("sketchQuantile is nearest-rank and undefined for an empty sketch", () => {
    expect(sketchQuantile(EMPTY_SKETCH, 0.5)).toBeUndefined();
    const sketch = addToSketch(EMPTY_SKETCH, [1, 2, 3, 4, 100]);
    expectWithinRelative(sketchQuantile(sketch, 0) as number, 1);
    expectWithinRelative(sketchQuantile(sketch, 0.2) as number, 1);
    expectWithinRelative(sketchQuantile(sketch, 0.21) as number, 2);
    expectWithinRelative(sketchQuantile(sketch, 0.8) as number, 4);
    expectWithinRelative(sketchQuantile(sketch, 0.81) as number, 100);
    expectWithinRelative(sketchQuantile(sketch, 1) as number, 100);
  });
});

describe("successRate", () => {
  it("is healthy runs over runs, degraded counting as unsuccessful", () => {
    expect(successRate([bucketOf([null, null, null], [H, H, D]), bucketOf([1], [U])])).toBe(0.5);
    expect(successRate([bucketOf([null], [H])])).toBe(1);
    expect(successRate([bucketOf([null, null], [D, U])])).toBe(0);
  });

  it("is null without runs", () => {
    expect(successRate([])).toBeNull();
    expect(successRate([emptyBucket(key)])).toBeNull();
  });
});

describe("sparseBins", () => {
  it("is a new, empty, ordinary object that takes bins like {}", () => {
    const bins = sparseBins();
    expect(bins).toEqual({});
    expect(Object.keys(bins)).toEqual([]);
    expect(Object.getPrototypeOf(bins)).toBe(Object.prototype);
    expect(sparseBins()).not.toBe(bins);
    bins["276"] = 1;
    bins["-3"] = 2;
    bins["5"] = 3;
    expect(JSON.stringify(bins)).toBe(JSON.stringify({ "5": 3, "276": 1, "-3": 2 }));
    expect(sketchQuantile({ zero: 0, bins }, 1)).toBe(sketchQuantile({ zero: 0, bins: { "5": 3, "276": 1, "-3": 2 } }, 1));
  });
});
