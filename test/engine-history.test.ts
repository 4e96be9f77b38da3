import { afterEach, describe, expect, it } from "vitest";
import {
  NotFoundError,
  ValidationError,
  computeAvailability,
  createHealthEngine,
  type HealthAdapter,
  type HealthEngine,
  type RunInput,
} from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";
import { proxyMethods } from "../src/testing/interceptors";

const DAY = 24 * 3_600_000;
const HOUR = 3_600_000;
const T0 = Date.parse("2026-11-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

const open: Array<{ engine: HealthEngine; adapter: HealthAdapter }> = [];
afterEach(async () => {
  for (const { engine, adapter } of open.splice(0)) {
    await engine.close();
    await adapter.close();
  }
});

function setup(nowMs: number) {
  const adapter = createMemoryAdapter();
  let now = nowMs;
  const engine = createHealthEngine({
    ...adapter,
    timers: false,
    flapping: { enabled: false },
    clock: () => new Date(now),
    retention: { rawRetentionDays: 7, hourlyRetentionDays: 30, dailyRetentionDays: 365 },
  });
  open.push({ engine, adapter });
  return { engine, adapter, setNow: (value: number) => (now = value) };
}

async function topology(engine: HealthEngine) {
  (
    await engine.applyTopology({
      systems: [
        {
          systemId: "api",
          environmentIds: ["prod", "staging"],
          checks: [{ checkId: "http", thresholds: { mode: "consecutive", healthy: { minSuccessCount: 1 }, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 1 } } }],
        },
      ],
    })
  )._unsafeUnwrap();
}

const run = (ms: number, status: RunInput["status"], extra: Partial<RunInput> = {}): RunInput => ({
  systemId: "api",
  checkId: "http",
  environmentId: "prod",
  status,
  timestamp: iso(ms),
  ...extra,
});

/**
 * The adapter's store with `listTransitions` that, after its next read, runs `between.next` (once)
 * before answering: something that commits between two of a caller's reads.
 */
function pausingAfterRead(adapter: HealthAdapter) {
  const between: { next?: () => Promise<void> } = {};
  const store = proxyMethods(adapter.store, (method, original) => {
    if (method !== "listTransitions") return original;
    return async (...args: unknown[]) => {
      const rows = (await original(...args)) as unknown[];
      const act = between.next;
      between.next = undefined;
      await act?.();
      return rows;
    };
  });
  return { store, between };
}

