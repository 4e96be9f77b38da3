import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  ValidationError,
  createHealthEngine,
  encodeHealthEntityId,
  replay,
  type HealthEvent,
  type ReplayResult,
  type RunInput,
  type TopologyDoc,
} from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";

const NOW = "2026-11-30T00:00:00.000Z";
const ENVIRONMENTS = ["prod", "staging", "dev"];

const thresholdsArb = fc.oneof(
  fc.constant(undefined),
  fc
    .record({ degraded: fc.integer({ min: 1, max: 4 }), extra: fc.integer({ min: 0, max: 3 }), healthy: fc.integer({ min: 1, max: 3 }) })
    .map(({ degraded, extra, healthy }) => ({
      mode: "consecutive" as const,
      healthy: { minSuccessCount: healthy },
      degraded: { minFailureCount: degraded },
      unhealthy: { minFailureCount: degraded + extra },
    })),
  fc
    .record({ windowSize: fc.integer({ min: 3, max: 8 }), degraded: fc.integer({ min: 1, max: 3 }), extra: fc.integer({ min: 0, max: 3 }) })
    .map(({ windowSize, degraded, extra }) => ({
      mode: "window" as const,
      windowSize,
      degraded: { minFailureCount: Math.min(degraded, windowSize) },
      unhealthy: { minFailureCount: Math.min(degraded + extra, windowSize) },
    })),
);

/**
 * No override, `null`, or any valid override against the default engine settings (low 20, high 30):
 * some more sensitive than the default, so that flaps start and stop within a few dozen runs.
 */
const flappingArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant(null) },
  {
    weight: 3,
    arbitrary: fc
      .record({ enabled: fc.boolean(), low: fc.integer({ min: 0, max: 25 }), high: fc.integer({ min: 5, max: 40 }) }, { requiredKeys: [] })
      .filter((override) => (override.low ?? 20) < (override.high ?? 30)),
  },
);

const checkArb = (checkId: string) =>
  fc.record(
    {
      checkId: fc.constant(checkId),
      thresholds: thresholdsArb,
      environmentIds: fc.oneof(fc.constant(null), fc.subarray(["dev", "prod", "staging", "gone"])),
      enabled: fc.boolean(),
      paused: fc.boolean(),
      flapping: flappingArb,
    },
    { requiredKeys: ["checkId"] },
  );

const topologyArb: fc.Arbitrary<TopologyDoc> = fc
  .uniqueArray(fc.constantFrom("api", "db", "queue"), { minLength: 1, maxLength: 2 })
  .chain((systemIds) =>
    fc.tuple(
      ...systemIds.map((systemId) =>
        fc.record({
          systemId: fc.constant(systemId),
          environmentIds: fc.shuffledSubarray(ENVIRONMENTS),
          checks: fc
            .uniqueArray(fc.constantFrom("http", "ping", "tls"), { maxLength: 3 })
            .chain((checkIds) => fc.tuple(...checkIds.map(checkArb))),
        }),
      ),
    ),
  )
  .map((systems) => ({
    systems: systems.map((system) => ({
      ...system,
      checks: system.checks.map((check) => Object.fromEntries(Object.entries(check).filter(([, value]) => value !== undefined)) as typeof check),
    })),
  }));

type Slice = { systemId: string; checkId: string; environmentId: string | null };

/** Every slice the topology accepts runs for, so most generated runs are valid and streaks form. */
function validSlices(topology: TopologyDoc): Slice[] {
  return topology.systems.flatMap((system) =>
    system.checks.flatMap((check): Slice[] => {
      const selector = check.environmentIds ?? null;
      const effective = selector === null ? system.environmentIds : system.environmentIds.filter((env) => selector.includes(env));
      return effective.length === 0
        ? [{ systemId: system.systemId, checkId: check.checkId, environmentId: null }]
        : effective.map((environmentId) => ({ systemId: system.systemId, checkId: check.checkId, environmentId }));
    }),
  );
}

const invalidSliceArb: fc.Arbitrary<Slice> = fc.record({
  systemId: fc.constantFrom("api", "db", "queue", "ghost"),
  checkId: fc.constantFrom("http", "ping", "tls"),
  environmentId: fc.constantFrom<string | null>("prod", "staging", "dev", null),
});

const scenarioArb = topologyArb.chain((topology) => {
  const slices = validSlices(topology);
  const sliceArb = slices.length === 0 ? invalidSliceArb : fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...slices) }, { weight: 1, arbitrary: invalidSliceArb });
  const runArb = fc.record({
    slice: sliceArb,
    runId: fc.integer({ min: 0, max: 80 }).map((n) => `run-${n}`),
    status: fc.constantFrom("healthy", "healthy", "degraded", "unhealthy"),
  });
  return fc.tuple(fc.constant(topology), fc.array(runArb, { maxLength: 60 }));
});

