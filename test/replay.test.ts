import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  ValidationError,
  createHealthEngine,
  encodeHealthEntityId,
  replay,
  type HealthEvent,
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

const checkArb = (checkId: string) =>
  fc.record(
    {
      checkId: fc.constant(checkId),
      thresholds: thresholdsArb,
      environmentIds: fc.oneof(fc.constant(null), fc.subarray(["dev", "prod", "staging", "gone"])),
      enabled: fc.boolean(),
      paused: fc.boolean(),
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

  it("throws a ValidationError for an invalid topology", () => {
    expect(() => replay({ topology: { systems: [{ systemId: "", environmentIds: [], checks: [] }] }, runs: [] })).toThrow(ValidationError);
  });

  test.prop([scenarioArb], { numRuns: 150 })(
    "agrees with the engine on the in-memory adapter for every input",
    async ([topology, rawRuns]) => {
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
    },
  );
});