describe("availability", () => {
  it("is 87.5% for a 3-hour outage in a 24-hour window, whatever the check interval", async () => {
    for (const intervalMinutes of [1, 7, 60]) {
      const { engine } = setup(T0 + 2 * DAY);
      await topology(engine);
      const runs: RunInput[] = [];
      for (let t = T0; t < T0 + DAY; t += intervalMinutes * 60_000) {
        const down = t >= T0 + 10 * HOUR && t < T0 + 13 * HOUR;
        runs.push(run(t, down ? "unhealthy" : "healthy"));
      }
      // The outage must begin and end exactly on the hour for every interval.
      runs.push(run(T0 + 10 * HOUR, "unhealthy", { runId: "start" }), run(T0 + 13 * HOUR, "healthy", { runId: "end" }));
      runs.sort((a, b) => Date.parse(a.timestamp as string) - Date.parse(b.timestamp as string));
      (await engine.recordRuns(runs))._unsafeUnwrap();
      const result = (await engine.availability({ entityId: "api::prod", from: iso(T0), to: iso(T0 + DAY) }))._unsafeUnwrap();
      expect(result.availability).toBeCloseTo(0.875, 10);
      expect(result.unhealthy).toBeCloseTo(0.125, 10);
      expect(result.incidents).toBe(1);
      expect(result.mttrMs).toBe(3 * HOUR);
      expect(result.mtbfMs).toBeNull();
      expect(result.successRate).toBeGreaterThan(0.8);
      expect(result.successRate).toBeLessThan(0.9);
    }
  });

  it("clips the window at now and counts degraded as unavailable", async () => {
    const { engine } = setup(T0 + 4 * HOUR);
    await topology(engine);
    (await engine.recordRuns([run(T0 + HOUR, "degraded"), run(T0 + 2 * HOUR, "healthy")]))._unsafeUnwrap();
    const result = (await engine.availability({ entityId: "api::prod", from: iso(T0), to: iso(T0 + DAY) }))._unsafeUnwrap();
    expect(result.degraded).toBeCloseTo(0.25, 10);
    expect(result.availability).toBeCloseTo(0.75, 10);
    expect(result.healthy + result.degraded + result.unhealthy).toBeCloseTo(1, 10);
  });

  it("walks the log in sequence order: a late run after a transition past the window's end takes effect after it, not inside the window", async () => {
    const { engine } = setup(T0 + DAY);
    await topology(engine);
    // Accepted in this order: down at 1:00, up at 5:00, then a late run from 3:00 (degraded).
    (await engine.recordRuns([run(T0 + HOUR, "unhealthy"), run(T0 + 5 * HOUR, "healthy"), run(T0 + 3 * HOUR, "degraded")]))._unsafeUnwrap();
    const log = (await engine.listTransitions({ entityId: "api::prod" }))._unsafeUnwrap();
    expect(log.map((transition) => [transition.previousStatus, transition.newStatus])).toEqual([
      ["healthy", "unhealthy"],
      ["unhealthy", "healthy"],
      ["healthy", "degraded"],
    ]);
    // In [0:00, 4:00) the entity was unhealthy from 1:00 on: the recovery at 5:00 comes first in
    // the log, so the late degraded transition takes effect at 5:00 (outside the window).
    const result = (await engine.availability({ entityId: "api::prod", from: iso(T0), to: iso(T0 + 4 * HOUR) }))._unsafeUnwrap();
    expect([result.healthy, result.degraded, result.unhealthy]).toEqual([1 / 4, 0, 3 / 4]);
    expect(result.incidents).toBe(1);
    // The same window read with `to` past the recovery agrees with the log: unhealthy 1:00–5:00,
    // then degraded (the late transition, from its predecessor's time).
    const longer = (await engine.availability({ entityId: "api::prod", from: iso(T0), to: iso(T0 + 8 * HOUR) }))._unsafeUnwrap();
    expect([longer.healthy, longer.degraded, longer.unhealthy]).toEqual([1 / 8, 3 / 8, 4 / 8]);
  });

  it("reads the log since `from` and the incident open at `from`, not the history before it, and answers as over the whole log", async () => {
    const adapter = createMemoryAdapter();
    let rowsRead = 0;
    const store = proxyMethods(adapter.store, (method, original) => {
      if (method !== "listTransitions") return original;
      return async (...args: unknown[]) => {
        const rows = (await original(...args)) as unknown[];
        rowsRead += rows.length;
        return rows;
      };
    });
    const engine = createHealthEngine({ ...adapter, store, timers: false, flapping: { enabled: false }, clock: () => new Date(T0 + 2 * DAY) });
    open.push({ engine, adapter });
    await topology(engine);
    // 400 transitions a minute apart (down, up, …), then an outage from 8:00 to 9:00.
    const flaps = Array.from({ length: 400 }, (_, minute) => run(T0 + minute * 60_000, minute % 2 === 0 ? "unhealthy" : "healthy"));
    (await engine.recordRuns([...flaps, run(T0 + 8 * HOUR, "unhealthy"), run(T0 + 9 * HOUR, "healthy")]))._unsafeUnwrap();
    const log = (await engine.listTransitions({ entityId: "api::prod" }))._unsafeUnwrap();
    expect(log).toHaveLength(402);
    rowsRead = 0;
    // From 8:30, inside the outage: its start (8:00) comes from before the window.
    const window = { from: new Date(T0 + 8.5 * HOUR), to: new Date(T0 + 10 * HOUR), now: new Date(T0 + 2 * DAY) };
    const result = (await engine.availability({ entityId: "api::prod", from: iso(T0 + 8.5 * HOUR), to: iso(T0 + 10 * HOUR) }))._unsafeUnwrap();
    expect(rowsRead).toBeLessThanOrEqual(20);
    expect(result).toEqual(computeAvailability({ transitions: log, ...window, successRate: result.successRate }));
    expect(result.mttrMs).toBe(HOUR);
    expect(result.unhealthy).toBeCloseTo(1 / 3, 10);
  });

  it("answers from one state of the log when runs commit between its reads", async () => {
    const adapter = createMemoryAdapter();
    const clock = () => new Date(T0 + HOUR);
    const options = { timers: false, flapping: { enabled: false }, clock } as const;
    const writer = createHealthEngine({ ...adapter, ...options });
    const { store, between } = pausingAfterRead(adapter);
    const reader = createHealthEngine({ ...adapter, store, ...options });
    open.push({ engine: writer, adapter }, { engine: reader, adapter });
    await topology(writer);
    const minute = (value: number) => T0 + value * 60_000;
    (await writer.recordRuns([run(minute(0), "degraded"), run(minute(10), "healthy"), run(minute(30), "unhealthy")]))._unsafeUnwrap();
    const before = (await writer.listTransitions({ entityId: "api::prod" }))._unsafeUnwrap();
    // After availability's first read: a recovery at 0:40, then a late degraded run from 0:15.
    between.next = async () => void (await writer.recordRuns([run(minute(40), "healthy"), run(minute(15), "degraded")]))._unsafeUnwrap();
    const window = { from: new Date(minute(20)), to: new Date(minute(60)), now: clock() };
    const result = (await reader.availability({ entityId: "api::prod", from: iso(minute(20)), to: iso(minute(60)) }))._unsafeUnwrap();
    expect(between.next, "the runs were written between the reads").toBeUndefined();
    const after = (await writer.listTransitions({ entityId: "api::prod" }))._unsafeUnwrap();
    expect(after.length).toBeGreaterThan(before.length);
    // The log as it was when the entity was read: unhealthy from 0:30 on.
    expect(result).toEqual(computeAvailability({ transitions: before, ...window, successRate: result.successRate }));
    expect(result.unhealthy).toBeCloseTo(3 / 4, 10);
  });

  it("answers as the log before or after a retention prune that runs between its reads", async () => {
    const adapter = createMemoryAdapter();
    const clock = () => new Date(T0 + DAY);
    const { store, between } = pausingAfterRead(adapter);
    const engine = createHealthEngine({ ...adapter, store, timers: false, flapping: { enabled: false }, clock });
    open.push({ engine, adapter });
    await topology(engine);
    const minute = (value: number) => T0 + value * 60_000;
    // Degraded at 0:10, a late healthy run from 0:00 (in effect from 0:10), degraded at 0:20.
    (await engine.recordRuns([run(minute(10), "degraded"), run(minute(0), "healthy"), run(minute(20), "degraded")]))._unsafeUnwrap();
    const query = { entityId: "api::prod", from: iso(minute(10)), to: iso(minute(30)) };
    const quiet = (await engine.availability(query))._unsafeUnwrap();
    expect([quiet.healthy, quiet.degraded]).toEqual([0.5, 0.5]);
    // After the first read, a prune up to 0:25 deletes the first two transitions.
    between.next = async () => void (await adapter.store.prune({ runsBefore: new Date(0), dailyBefore: new Date(0), transitionsBefore: new Date(minute(25)) }));
    const raced = (await engine.availability(query))._unsafeUnwrap();
    expect(between.next).toBeUndefined();
    expect((await engine.listTransitions({ entityId: "api::prod" }))._unsafeUnwrap().map((transition) => transition.sequence)).toEqual([3]);
    // The log after the prune: one incident from 0:20 (its predecessors are gone), the same shares.
    const settled = (await engine.availability(query))._unsafeUnwrap();
    expect([settled.healthy, settled.degraded, settled.incidents]).toEqual([0.5, 0.5, 1]);
    expect(raced).toEqual(settled);
  });

  it("rejects empty, inverted and future windows, unknown and malformed entities", async () => {
    const { engine } = setup(T0);
    await topology(engine);
    expect((await engine.availability({ entityId: "api", from: iso(T0), to: iso(T0) }))._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
    expect((await engine.availability({ entityId: "api", from: iso(T0 + HOUR), to: iso(T0) }))._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
    expect((await engine.availability({ entityId: "api", from: iso(T0 + HOUR), to: iso(T0 + DAY) }))._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
    expect((await engine.availability({ entityId: "ghost", from: iso(T0 - DAY), to: iso(T0) }))._unsafeUnwrapErr()).toBeInstanceOf(NotFoundError);
    expect((await engine.availability({ entityId: "a::b::c", from: iso(T0 - DAY), to: iso(T0) }))._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
  });
});

describe("latency", () => {
  it("merges buckets across slices and hours into exact count/min/max/mean and sketch quantiles", async () => {
    const { engine } = setup(T0 + DAY);
    await topology(engine);
    const latencies: number[] = [];
    const runs: RunInput[] = [];
    for (let index = 0; index < 600; index += 1) {
      const latencyMs = 5 + ((index * 7919) % 1000) / 3;
      latencies.push(latencyMs);
      runs.push(run(T0 + index * 60_000, "healthy", { latencyMs, environmentId: index % 2 === 0 ? "prod" : "staging" }));
    }
    (await engine.recordRuns(runs))._unsafeUnwrap();
    const summary = (await engine.latency({ entityId: "api", from: iso(T0), to: iso(T0 + DAY) }))._unsafeUnwrap();
    const sorted = [...latencies].sort((a, b) => a - b);
    const exact = (q: number) => sorted[Math.ceil(q * sorted.length) - 1] as number;
    expect(summary).not.toBeNull();
    expect(summary?.count).toBe(600);
    expect(summary?.min).toBe(sorted[0]);
    expect(summary?.max).toBe(sorted[599]);
    expect(summary?.mean).toBeCloseTo(latencies.reduce((a, b) => a + b, 0) / 600, 8);
    for (const [q, value] of [[0.5, summary?.p50], [0.95, summary?.p95], [0.99, summary?.p99]] as const) {
      expect(Math.abs((value as number) - exact(q)) / exact(q)).toBeLessThanOrEqual(0.011);
    }
    const prodOnly = (await engine.latency({ entityId: "api::prod", from: iso(T0), to: iso(T0 + DAY) }))._unsafeUnwrap();
    expect(prodOnly?.count).toBe(300);
    expect((await engine.latency({ entityId: "api", from: iso(T0 - DAY), to: iso(T0) }))._unsafeUnwrap()).toBeNull();
  });
});

describe("retention", () => {
  it("rolls hours into days without losing or double-counting, prunes, and is idempotent", async () => {
    const { engine, setNow } = setup(T0);
    await topology(engine);
    const runs: RunInput[] = [];
    for (let hour = 0; hour < 48; hour += 1) {
      for (let k = 0; k < 3; k += 1) runs.push(run(T0 + hour * HOUR + k * 60_000, k === 2 ? "unhealthy" : "healthy", { latencyMs: 10 + hour }));
    }
    (await engine.recordRuns(runs))._unsafeUnwrap();
    const window = { entityId: "api::prod", from: iso(T0), to: iso(T0 + 2 * DAY) };
    setNow(T0 + 2 * DAY + HOUR);
    const before = (await engine.latency(window))._unsafeUnwrap();
    const rateBefore = (await engine.availability(window))._unsafeUnwrap().successRate;

    // 31.5 days after the last run: every hour of the first day and most of the second is past the 30-day horizon.
    setNow(T0 + 31 * DAY + 12 * HOUR);
    const first = (await engine.runRetention())._unsafeUnwrap();
    expect(first.hourlyRolled).toBeGreaterThan(24);
    expect(first.runsPruned).toBe(144);
    expect((await engine.latency(window))._unsafeUnwrap()).toEqual(before);
    expect((await engine.availability(window))._unsafeUnwrap().successRate).toBe(rateBefore);

    const second = (await engine.runRetention())._unsafeUnwrap();
    expect(second).toEqual({ runsPruned: 0, hourlyRolled: 0, dailyPruned: 0, transitionsPruned: 0 });
    expect((await engine.latency(window))._unsafeUnwrap()).toEqual(before);

    // A year later the daily buckets and old transitions go, but each entity's newest transition stays.
    const third = (await engine.runRetention({ now: iso(T0 + 400 * DAY) }))._unsafeUnwrap();
    expect(third.hourlyRolled).toBeGreaterThan(0);
    expect(third.dailyPruned).toBeGreaterThan(0);
    expect(third.transitionsPruned).toBeGreaterThan(0);
    const left = (await engine.listTransitions({ entityId: "api::prod" }))._unsafeUnwrap();
    expect(left).toHaveLength(1);
    expect((await engine.inStatusSince("api::prod"))._unsafeUnwrap()).toBe(left[0]?.occurredAt);
  });

  it("reads an entity's hours and days as one state while retention moves hours into days (never counts an hour twice or not at all)", async () => {
    const { engine, adapter, setNow } = setup(T0);
    await topology(engine);
    const runs: RunInput[] = [];
    for (let hour = 0; hour < 48; hour += 1) runs.push(run(T0 + hour * HOUR, "healthy", { latencyMs: 10 }));
    (await engine.recordRuns(runs))._unsafeUnwrap();
    const window = { entityId: "api::prod", from: iso(T0), to: iso(T0 + 2 * DAY) };
    setNow(T0 + 31 * DAY + 12 * HOUR);
    // The retention run commits its move of hours into days in the middle of the read: between the
    // read of the hours and the read of the days, whichever comes second.
    const store = adapter.store;
    const queryBuckets = store.queryBuckets.bind(store);
    let reads: string[] = [];
    let rolled = false;
    store.queryBuckets = async (query) => {
      reads.push(query.granularity);
      if (!rolled && reads.includes("hour") && reads.includes("day")) {
        rolled = true;
        expect((await engine.runRetention())._unsafeUnwrap().hourlyRolled).toBeGreaterThan(24);
      }
      return queryBuckets(query);
    };
    expect((await engine.latency(window))._unsafeUnwrap()?.count).toBe(48);
    expect(rolled).toBe(true);
    // Read again after the move had committed: the hours and days first read disagreed.
    expect(reads.length).toBeGreaterThan(3);
    reads = [];
    expect((await engine.availability(window))._unsafeUnwrap().successRate).toBe(1);
    expect((await engine.latency(window))._unsafeUnwrap()?.count).toBe(48);
    expect(reads).toEqual(["day", "hour", "day", "day", "hour", "day"]);
  });

  it("fails a read whose days never read the same twice with a StoreError, rather than answer from a torn state", async () => {
    const { engine, adapter } = setup(T0 + 2 * DAY);
    await topology(engine);
    (await engine.recordRuns([run(T0, "healthy", { latencyMs: 10 })]))._unsafeUnwrap();
    const store = adapter.store;
    const queryBuckets = store.queryBuckets.bind(store);
    let dayReads = 0;
    // Every read of the days finds one more run in a day than the read before.
    store.queryBuckets = async (query) => {
      const buckets = await queryBuckets(query);
      if (query.granularity !== "day") return buckets;
      dayReads += 1;
      return [{ ...buckets[0], ...{ systemId: "api", checkId: "http", environmentId: "prod", granularity: "day" as const, start: iso(T0), runs: dayReads } } as (typeof buckets)[number]];
    };
    const result = await engine.latency({ entityId: "api::prod", from: iso(T0), to: iso(T0 + DAY) });
    const error = result._unsafeUnwrapErr();
    expect(error.name).toBe("StoreError");
    expect(String((error as { cause?: unknown }).cause)).toMatch(/kept changing while read \(10 attempts\)/u);
    // One read of the days before the first attempt's hours, then one after the hours of each attempt.
    expect(dayReads).toBe(11);
  });

  it("rejects an invalid retention configuration", () => {
    const adapter = createMemoryAdapter();
    expect(() => createHealthEngine({ ...adapter, retention: { rawRetentionDays: 30, hourlyRetentionDays: 30 } })).toThrow(ValidationError);
  });
});