/** Replays `rawRuns` (timestamps one second apart) and expects the engine on the memory adapter to give the same output. */
async function expectEngineAgrees(topology: TopologyDoc, rawRuns: readonly { slice: Slice; runId: string; status: RunInput["status"] }[]): Promise<ReplayResult> {
  const runs: RunInput[] = rawRuns.map(({ slice, runId, status }, index) => ({
    ...slice,
    runId,
    status,
    timestamp: new Date(Date.parse(NOW) + index * 1000).toISOString(),
  }));
  const expected = replay({ topology, runs, options: { now: NOW } });

  const adapter = createMemoryAdapter();
  const engine = createHealthEngine({ ...adapter, timers: false, clock: () => new Date(NOW) });
  try {
    const events: HealthEvent[] = [...(await engine.applyTopology(topology))._unsafeUnwrap().events];
    const rejected: number[] = [];
    const duplicates: number[] = [];
    for (const [index, run] of runs.entries()) {
      const outcome = await engine.recordRun(run);
      if (outcome.isErr()) {
        expect(outcome.error).toBeInstanceOf(ValidationError);
        rejected.push(index);
        continue;
      }
      if (outcome.value.duplicate) duplicates.push(index);
      events.push(...outcome.value.events);
    }
    expect(events).toEqual(expected.transitions);
    expect(rejected).toEqual(expected.rejected.map((rejection) => rejection.index));
    expect(duplicates).toEqual(expected.duplicates);
    const ids = ["api", "db", "queue", "ghost"].flatMap((systemId) =>
      [null, ...ENVIRONMENTS].map((environmentId) => encodeHealthEntityId({ systemId, environmentId })._unsafeUnwrap()),
    );
    expect((await engine.getManyHealth(ids))._unsafeUnwrap()).toEqual(expected.states);
  } finally {
    await engine.close();
    await adapter.close();
  }
  return expected;
}

/**
 * One system, checks whose slices follow every run, statuses that flip often, and flap overrides:
 * most scenarios flap, under the engine's settings or an override.
 */
const flapScenarioArb = fc
  .record({
    environmentIds: fc.shuffledSubarray(["prod", "staging"]),
    checks: fc.uniqueArray(fc.constantFrom("http", "ping", "tls"), { minLength: 1, maxLength: 3 }).chain((checkIds) =>
      fc.tuple(
        ...checkIds.map((checkId) =>
          fc.record(
            {
              checkId: fc.constant(checkId),
              environmentIds: fc.oneof(fc.constant(null), fc.subarray(["prod", "staging"])),
              paused: fc.boolean(),
              flapping: flappingArb,
            },
            { requiredKeys: ["checkId"] },
          ),
        ),
      ),
    ),
  })
  .map(({ environmentIds, checks }): TopologyDoc => ({
    systems: [
      {
        systemId: "api",
        environmentIds,
        checks: checks.map((check) => ({
          ...(Object.fromEntries(Object.entries(check).filter(([, value]) => value !== undefined)) as typeof check),
          thresholds: { mode: "consecutive", degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 1 } },
        })),
      },
    ],
  }))
  .chain((topology) => {
    const slices = validSlices(topology);
    const runArb = fc.record({
      slice: fc.constantFrom(...slices),
      runId: fc.integer({ min: 0, max: 200 }).map((n) => `run-${n}`),
      status: fc.constantFrom<RunInput["status"]>("healthy", "unhealthy", "healthy", "degraded"),
    });
    return fc.tuple(fc.constant(topology), fc.array(runArb, { minLength: 30, maxLength: 60 }));
  });

const flapScenariosSeen = { total: 0, flapping: 0 };

