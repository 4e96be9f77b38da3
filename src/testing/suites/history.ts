import type {
  Availability,
  HealthEngine,
  HealthEngineOptions,
  HealthStatus,
  HealthStore,
  HealthTransitionRecord,
  LatencySummary,
  RunBucket,
  RunInput,
  StoreTransaction,
  TopologyDoc,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { EVERY_RUN_COUNTS, topologyOf } from "../fixtures";
import type { Harness } from "../harness";
import { FailingStore, InjectedFailure, isWriteMethod, proxyMethods } from "../interceptors";
import { failure, ok } from "../support";
import type { SuiteContext } from "./context";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Midnight UTC: the scenarios' hours and days start on bucket boundaries. */
const T0 = Date.parse("2031-03-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

/** A clock the test moves by hand. */
class ManualClock {
  constructor(public ms: number) {}
  readonly now = (): Date => new Date(this.ms);
}

const RETENTION = { rawRetentionDays: 7, hourlyRetentionDays: 30, dailyRetentionDays: 365 } as const;

/** Engine options of this suite: a manual clock, and no flap detection (its events would only add noise to the logs read here). */
function engineOptions(clock: ManualClock, retention: HealthEngineOptions["retention"] = RETENTION) {
  return { clock: clock.now, flapping: { enabled: false }, retention };
}

function run(runId: string, systemId: string, environmentId: string | null, ms: number, status: HealthStatus, latencyMs?: number): RunInput {
  return { runId, systemId, checkId: "check", environmentId, status, timestamp: iso(ms), ...(latencyMs === undefined ? {} : { latencyMs }) };
}

/** The query of `availability`/`latency` over `[from, to)` (epoch ms). */
function range(entityId: string, from: number, to: number) {
  return { entityId, from: iso(from), to: iso(to) };
}

function expectShares(result: Availability, shares: { healthy: number; degraded: number; unhealthy: number }, what: string): void {
  expect(result.healthy, `${what}: healthy share`).toBeCloseTo(shares.healthy, 10);
  expect(result.degraded, `${what}: degraded share`).toBeCloseTo(shares.degraded, 10);
  expect(result.unhealthy, `${what}: unhealthy share`).toBeCloseTo(shares.unhealthy, 10);
  expect(result.availability, `${what}: availability is the healthy share (degraded is unavailable)`).toBe(result.healthy);
  expect(result.healthy + result.degraded + result.unhealthy, `${what}: shares sum to 1`).toBeCloseTo(1, 10);
}

/** The nearest-rank quantile: the value of rank ceil(q·n), 1-based. */
function nearestRank(sorted: readonly number[], quantile: number): number {
  return sorted[Math.max(1, Math.ceil(quantile * sorted.length)) - 1] as number;
}

/** Exact count, min and max, the mean up to rounding, and p50/p95/p99 within 1% relative of the exact nearest-rank value. */
function expectLatency(summary: LatencySummary | null, latencies: readonly number[], what: string): void {
  const sorted = [...latencies].sort((a, b) => a - b);
  expect(summary, `${what}: a summary`).not.toBeNull();
  const { count, min, max, mean, p50, p95, p99 } = summary as LatencySummary;
  expect({ count, min, max }, `${what}: count, min and max are exact`).toEqual({ count: sorted.length, min: sorted[0], max: sorted.at(-1) });
  const exactMean = sorted.reduce((total, value) => total + value, 0) / sorted.length;
  expect(Math.abs(mean - exactMean), `${what}: mean ${mean}, exact ${exactMean}`).toBeLessThanOrEqual(1e-9 * Math.max(1, exactMean));
  for (const [quantile, value] of [[0.5, p50], [0.95, p95], [0.99, p99]] as const) {
    const exact = nearestRank(sorted, quantile);
    expect(Math.abs(value - exact), `${what}: p${quantile * 100} = ${value}, exact nearest rank ${exact}`).toBeLessThanOrEqual(0.01 * exact + 1e-9);
  }
}

/** SPEC §9 history (transition log, availability, latency, buckets) and retention. */
export function describeHistory({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("history and buckets", () => {
    it(
      "listTransitions filters on occurredAt over [from, to), keeps the highest sequences under limit, always in sequence order; inStatusSince is when the newest transition (by sequence) took effect, later than its own time when it arrived late, null before any",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + DAY);
        const [writer, reader] = await harness.enginePair(engineOptions(clock));
        await ok(writer.applyTopology(topologyOf(["log"], ["prod"])), "applyTopology");
        expect(await ok(reader.inStatusSince("log::prod"), "inStatusSince before any run")).toBeNull();
        expect(await ok(reader.listTransitions({ entityId: "log::prod" }), "listTransitions before any run")).toEqual([]);
        // Accepted in this order; the last one arrives late (its time is earlier than its predecessors').
        const steps: [number, HealthStatus][] = [
          [1, "unhealthy"],
          [2, "healthy"],
          [4, "degraded"],
          [5, "healthy"],
          [3, "unhealthy"],
        ];
        for (const [index, [hour, status]] of steps.entries()) {
          await ok(writer.recordRun(run(`log-${index}`, "log", "prod", T0 + hour * HOUR, status)), `recordRun log-${index}`);
        }
        const view = (records: HealthTransitionRecord[]) =>
          records.map((record) => [record.entityId, record.sequence, record.previousStatus, record.newStatus, record.occurredAt]);
        for (const entityId of ["log::prod", "log"]) {
          const all = await ok(reader.listTransitions({ entityId }), `listTransitions(${entityId})`);
          expect(view(all), `${entityId}: the whole log in sequence order`).toEqual([
            [entityId, 1, "healthy", "unhealthy", iso(T0 + HOUR)],
            [entityId, 2, "unhealthy", "healthy", iso(T0 + 2 * HOUR)],
            [entityId, 3, "healthy", "degraded", iso(T0 + 4 * HOUR)],
            [entityId, 4, "degraded", "healthy", iso(T0 + 5 * HOUR)],
            [entityId, 5, "healthy", "unhealthy", iso(T0 + 3 * HOUR)],
          ]);
          const sequences = async (query: { from?: string | Date; to?: string | Date; limit?: number }) => {
            const read = (await ok(reader.listTransitions({ entityId, ...query }), `listTransitions(${JSON.stringify(query)})`)).map((record) => record.sequence);
            // The same query inside a transaction (how maintenance boundaries read the log) answers the same.
            const inTransaction = await harness.adapter.store.transaction({ lockKeys: [] }, (tx) =>
              tx.listTransitions({
                entityId,
                from: query.from === undefined ? undefined : new Date(query.from),
                to: query.to === undefined ? undefined : new Date(query.to),
                limit: query.limit,
              }),
            );
            expect(inTransaction.map((record) => record.sequence), `tx.listTransitions(${JSON.stringify(query)})`).toEqual(read);
            return read;
          };
          expect(await sequences({ from: iso(T0 + 2 * HOUR), to: iso(T0 + 4 * HOUR) }), "from inclusive, to exclusive").toEqual([2, 5]);
          expect(await sequences({ from: new Date(T0 + 3 * HOUR) }), "from alone (a Date)").toEqual([3, 4, 5]);
          expect(await sequences({ to: iso(T0 + 3 * HOUR) }), "to alone").toEqual([1, 2]);
          expect(await sequences({ limit: 2 }), "limit keeps the highest sequences").toEqual([4, 5]);
          expect(await sequences({ from: iso(T0 + 2 * HOUR), to: iso(T0 + 5 * HOUR), limit: 2 }), "limit applies after the range").toEqual([3, 5]);
          expect(await sequences({ from: iso(T0 + 6 * HOUR) }), "an empty range").toEqual([]);
          // The status is the newest transition's by sequence (unhealthy, from the late run at
          // 3:00); it took effect when that transition's predecessor did (5:00), as availability
          // walks the log.
          expect(await ok(reader.inStatusSince(entityId), `inStatusSince(${entityId})`), "when the newest transition by sequence took effect").toBe(
            iso(T0 + 5 * HOUR),
          );
          const effect = await ok(reader.availability(range(entityId, T0 + 3 * HOUR, T0 + 6 * HOUR)), `availability(${entityId})`);
          expectShares(effect, { healthy: 1 / 3, degraded: 1 / 3, unhealthy: 1 / 3 }, `${entityId}: unhealthy from 5:00 on, not from 3:00`);
        }
      },
      timeout,
    );

    it(
      "availability: a 3-hour outage in 24 hours is 0.875; degraded is unavailable; shares sum to 1; incidents, MTTR and MTBF; the status at from carries in; the window is clipped at now; success rate from buckets",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + 2 * DAY);
        const [writer, reader] = await harness.enginePair(engineOptions(clock));
        await ok(writer.applyTopology({ systems: [...topologyOf(["avail"], ["prod", "staging"]).systems, ...topologyOf(["blips"]).systems] }), "applyTopology");
        const runs: RunInput[] = [];
        for (let hour = 0; hour < 24; hour += 1) {
          const at = T0 + hour * HOUR;
          const outage = hour >= 10 && hour < 13;
          runs.push(run(`avail-prod-${hour}`, "avail", "prod", at, outage ? "unhealthy" : "healthy"));
          runs.push(run(`avail-staging-${hour}`, "avail", "staging", at, hour === 12 ? "unhealthy" : outage ? "degraded" : "healthy"));
          runs.push(run(`blips-${hour}`, "blips", null, at, hour === 2 || hour === 6 || hour === 7 ? "unhealthy" : "healthy"));
        }
        await ok(writer.recordRuns(runs), "recordRuns");
        const day = (entityId: string) => ok(reader.availability(range(entityId, T0, T0 + DAY)), `availability(${entityId})`);

        const prod = await day("avail::prod");
        expectShares(prod, { healthy: 0.875, degraded: 0, unhealthy: 0.125 }, "avail::prod");
        expect(prod.availability).toBeCloseTo(0.875, 10);
        expect(prod).toMatchObject({ incidents: 1, mttrMs: 3 * HOUR, mtbfMs: null });
        expect(prod.successRate, "21 of 24 runs healthy").toBeCloseTo(21 / 24, 12);

        const staging = await day("avail::staging");
        expectShares(staging, { healthy: 21 / 24, degraded: 2 / 24, unhealthy: 1 / 24 }, "avail::staging");
        expect(staging).toMatchObject({ incidents: 1, mttrMs: 3 * HOUR, mtbfMs: null });
        expect(staging.successRate).toBeCloseTo(21 / 24, 12);

        const rollup = await day("avail");
        expectShares(rollup, { healthy: 0.875, degraded: 0, unhealthy: 0.125 }, "avail");
        expect(rollup.successRate, "every slice's runs count in the rollup").toBeCloseTo(42 / 48, 12);

        const blips = await day("blips");
        expectShares(blips, { healthy: 21 / 24, degraded: 0, unhealthy: 3 / 24 }, "blips");
        expect(blips).toMatchObject({ incidents: 2, mttrMs: 1.5 * HOUR, mtbfMs: 3 * HOUR });

        const fromInside = await ok(reader.availability(range("avail::prod", T0 + 11 * HOUR, T0 + DAY)), "availability from inside the outage");
        expectShares(fromInside, { healthy: 11 / 13, degraded: 0, unhealthy: 2 / 13 }, "from inside the outage");
        expect(fromInside, "the incident began before the window but ended inside it").toMatchObject({ incidents: 0, mttrMs: 3 * HOUR });
        expect(fromInside.successRate, "hours 11..23").toBeCloseTo(11 / 13, 12);

        const before = await ok(reader.availability(range("avail::prod", T0 - DAY, T0)), "availability before any run");
        expectShares(before, { healthy: 1, degraded: 0, unhealthy: 0 }, "before any run");
        expect(before).toMatchObject({ incidents: 0, mttrMs: null, mtbfMs: null, successRate: null });

        clock.ms = T0 + 12 * HOUR;
        const clipped = await ok(reader.availability(range("avail::prod", T0, T0 + DAY)), "availability clipped at now");
        expectShares(clipped, { healthy: 10 / 12, degraded: 0, unhealthy: 2 / 12 }, "clipped at now");
        expect(clipped).toMatchObject({ incidents: 1, mttrMs: null });

        expect((await failure(reader.availability(range("ghost", T0, T0 + DAY)), "availability(ghost)")).type).toBe("not_found");
      },
      timeout,
    );

    it(
      "latency merges buckets across checks, environments, hours and a UTC day boundary: exact count, min, max and mean, p50/p95/p99 within 1% of the exact nearest-rank value; null without latencies",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + 3 * DAY);
        const [writer, reader] = await harness.enginePair(engineOptions(clock));
        const topology: TopologyDoc = {
          systems: [
            {
              systemId: "lat",
              environmentIds: ["prod", "staging"],
              checks: [
                { checkId: "check", thresholds: EVERY_RUN_COUNTS },
                { checkId: "probe", thresholds: EVERY_RUN_COUNTS },
              ],
            },
            ...topologyOf(["quiet"]).systems,
          ],
        };
        await ok(writer.applyTopology(topology), "applyTopology");
        const scale = [0, 0.37, 2.5, 14, 96, 730, 8800];
        const runs: RunInput[] = [];
        for (let index = 0; index < 400; index += 1) {
          // Every 4.5 minutes from 10:00 on the first day to 16:00 on the second.
          const at = T0 + 10 * HOUR + index * 4.5 * MINUTE;
          const environmentId = index % 2 === 0 ? "prod" : "staging";
          const latencyMs = index % 11 === 5 ? undefined : (scale[index % 7] as number) * (1 + ((index * 37) % 100) / 100);
          runs.push({ ...run(`lat-${index}`, "lat", environmentId, at, "healthy", latencyMs), checkId: index % 4 < 2 ? "check" : "probe" });
          if (index % 50 === 0) runs.push(run(`quiet-${index}`, "quiet", null, at, "healthy"));
        }
        for (let offset = 0; offset < runs.length; offset += 100) {
          await ok((offset % 200 === 0 ? writer : reader).recordRuns(runs.slice(offset, offset + 100)), `recordRuns from ${offset}`);
        }
        const latencies = (filter: (input: RunInput) => boolean) =>
          runs.filter((input) => input.systemId === "lat" && input.latencyMs !== undefined && filter(input)).map((input) => input.latencyMs as number);
        const time = (input: RunInput) => Date.parse(input.timestamp as string);

        expectLatency(await ok(reader.latency(range("lat", T0, T0 + 3 * DAY)), "latency(lat)"), latencies(() => true), "lat, every slice");
        expectLatency(
          await ok(reader.latency(range("lat::prod", T0, T0 + 3 * DAY)), "latency(lat::prod)"),
          latencies((input) => input.environmentId === "prod"),
          "lat::prod, both checks",
        );
        expectLatency(
          await ok(reader.latency(range("lat", T0 + DAY - 3 * HOUR, T0 + DAY + 4 * HOUR)), "latency across midnight"),
          latencies((input) => time(input) >= T0 + DAY - 3 * HOUR && time(input) < T0 + DAY + 4 * HOUR),
          "lat, across midnight UTC",
        );
        expect(await ok(reader.latency(range("lat", T0 - DAY, T0)), "latency before any run")).toBeNull();
        expect(await ok(reader.latency(range("quiet", T0, T0 + 3 * DAY)), "latency(quiet)"), "runs without latency give no summary").toBeNull();
        expect((await ok(reader.availability(range("quiet", T0, T0 + 3 * DAY)), "availability(quiet)")).successRate).toBe(1);
      },
      timeout,
    );

    it(
      "runs recorded at once into the same hourly bucket by several engines (and processes) are all counted (addToBuckets merges atomically)",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + DAY);
        const processes = [harness.adapter, harness.adapter, await harness.otherProcess(), await harness.otherProcess()];
        const engines = processes.map((ports) => harness.engine(ports, engineOptions(clock)));
        const [first] = engines as [HealthEngine];
        await ok(first.applyTopology(topologyOf(["busy"], ["prod"])), "applyTopology");
        const statuses: HealthStatus[] = ["healthy", "degraded", "unhealthy", "degraded", "unhealthy"];
        const runs = Array.from({ length: 60 }, (_, index) =>
          run(`busy-${index}`, "busy", "prod", T0 + 5 * HOUR + index * 50_000, statuses[index % statuses.length] as HealthStatus, index + 1),
        );
        // Single runs and batches of two, from every engine at once.
        const calls = runs.map((input, index) => {
          const engine = engines[index % engines.length] as HealthEngine;
          if (index % 3 === 2) return ok(engine.recordRuns([input]), `recordRuns ${input.runId as string}`);
          return ok(engine.recordRun(input), `recordRun ${input.runId as string}`);
        });
        await Promise.all(calls);
        const reader = engines.at(-1) as HealthEngine;
        for (const entityId of ["busy::prod", "busy"]) {
          const hour = range(entityId, T0 + 5 * HOUR, T0 + 6 * HOUR);
          const summary = await ok(reader.latency(hour), `latency(${entityId})`);
          expect(summary, `${entityId}: every run's latency counted once`).toMatchObject({ count: 60, min: 1, max: 60, mean: 30.5 });
          const { successRate } = await ok(reader.availability(hour), `availability(${entityId})`);
          expect(successRate, `${entityId}: 12 healthy runs of 60`).toBe(12 / 60);
        }
      },
      timeout,
    );

    it(
      "buckets are UTC hours: a run's hour follows its instant whatever offset its timestamp was written with, and hour boundaries are exact",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + 2 * DAY);
        const [writer, reader] = await harness.enginePair(engineOptions(clock));
        await ok(writer.applyTopology(topologyOf(["utc"])), "applyTopology");
        const stamped: [string, number][] = [
          ["2031-03-01T04:59:59.999Z", 1],
          ["2031-03-01T05:00:00.000Z", 2],
          ["2031-03-01T07:30:00+02:00", 3],
          ["2031-03-01T05:59:59.999Z", 4],
          ["2031-03-01T06:00:00.000Z", 5],
          ["2031-03-01T00:30:00-05:00", 6],
          ["2031-03-01T10:45:00+05:45", 7],
          ["2031-03-01T23:59:59.999Z", 8],
          ["2031-03-02T00:00:00.000Z", 9],
          ["2031-03-02T01:00:00+02:00", 10],
        ];
        await ok(
          writer.recordRuns(stamped.map(([timestamp, latencyMs], index) => ({ runId: `utc-${index}`, systemId: "utc", checkId: "check", status: "healthy", timestamp, latencyMs }))),
          "recordRuns",
        );
        const hour = async (from: string, to: string) => {
          const summary = await ok(reader.latency({ entityId: "utc", from, to }), `latency [${from}, ${to})`);
          return summary === null ? null : { count: summary.count, min: summary.min, max: summary.max };
        };
        expect(await hour("2031-03-01T04:00:00Z", "2031-03-01T05:00:00Z")).toEqual({ count: 1, min: 1, max: 1 });
        expect(await hour("2031-03-01T05:00:00Z", "2031-03-01T06:00:00Z"), "05:00Z, 05:30Z twice (written at +02:00 and -05:00), 05:00Z (written at +05:45), 05:59:59.999Z").toEqual({
          count: 5,
          min: 2,
          max: 7,
        });
        expect(await hour("2031-03-01T06:00:00Z", "2031-03-01T07:00:00Z")).toEqual({ count: 1, min: 5, max: 5 });
        expect(await hour("2031-03-01T23:00:00Z", "2031-03-02T00:00:00Z"), "23:59:59.999Z and 23:00Z (written as 01:00 the next day at +02:00)").toEqual({
          count: 2,
          min: 8,
          max: 10,
        });
        expect(await hour("2031-03-02T00:00:00Z", "2031-03-02T01:00:00Z")).toEqual({ count: 1, min: 9, max: 9 });
        expect(await hour("2031-03-01T07:00:00Z", "2031-03-01T23:00:00Z")).toBeNull();
      },
      timeout,
    );

    it(
      "a recordRuns that fails on its k-th write adds nothing to the buckets, for every k and whether the write was staged or not; its retry counts each run once",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + DAY);
        const engine = harness.engine(harness.adapter, engineOptions(clock));
        await ok(engine.applyTopology(topologyOf(["atom"], ["prod"])), "applyTopology");
        const hour = range("atom::prod", T0 + 5 * HOUR, T0 + 6 * HOUR);
        const counted: number[] = [];
        const failedOn = new Set<string>();
        let next = 0;
        for (const mode of ["before", "after"] as const) {
          for (let write = 1; write <= 50; write += 1) {
            const batch = (["unhealthy", "healthy", "degraded"] as const).map((status) => {
              next += 1;
              return run(`atom-${next}`, "atom", "prod", T0 + 5 * HOUR + next * 1000, status, next);
            });
            const failing = new FailingStore(harness.adapter.store, write, mode);
            const faulty = harness.engine({ ...harness.adapter, store: failing.store }, engineOptions(clock));
            const outcome = await faulty.recordRuns(batch).match(
              () => undefined,
              (error) => error,
            );
            if (failing.injected === undefined) {
              expect(outcome, "recordRuns without failure").toBeUndefined();
              counted.push(...batch.map((input) => input.latencyMs as number));
              break;
            }
            const where = `write #${write} (${failing.injected.method}, failing ${mode} the real call)`;
            failedOn.add(failing.injected.method);
            expect(outcome, `${where}: a StoreError`).toMatchObject({ type: "store" });
            expect(outcome?.cause, `${where}: caused by the injected failure`).toBe(failing.injected);
            const after = await ok(engine.latency(hour), "latency after the failure");
            expect(after?.count ?? 0, `${where}: nothing of the failed call is in the buckets`).toBe(counted.length);
            await ok(engine.recordRuns(batch), `${where}: retry`);
            counted.push(...batch.map((input) => input.latencyMs as number));
            const retried = await ok(engine.latency(hour), "latency after the retry");
            expect(retried, `${where}: the retry's runs are counted once`).toMatchObject({ count: counted.length, max: Math.max(...counted) });
          }
        }
        expect([...failedOn], "a failure was injected on the bucket write").toContain("addToBuckets");
        expect((await ok(engine.availability(hour), "availability")).successRate).toBeCloseTo(1 / 3, 12);
      },
      timeout,
    );
  });
}