describe("replay", () => {
  it("is synchronous and returns the transitions and final states", () => {
    const result = replay({
      topology: { systems: [{ systemId: "s", environmentIds: ["prod"], checks: [{ checkId: "c" }] }] },
      runs: ["unhealthy", "unhealthy", "healthy"].map((status, index) => ({
        systemId: "s",
        checkId: "c",
        environmentId: "prod",
        status: status as RunInput["status"],
        timestamp: `2026-11-30T00:0${index}:00Z`,
      })),
    });
    expect(result).not.toBeInstanceOf(Promise);
    expect(result.transitions.map((event) => [event.entityId, event.sequence, event.occurredAt])).toEqual([
      ["s", 1, "2026-11-30T00:01:00.000Z"],
      ["s::prod", 1, "2026-11-30T00:01:00.000Z"],
      ["s", 2, "2026-11-30T00:02:00.000Z"],
      ["s::prod", 2, "2026-11-30T00:02:00.000Z"],
    ]);
    expect(result.states).toEqual({
      s: { status: "healthy", healthyChecks: 1, totalChecks: 1 },
      "s::prod": { status: "healthy", healthyChecks: 1, totalChecks: 1 },
    });
  });

  it("reports runs the engine would reject, and duplicates, without stopping", () => {
    const result = replay({
      topology: { systems: [{ systemId: "s", environmentIds: [], checks: [{ checkId: "c" }] }] },
      runs: [
        { systemId: "s", checkId: "c", status: "healthy", runId: "a" },
        { systemId: "s", checkId: "c", status: "nope" as never },
        { systemId: "s", checkId: "c", environmentId: "prod", status: "healthy" },
        { systemId: "s", checkId: "c", status: "healthy", runId: "a" },
      ],
    });
    expect(result.rejected.map((rejection) => [rejection.index, rejection.issues[0]?.path])).toEqual([
      [1, ["status"]],
      [2, ["environmentId"]],
    ]);
    expect(result.duplicates).toEqual([3]);
  });

  it("treats input that throws while read as invalid: a ValidationError for the topology, a rejection for a run (a hole too)", () => {
    const boom = (): never => {
      throw new Error("boom");
    };
    const hostileThresholds = (mode: string) => Object.defineProperty({ mode }, "degraded", { enumerable: true, get: boom });
    for (const mode of ["bogus", "consecutive"]) {
      const topology = { systems: [{ systemId: "s", environmentIds: [], checks: [{ checkId: "c", thresholds: hostileThresholds(mode) }] }] };
      expect(() => replay({ topology: topology as never, runs: [] }), mode).toThrow(ValidationError);
    }
    const hostileRun = Object.defineProperty({ systemId: "s", checkId: "c" }, "status", { enumerable: true, get: boom });
    const runs: unknown[] = [hostileRun];
    runs[2] = { systemId: "s", checkId: "c", status: "unhealthy", runId: "fine" };
    const result = replay({ topology: { systems: [{ systemId: "s", environmentIds: [], checks: [{ checkId: "c" }] }] }, runs: runs as never });
    expect(result.rejected.map((rejection) => rejection.index)).toEqual([0, 1]);
    expect(result.rejected[0]?.issues).toEqual([{ path: [], message: "could not be read: boom" }]);
    expect(result.states.s).toEqual({ status: "healthy", healthyChecks: 1, totalChecks: 1 });
    const hostileInput = Object.defineProperty({ runs: [] }, "topology", { enumerable: true, get: boom });
    expect(() => replay(hostileInput as never)).toThrow(ValidationError);
    // Read by index, as recordRuns reads a batch: not through an iterator of the array's own, and
    // a slot whose read throws is rejected alone.
    const fine = (runId: string) => ({ systemId: "s", checkId: "c", status: "unhealthy", runId });
    const iterated = Object.assign([fine("a"), fine("b")], { [Symbol.iterator]: function* () { yield fine("other"); } });
    const trapped = new Proxy([fine("c"), fine("d"), fine("e")], {
      get: (target, key, receiver): unknown => (key === "1" ? boom() : Reflect.get(target, key, receiver)),
    });
    const topology = { systems: [{ systemId: "s", environmentIds: [], checks: [{ checkId: "c" }] }] };
    // Default thresholds: the second failure makes the check degraded.
    expect(replay({ topology, runs: iterated as never }).transitions.map((event) => event.type === "health.transition" && event.cause.runId)).toEqual(["b"]);
    const fromTrapped = replay({ topology, runs: trapped as never });
    expect(fromTrapped.rejected).toEqual([{ index: 1, issues: [{ path: [], message: "could not be read: boom" }] }]);
    expect(fromTrapped.transitions.map((event) => event.type === "health.transition" && event.cause.runId)).toEqual(["e"]);
  });

  it("throws a ValidationError for an invalid topology", () => {
    expect(() => replay({ topology: { systems: [{ systemId: "", environmentIds: [], checks: [] }] }, runs: [] })).toThrow(ValidationError);
  });

  it("validates flap overrides merged with options.flapping, as the engine does with its own settings", () => {
    const topology = (flapping: { low?: number; high?: number }): TopologyDoc => ({
      systems: [{ systemId: "s", environmentIds: [], checks: [{ checkId: "c", flapping }] }],
    });
    const issuesOf = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return (error as ValidationError).issues.map((issue) => issue.path);
      }
      return [];
    };
    expect(issuesOf(() => replay({ topology: topology({ low: 40 }), runs: [] }))).toEqual([["topology", "systems", 0, "checks", 0, "flapping", "low"]]);
    expect(issuesOf(() => replay({ topology: topology({ low: 40 }), runs: [], options: { flapping: { high: 50 } } }))).toEqual([]);
  });

  test.prop([scenarioArb], { numRuns: 150 })("agrees with the engine on the in-memory adapter for every input", async ([topology, rawRuns]) => {
    await expectEngineAgrees(topology, rawRuns);
  });

  test.prop([flapScenarioArb], { numRuns: 60 })(
    "agrees with the engine when entities flap under per-assignment flap overrides",
    async ([topology, rawRuns]) => {
      const expected = await expectEngineAgrees(topology, rawRuns);
      flapScenariosSeen.total += 1;
      if (expected.transitions.some((event) => event.type === "health.flapping_started")) flapScenariosSeen.flapping += 1;
    },
  );

  it("the flap scenarios do flap", () => {
    // Guards the generator: the property above is only meaningful if entities do flap.
    expect(flapScenariosSeen.flapping).toBeGreaterThan(flapScenariosSeen.total / 4);
  });
});