/** The systems of a retention scenario (each with one environment, prod) and how many hours of runs they get from T0. */
interface KeepShape {
  readonly systems: readonly string[];
  readonly hours: number;
}

const KEEP: KeepShape = { systems: ["keep-a", "keep-b", "keep-c"], hours: 48 };
const entitiesOf = (shape: KeepShape) => shape.systems.flatMap((systemId) => [systemId, `${systemId}::prod`]);
/** The late run's time: its transition is keep-a::prod's newest by sequence, not by time. */
const lateRunAt = (shape: KeepShape) => T0 + (shape.hours - 6) * HOUR + 20 * MINUTE;

/**
 * One run an hour (at :10) from T0 on each system, with integer latencies (so that sums stay
 * exact through any number of merges) and three transitions every six hours; last, a late run on
 * keep-a that arrives after runs with later timestamps.
 */
function keepRuns(shape: KeepShape): RunInput[] {
  const runs: RunInput[] = [];
  shape.systems.forEach((systemId, offset) => {
    for (let hour = 0; hour < shape.hours; hour += 1) {
      const phase = (hour + offset) % 6;
      const status: HealthStatus = phase === 0 ? "unhealthy" : phase === 1 ? "degraded" : "healthy";
      runs.push(run(`${systemId}-${hour}`, systemId, "prod", T0 + hour * HOUR + 10 * MINUTE, status, 10 + hour + offset));
    }
  });
  runs.push(run("keep-a-late", "keep-a", "prod", lateRunAt(shape), "unhealthy", 7));
  return runs;
}

/** Day-aligned windows: rolling hours into their day changes nothing about them. */
const KEEP_WINDOWS = [
  [T0, T0 + DAY],
  [T0 + DAY, T0 + 2 * DAY],
] as const;

async function keepResults(engine: HealthEngine) {
  const results: Record<string, unknown> = {};
  for (const entityId of entitiesOf(KEEP)) {
    for (const [from, to] of KEEP_WINDOWS) {
      const query = range(entityId, from, to);
      results[`${entityId} [${query.from}, ${query.to})`] = {
        latency: await ok(engine.latency(query), `latency(${entityId})`),
        successRate: (await ok(engine.availability(query), `availability(${entityId})`)).successRate,
      };
    }
  }
  return results;
}

async function transitionLogs(engine: HealthEngine, entityIds: readonly string[]): Promise<Record<string, HealthTransitionRecord[]>> {
  const logs: Record<string, HealthTransitionRecord[]> = {};
  for (const entityId of entityIds) logs[entityId] = await ok(engine.listTransitions({ entityId }), `listTransitions(${entityId})`);
  return logs;
}

/** Every stored bucket of the systems, in a canonical order and spelling (the port promises neither). */
async function storedBuckets(store: HealthStore, systemIds: readonly string[]): Promise<RunBucket[]> {
  const all: RunBucket[] = [];
  for (const systemId of systemIds) {
    for (const granularity of ["hour", "day"] as const) {
      all.push(...(await store.queryBuckets({ systemId, granularity, from: new Date(0), to: new Date(T0 + 10_000 * DAY) })));
    }
  }
  const key = (bucket: RunBucket) => JSON.stringify([bucket.systemId, bucket.checkId, bucket.environmentId, bucket.granularity, Date.parse(bucket.start)]);
  return all.map((bucket) => ({ ...bucket, start: iso(Date.parse(bucket.start)) })).sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function knownRunIds(store: HealthStore, runIds: readonly string[]): Promise<string[]> {
  return store.transaction({ lockKeys: [] }, (tx) => tx.findRunIds(runIds)).then((found) => [...found].sort());
}

const NO_RETENTION_WORK = { runsPruned: 0, hourlyRolled: 0, dailyPruned: 0, transitionsPruned: 0 };

/**
 * A store that fails the `failOn`-th write (1-based) of everything a retention run writes, across
 * its transactions: each transaction's write methods, and the store's own `prune`. `"before"`
 * rejects without calling the real method; `"after"` calls it (staged in its transaction, or
 * committed for `prune`) and then rejects, as a crash between the write and its acknowledgement.
 */
class FailingWrites {
  readonly store: HealthStore;
  injected: InjectedFailure | undefined;
  writes = 0;

  constructor(real: HealthStore, failOn: number, mode: "before" | "after") {
    const failing =
      (method: string, original: (...args: unknown[]) => unknown) =>
      async (...args: unknown[]) => {
        this.writes += 1;
        if (this.writes !== failOn) return original(...args);
        this.injected = new InjectedFailure(failOn, method);
        if (mode === "after") await original(...args);
        throw this.injected;
      };
    this.store = proxyMethods(real, (method, original) => {
      if (method === "prune") return failing(method, original);
      if (method !== "transaction") return original;
      return (options: unknown, fn: unknown) =>
        original(options, (tx: StoreTransaction) =>
          (fn as (tx: StoreTransaction) => Promise<unknown>)(proxyMethods(tx, (txMethod, txOriginal) => (isWriteMethod(txMethod) ? failing(txMethod, txOriginal) : txOriginal))),
        );
    });
  }
}

/** SPEC §9 retention: roll hours into days, prune runs, daily buckets and transitions; idempotent and crash-safe. */
export function describeRetention({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;

  async function keepScenario(harness: Harness, clock: ManualClock, shape: KeepShape = KEEP, retention?: HealthEngineOptions["retention"]) {
    const [writer, reader] = await harness.enginePair(engineOptions(clock, retention));
    await ok(writer.applyTopology({ systems: [...topologyOf(shape.systems, ["prod"]).systems, ...topologyOf(["fresh"], ["prod"]).systems] }), "applyTopology");
    const runs = keepRuns(shape);
    await ok(writer.recordRuns(runs), "recordRuns");
    return { writer, reader, runIds: runs.map((input) => input.runId as string) };
  }

  describe("retention", () => {
    it(
      "runRetention rolls exactly the hours wholly past the hourly horizon into their UTC days without changing latency or success rate of day-aligned windows, prunes runs before the raw horizon (a pruned run id is accepted again), and a second run changes nothing",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + 3 * DAY);
        const { writer, reader, runIds } = await keepScenario(harness, clock);
        const before = await keepResults(reader);

        // The hourly horizon is NOW1 - 30 d = T0 + 36 h: hours 0..35 are wholly past it, hour 36 is not.
        const NOW1 = T0 + 31 * DAY + 12 * HOUR;
        clock.ms = NOW1;
        const rawHorizon = NOW1 - 7 * DAY;
        await ok(
          writer.recordRuns([run("edge-pruned", "keep-a", "prod", rawHorizon - 1, "healthy", 1), run("edge-kept", "keep-a", "prod", rawHorizon, "healthy", 1)]),
          "recordRuns at the raw horizon",
        );
        const first = await ok(reader.runRetention(), "runRetention");
        expect(first, "36 hours of 3 slices rolled; every run before the raw horizon pruned").toEqual({
          runsPruned: runIds.length + 1,
          hourlyRolled: 36 * KEEP.systems.length,
          dailyPruned: 0,
          transitionsPruned: 0,
        });
        expect(await keepResults(reader), "latency and success rate unchanged by the rollup").toEqual(before);
        expect(await knownRunIds(harness.adapter.store, [...runIds, "edge-pruned", "edge-kept"]), "only the run at the raw horizon is left").toEqual(["edge-kept"]);
        const hours = (await storedBuckets(harness.adapter.store, ["keep-b"])).map((bucket) => [bucket.granularity, bucket.start, bucket.runs]);
        expect(hours, "keep-b: the first day whole, the second holding its first 12 hours, its last 12 still hourly").toEqual([
          ["day", iso(T0), 24],
          ["day", iso(T0 + DAY), 12],
          ...Array.from({ length: 12 }, (_, index) => ["hour", iso(T0 + (36 + index) * HOUR), 1]),
        ]);

        expect(await ok(writer.runRetention(), "runRetention again"), "a second run does nothing").toEqual(NO_RETENTION_WORK);
        expect(await keepResults(reader)).toEqual(before);

        const again = await ok(writer.recordRun(run("keep-b-0", "keep-b", "prod", NOW1 - HOUR, "healthy")), "a pruned run id, recorded again");
        expect(again.duplicate, "a pruned run id is accepted as new").toBe(false);
        expect((await ok(writer.recordRun(run("edge-kept", "keep-a", "prod", NOW1 - HOUR, "healthy")), "a retained run id")).duplicate).toBe(true);

        clock.ms = NOW1 + DAY;
        expect(await ok(reader.runRetention(), "runRetention a day later"), "the other 12 hours of each slice roll into the day they belong to").toEqual({
          runsPruned: 1,
          hourlyRolled: 12 * KEEP.systems.length,
          dailyPruned: 0,
          transitionsPruned: 0,
        });
        expect(await keepResults(reader), "latency and success rate unchanged after the day was completed").toEqual(before);
      },
      timeout,
    );

    it(
      "runRetention prunes daily buckets and transitions past the daily horizon except each entity's newest (by sequence) and, when it arrived late, those from the one holding its effective time, and processed maintenance windows; the sequence continues; unprocessed windows still emit",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + 3 * DAY);
        const NOW = T0 + 400 * DAY;
        const { writer, reader, runIds } = await keepScenario(harness, clock);
        await ok(writer.recordRuns([run("fresh-1", "fresh", "prod", NOW - 2 * DAY, "unhealthy"), run("fresh-2", "fresh", "prod", NOW - 2 * DAY + HOUR, "healthy")]), "recent runs");
        const processed = await ok(writer.addMaintenance({ entityId: "keep-b::prod", start: iso(T0 + HOUR), end: iso(T0 + 2 * HOUR) }), "a window already over");
        expect(processed.events.map((event) => event.type)).toEqual(["health.maintenance_started", "health.maintenance_ended"]);
        const pending = await ok(writer.addMaintenance({ entityId: "keep-c", start: iso(T0 + 10 * DAY), end: iso(T0 + 10 * DAY + HOUR) }), "a window never processed");
        const entityIds = [...entitiesOf(KEEP), "fresh", "fresh::prod"];
        const logs = await transitionLogs(reader, entityIds);
        for (const entityId of entitiesOf(KEEP)) expect(logs[entityId]?.length, `${entityId} has transitions`).toBeGreaterThan(2);
        const lateOne = logs["keep-a::prod"]?.at(-1);
        expect(lateOne?.occurredAt, "keep-a::prod's newest transition is not its latest in time").toBe(iso(lateRunAt(KEEP)));

        // Every transition of these logs is past the horizon: what stays is the newest and, when it
        // arrived late, the transitions from the one holding the time it took effect (the latest
        // occurredAt, the last such on a tie).
        const keptOf = (log: readonly HealthTransitionRecord[]) => {
          let holder = 0;
          log.forEach((transition, index) => {
            if (Date.parse(transition.occurredAt) >= Date.parse(log[holder]?.occurredAt ?? "")) holder = index;
          });
          return log.slice(holder);
        };
        expect(keptOf(logs["keep-a::prod"] ?? []).length, "keep-a::prod keeps the late newest and the one before it in time").toBeGreaterThan(1);
        const sinceBefore: Record<string, string | null> = {};
        for (const entityId of entitiesOf(KEEP)) sinceBefore[entityId] = await ok(reader.inStatusSince(entityId), `inStatusSince(${entityId})`);
        const outcome = await ok(reader.runRetention({ now: iso(NOW) }), "runRetention");
        expect(outcome).toEqual({
          runsPruned: runIds.length,
          hourlyRolled: 48 * KEEP.systems.length,
          dailyPruned: 2 * KEEP.systems.length,
          transitionsPruned: entitiesOf(KEEP).reduce((total, entityId) => total + (logs[entityId]?.length ?? 0) - keptOf(logs[entityId] ?? []).length, 0),
        });
        const left = await transitionLogs(reader, entityIds);
        for (const entityId of entitiesOf(KEEP)) {
          expect(left[entityId], `${entityId}: the newest transition and what keeps its time`).toEqual(keptOf(logs[entityId] ?? []));
          expect(await ok(reader.inStatusSince(entityId), `inStatusSince(${entityId})`)).toBe(sinceBefore[entityId]);
        }
        expect(left["fresh"], "recent transitions are kept").toEqual(logs["fresh"]);
        expect(left["fresh::prod"]).toEqual(logs["fresh::prod"]);
        for (const [entityId, result] of Object.entries(await keepResults(reader))) {
          expect(result, `${entityId}: pruned daily buckets hold no more runs`).toEqual({ latency: null, successRate: null });
        }
        expect(await ok(writer.runRetention({ now: iso(NOW) }), "runRetention again")).toEqual(NO_RETENTION_WORK);

        const windows = await ok(reader.listMaintenance(), "listMaintenance");
        expect(windows.map((entry) => entry.maintenanceId), "the processed window is pruned, the unprocessed one kept").toEqual([pending.maintenanceId]);
        const late = await ok(writer.tick(iso(NOW)), "tick");
        expect(late.map((event) => [event.type, event.entityId]).sort()).toEqual([
          ["health.maintenance_ended", "keep-c"],
          ["health.maintenance_ended", "keep-c::prod"],
          ["health.maintenance_started", "keep-c"],
          ["health.maintenance_started", "keep-c::prod"],
        ]);
        const recovery = await ok(writer.recordRun(run("keep-a-recovery", "keep-a", "prod", NOW - HOUR, "healthy")), "recordRun after pruning");
        const event = recovery.events.find((candidate) => candidate.entityId === "keep-a::prod");
        expect(event, "the sequence continues after the log was pruned").toMatchObject({
          type: "health.transition",
          sequence: (lateOne?.sequence ?? 0) + 1,
          previousStatus: "unhealthy",
          newStatus: "healthy",
        });
      },
      timeout,
    );

    it(
      "runRetention keeps, of a log that crosses the transition horizon, the transition in effect at the horizon and every later one (a late one included), and of an old log what keeps its newest transition's effective time: availability from the horizon on, inStatusSince and the status chain are unchanged",
      async () => {
        const harness = await harnesses.open();
        const NOW = T0 + 400 * DAY;
        const H = NOW - RETENTION.dailyRetentionDays * DAY;
        const clock = new ManualClock(NOW);
        const [writer, reader] = await harness.enginePair(engineOptions(clock));
        const systems = ["edge-in-order", "edge-late", "edge-old", "edge-partial", "edge-old-late"];
        await ok(writer.applyTopology(topologyOf(systems, ["prod"])), "applyTopology");
        // Accepted in the order given, one system at a time.
        const plans: Record<string, [number, HealthStatus][]> = {
          // Down before the horizon, up after it: the first transition is the one in effect at H.
          "edge-in-order": [[H - 2 * HOUR, "unhealthy"], [H + HOUR, "healthy"]],
          // Degraded after H, then a late run from before H (takes effect at H + 1 h), then up.
          "edge-late": [[H + HOUR, "degraded"], [H - HOUR, "unhealthy"], [H + 3 * HOUR, "healthy"]],
          // Everything before H: only the newest stays.
          "edge-old": [[H - 5 * HOUR, "unhealthy"], [H - 4 * HOUR, "healthy"], [H - 3 * HOUR, "degraded"]],
          // Two transitions go, the one in effect at H (degraded at H - 2 h) stays.
          "edge-partial": [[H - 5 * HOUR, "unhealthy"], [H - 4 * HOUR, "healthy"], [H - 2 * HOUR, "degraded"], [H + HOUR, "healthy"]],
          // All before H, the newest late: it took effect at its predecessor's time, so both stay.
          "edge-old-late": [[H - 2 * HOUR, "unhealthy"], [H - 4 * HOUR, "healthy"]],
        };
        for (const [systemId, plan] of Object.entries(plans)) {
          for (const [index, [ms, status]] of plan.entries()) {
            await ok(writer.recordRun(run(`${systemId}-${index}`, systemId, "prod", ms, status)), `recordRun ${systemId}-${index}`);
          }
        }
        const entityIds = systems.flatMap((systemId) => [systemId, `${systemId}::prod`]);
        const logs = await transitionLogs(reader, entityIds);
        const window = (entityId: string) => range(entityId, H, H + 4 * HOUR);
        const before: Record<string, Availability> = {};
        const since: Record<string, string | null> = {};
        for (const entityId of entityIds) {
          before[entityId] = await ok(reader.availability(window(entityId)), `availability(${entityId})`);
          since[entityId] = await ok(reader.inStatusSince(entityId), `inStatusSince(${entityId})`);
        }
        expect(since["edge-old-late::prod"], "the late transition took effect at its predecessor's time").toBe(iso(H - 2 * HOUR));
        expectShares(before["edge-late::prod"] as Availability, { healthy: 0.5, degraded: 0, unhealthy: 0.5 }, "edge-late::prod before");

        const kept: Record<string, number> = { "edge-in-order": 2, "edge-late": 3, "edge-old": 1, "edge-partial": 2, "edge-old-late": 2 };
        const outcome = await ok(reader.runRetention({ now: iso(NOW) }), "runRetention");
        expect(outcome.transitionsPruned, "transitions pruned").toBe(2 * (0 + 0 + 2 + 2));
        const left = await transitionLogs(reader, entityIds);
        for (const entityId of entityIds) {
          const systemId = entityId.split("::")[0] as string;
          const log = logs[entityId] ?? [];
          expect(log, `${entityId}: one transition per run`).toHaveLength(plans[systemId]?.length ?? -1);
          expect(left[entityId], `${entityId}: the log from the transition in effect at the horizon on`).toEqual(log.slice(log.length - (kept[systemId] ?? 0)));
          const chain = left[entityId] ?? [];
          for (let index = 1; index < chain.length; index += 1) {
            expect(chain[index]?.previousStatus, `${entityId}: the chain is whole at ${index}`).toBe(chain[index - 1]?.newStatus);
          }
          expect(await ok(reader.availability(window(entityId)), `availability(${entityId}) after`), `${entityId}: availability from the horizon on`).toEqual(before[entityId]);
          expect(await ok(reader.inStatusSince(entityId), `inStatusSince(${entityId}) after`), `${entityId}: when the status began`).toBe(since[entityId]);
        }
        expect(await ok(writer.runRetention({ now: iso(NOW) }), "runRetention again")).toEqual(NO_RETENTION_WORK);
      },
      timeout,
    );

    it(
      "engines (processes when cross-process) running retention at the same time roll each hour once and prune each run once between them",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(T0 + 3 * DAY);
        const { writer, reader, runIds } = await keepScenario(harness, clock);
        const before = await keepResults(reader);
        clock.ms = T0 + 31 * DAY + 12 * HOUR;
        const engines = [writer, reader, harness.engine(await harness.otherProcess(), engineOptions(clock))];
        const outcomes = await Promise.all(engines.map((engine, index) => ok(engine.runRetention(), `runRetention on engine ${index}`)));
        const total = (field: "hourlyRolled" | "runsPruned") => outcomes.reduce((sum, outcome) => sum + outcome[field], 0);
        expect({ hourlyRolled: total("hourlyRolled"), runsPruned: total("runsPruned") }, "the work of one run, shared").toEqual({
          hourlyRolled: 36 * KEEP.systems.length,
          runsPruned: runIds.length,
        });
        expect(await keepResults(reader), "latency and success rate unchanged: no hour counted twice").toEqual(before);
        const hours = (await storedBuckets(harness.adapter.store, ["keep-b"])).map((bucket) => [bucket.granularity, bucket.start, bucket.runs]);
        expect(hours).toEqual([
          ["day", iso(T0), 24],
          ["day", iso(T0 + DAY), 12],
          ...Array.from({ length: 12 }, (_, index) => ["hour", iso(T0 + (36 + index) * HOUR), 1]),
        ]);
      },
      timeout,
    );

    it(
      "a failure injected on the k-th write of runRetention (any transaction, or the prune), staged or not, then a clean run: the outcome is that of one clean run, nothing counted twice",
      async () => {
        // Short horizons, so that one run rolls every hour, prunes the first day and the transitions in it.
        const retention = { rawRetentionDays: 1, hourlyRetentionDays: 7, dailyRetentionDays: 30 };
        const NOW = T0 + 30 * DAY + 12 * HOUR;
        const shape: KeepShape = { systems: ["keep-a", "keep-b"], hours: 26 };
        const observe = async (harness: Harness, reader: HealthEngine, runIds: readonly string[]) => ({
          buckets: await storedBuckets(harness.adapter.store, shape.systems),
          latency: await ok(reader.latency(range("keep-a", T0, T0 + 2 * DAY)), "latency"),
          transitions: await transitionLogs(reader, entitiesOf(shape)),
          runIds: await knownRunIds(harness.adapter.store, runIds),
        });

        const reference = await harnesses.open();
        const referenceClock = new ManualClock(NOW);
        const clean = await keepScenario(reference, referenceClock, shape, retention);
        const cleanOutcome = await ok(clean.reader.runRetention(), "runRetention without failure");
        expect(cleanOutcome.hourlyRolled).toBe(shape.hours * shape.systems.length);
        expect(cleanOutcome.dailyPruned).toBe(shape.systems.length);
        expect(cleanOutcome.transitionsPruned).toBeGreaterThan(0);
        const expected = await observe(reference, clean.reader, clean.runIds);
        expect(expected.buckets.length, "the scenario keeps some buckets").toBeGreaterThan(0);

        let injected = 0;
        for (const mode of ["before", "after"] as const) {
          for (let write = 1; write <= 50; write += 1) {
            const harness = await harnesses.open();
            const clock = new ManualClock(NOW);
            const { reader, runIds } = await keepScenario(harness, clock, shape, retention);
            const failing = new FailingWrites(harness.adapter.store, write, mode);
            const faulty = harness.engine({ ...harness.adapter, store: failing.store }, engineOptions(clock, retention));
            const outcome = await faulty.runRetention().match(
              () => undefined,
              (error) => error,
            );
            if (failing.injected === undefined) {
              expect(outcome, "runRetention without failure").toBeUndefined();
              await harness.close();
              break;
            }
            injected += 1;
            const where = `write #${write} (${failing.injected.method}, failing ${mode} the real call)`;
            expect(outcome, `${where}: a StoreError`).toMatchObject({ type: "store" });
            expect(outcome?.cause, `${where}: caused by the injected failure`).toBe(failing.injected);
            await ok(reader.runRetention(), `${where}: runRetention again`);
            expect(await observe(harness, reader, runIds), `${where}: after a clean run, the state of one clean run`).toEqual(expected);
            expect(await ok(reader.runRetention(), `${where}: a third run`), `${where}: then nothing is left to do`).toEqual(NO_RETENTION_WORK);
            await harness.close();
          }
        }
        expect(injected, "failures were injected in every roll transaction and in the prune").toBeGreaterThanOrEqual(2 * (2 * shape.systems.length + 1));
      },
      timeout,
    );
  });
}
