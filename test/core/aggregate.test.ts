import { fc, test } from "@fast-check/vitest";
import {
  DEFAULT_THRESHOLDS,
  aggregateSystem,
  effectiveSlices,
  isCounted,
  severityOf,
  worstStatus,
  type AssignmentRecord,
  type EntityView,
  type HealthStatus,
  type SystemRecord,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { aggregateRunEntities, sameEntityState } from "../../src/aggregate";

function assignment(checkId: string, options: Partial<AssignmentRecord> = {}): AssignmentRecord {
  return {
    systemId: "sys",
    checkId,
    thresholds: DEFAULT_THRESHOLDS,
    environmentIds: null,
    enabled: true,
    paused: false,
    ...options,
  };
}

function sliceKey(checkId: string, environmentId: string | null): string {
  return JSON.stringify([checkId, environmentId]);
}

/** A slice lookup over a table; slices not in the table have no runs and read healthy. */
function lookup(table: Record<string, HealthStatus> = {}) {
  return (checkId: string, environmentId: string | null): HealthStatus => table[sliceKey(checkId, environmentId)] ?? "healthy";
}

function byId(views: readonly EntityView[]) {
  return Object.fromEntries(views.map((view) => [view.entityId, view.state]));
}

const system: SystemRecord = { systemId: "sys", environmentIds: ["prod", "staging"] };

describe("aggregateSystem (§6)", () => {
  it("aggregates per environment and per check in the rollup", () => {
    const assignments = [
      assignment("a"),
      assignment("b", { environmentIds: ["staging"] }),
      assignment("c", { environmentIds: [] }),
    ];
    const views = aggregateSystem(
      system,
      assignments,
      lookup({
        [sliceKey("a", "prod")]: "unhealthy",
        [sliceKey("a", "staging")]: "healthy",
        [sliceKey("b", "staging")]: "degraded",
        [sliceKey("c", null)]: "healthy",
      }),
    );
    expect(views).toEqual([
      { entityId: "sys", systemId: "sys", environmentId: null, state: { status: "unhealthy", healthyChecks: 1, totalChecks: 3 } },
      { entityId: "sys::prod", systemId: "sys", environmentId: "prod", state: { status: "unhealthy", healthyChecks: 0, totalChecks: 1 } },
      { entityId: "sys::staging", systemId: "sys", environmentId: "staging", state: { status: "degraded", healthyChecks: 1, totalChecks: 2 } },
    ]);
  });

  it("reads checks without runs as healthy: { healthy, n, n }", () => {
    const views = aggregateSystem(system, [assignment("a"), assignment("b")], lookup());
    expect(byId(views)).toEqual({
      sys: { status: "healthy", healthyChecks: 2, totalChecks: 2 },
      "sys::prod": { status: "healthy", healthyChecks: 2, totalChecks: 2 },
      "sys::staging": { status: "healthy", healthyChecks: 2, totalChecks: 2 },
    });
  });

  it("an environment entity exists iff a counted assignment applies to it", () => {
    const wide: SystemRecord = { systemId: "sys", environmentIds: ["prod", "staging", "dev"] };
    const views = aggregateSystem(
      wide,
      [assignment("a", { environmentIds: ["prod"] }), assignment("b", { environmentIds: ["dev"], enabled: false })],
      lookup(),
    );
    expect(views.map((view) => view.entityId)).toEqual(["sys", "sys::prod"]);
  });

  it("does not count a check in an environment it does not apply to", () => {
    const views = aggregateSystem(
      system,
      [assignment("a", { environmentIds: ["prod"] }), assignment("b", { environmentIds: ["staging"] })],
      lookup({ [sliceKey("b", "staging")]: "unhealthy" }),
    );
    expect(byId(views)).toEqual({
      sys: { status: "unhealthy", healthyChecks: 1, totalChecks: 2 },
      "sys::prod": { status: "healthy", healthyChecks: 1, totalChecks: 1 },
      "sys::staging": { status: "unhealthy", healthyChecks: 0, totalChecks: 1 },
    });
  });

  it("does not count paused or disabled assignments", () => {
    const table = lookup({ [sliceKey("p", "prod")]: "unhealthy", [sliceKey("d", "prod")]: "unhealthy" });
    const views = aggregateSystem(system, [assignment("a"), assignment("p", { paused: true }), assignment("d", { enabled: false })], table);
    expect(byId(views)).toEqual({
      sys: { status: "healthy", healthyChecks: 1, totalChecks: 1 },
      "sys::prod": { status: "healthy", healthyChecks: 1, totalChecks: 1 },
      "sys::staging": { status: "healthy", healthyChecks: 1, totalChecks: 1 },
    });
    expect(aggregateSystem(system, [assignment("p", { paused: true }), assignment("d", { enabled: false })], table)).toEqual([]);
  });

  it("counts each check once in the rollup, at the worst of its slices", () => {
    const views = aggregateSystem(
      system,
      [assignment("a"), assignment("b")],
      lookup({ [sliceKey("a", "prod")]: "degraded", [sliceKey("a", "staging")]: "unhealthy", [sliceKey("b", "staging")]: "degraded" }),
    );
    expect(byId(views).sys).toEqual({ status: "unhealthy", healthyChecks: 0, totalChecks: 2 });
  });

  it("counts an env-less check in the rollup only", () => {
    const views = aggregateSystem(system, [assignment("a", { environmentIds: [] })], lookup({ [sliceKey("a", null)]: "degraded" }));
    expect(views).toEqual([
      { entityId: "sys", systemId: "sys", environmentId: null, state: { status: "degraded", healthyChecks: 0, totalChecks: 1 } },
    ]);
    // A null selector with an empty membership, and a list of stale ids, also run env-less.
    const bare: SystemRecord = { systemId: "sys", environmentIds: [] };
    expect(byId(aggregateSystem(bare, [assignment("a")], lookup({ [sliceKey("a", null)]: "unhealthy" })))).toEqual({
      sys: { status: "unhealthy", healthyChecks: 0, totalChecks: 1 },
    });
    expect(
      byId(aggregateSystem(system, [assignment("a", { environmentIds: ["gone"] })], lookup({ [sliceKey("a", null)]: "unhealthy" }))),
    ).toEqual({ sys: { status: "unhealthy", healthyChecks: 0, totalChecks: 1 } });
  });

  it("gives no entities without counted assignments", () => {
    expect(aggregateSystem(system, [], lookup())).toEqual([]);
    expect(aggregateSystem({ systemId: "sys", environmentIds: [] }, [], lookup())).toEqual([]);
    // Assignments of another system are ignored.
    expect(aggregateSystem(system, [assignment("a", { systemId: "other" })], lookup())).toEqual([]);
  });

  it("never masks a failing environment with another environment's healthy slice", () => {
    const views = aggregateSystem(
      system,
      [assignment("a")],
      lookup({ [sliceKey("a", "prod")]: "unhealthy", [sliceKey("a", "staging")]: "healthy" }),
    );
    expect(byId(views)).toEqual({
      sys: { status: "unhealthy", healthyChecks: 0, totalChecks: 1 },
      "sys::prod": { status: "unhealthy", healthyChecks: 0, totalChecks: 1 },
      "sys::staging": { status: "healthy", healthyChecks: 1, totalChecks: 1 },
    });
  });

  it("lists environment entities in membership order and encodes their ids", () => {
    const odd: SystemRecord = { systemId: "a:b", environmentIds: ["z%", "a"] };
    const views = aggregateSystem(odd, [assignment("c", { systemId: "a:b", environmentIds: ["a", "z%"] })], lookup());
    expect(views.map((view) => view.entityId)).toEqual(["a%3Ab", "a%3Ab::z%25", "a%3Ab::a"]);
  });

  it("asks only for the slices the assignments evaluate", () => {
    const asked: string[] = [];
    aggregateSystem(
      system,
      [assignment("a", { environmentIds: ["staging", "gone"] }), assignment("b", { environmentIds: [] }), assignment("c", { paused: true })],
      (checkId, environmentId) => {
        asked.push(sliceKey(checkId, environmentId));
        return "healthy";
      },
    );
    expect(asked.sort()).toEqual([sliceKey("a", "staging"), sliceKey("b", null)].sort());
  });

  it("effectiveSlices gives each effective environment, or the env-less slice", () => {
    expect(effectiveSlices(assignment("a"), system)).toEqual(["prod", "staging"]);
    expect(effectiveSlices(assignment("a", { environmentIds: ["staging", "prod"] }), system)).toEqual(["prod", "staging"]);
    expect(effectiveSlices(assignment("a", { environmentIds: [] }), system)).toEqual([null]);
    expect(effectiveSlices(assignment("a"), { systemId: "sys", environmentIds: [] })).toEqual([null]);
  });

  it("isCounted: enabled and not paused", () => {
    expect(isCounted(assignment("a"))).toBe(true);
    expect(isCounted(assignment("a", { paused: true }))).toBe(false);
    expect(isCounted(assignment("a", { enabled: false }))).toBe(false);
    expect(isCounted(assignment("a", { enabled: false, paused: true }))).toBe(false);
  });

  it("sameEntityState compares every field", () => {
    const base = { status: "degraded", healthyChecks: 1, totalChecks: 2 } as const;
    expect(sameEntityState(base, { ...base })).toBe(true);
    expect(sameEntityState(base, { ...base, status: "unhealthy" })).toBe(false);
    expect(sameEntityState(base, { ...base, healthyChecks: 0 })).toBe(false);
    expect(sameEntityState(base, { ...base, totalChecks: 3 })).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const ENVIRONMENTS = ["e1", "e2", "e3", "e4"] as const;
const CHECKS = ["c1", "c2", "c3", "c4", "c5"] as const;
const status = fc.constantFrom<HealthStatus>("healthy", "degraded", "unhealthy");

const scenario = fc
  .record({
    membership: fc.shuffledSubarray([...ENVIRONMENTS]),
    checks: fc.uniqueArray(fc.constantFrom(...CHECKS), { maxLength: CHECKS.length }),
  })
  .chain(({ membership, checks }) =>
    fc.record({
      system: fc.constant<SystemRecord>({ systemId: "sys", environmentIds: membership }),
      assignments: fc.tuple(
        ...checks.map((checkId) =>
          fc.record({
            systemId: fc.constantFrom("sys", "sys", "sys", "other"),
            checkId: fc.constant(checkId),
            thresholds: fc.constant(DEFAULT_THRESHOLDS),
            environmentIds: fc.option(fc.shuffledSubarray([...ENVIRONMENTS, "gone"]), { nil: null }),
            enabled: fc.constantFrom(true, true, true, false),
            paused: fc.constantFrom(false, false, true),
          }),
        ),
      ),
      table: fc.dictionary(
        fc.constantFrom(...CHECKS.flatMap((checkId) => [null, ...ENVIRONMENTS].map((environmentId) => sliceKey(checkId, environmentId)))),
        status,
      ),
      order: fc.infiniteStream(fc.nat()),
    }),
  );

function permute<T>(list: readonly T[], keys: Iterator<number>): T[] {
  return list
    .map((value) => ({ value, key: keys.next().value as number }))
    .sort((a, b) => a.key - b.key)
    .map(({ value }) => value);
}

/** §6, written directly from the spec's text. */
function expectedEntities(system: SystemRecord, assignments: readonly AssignmentRecord[], read: (c: string, e: string | null) => HealthStatus) {
  const counted = assignments.filter((a) => a.systemId === system.systemId && a.enabled && !a.paused);
  const effective = (a: AssignmentRecord) =>
    a.environmentIds === null ? [...system.environmentIds] : system.environmentIds.filter((e) => a.environmentIds?.includes(e));
  const result: Record<string, { status: HealthStatus; healthyChecks: number; totalChecks: number }> = {};
  if (counted.length === 0) return result;
  const perCheck = counted.map((a) => {
    const envs = effective(a);
    return worstStatus(envs.length === 0 ? [read(a.checkId, null)] : envs.map((e) => read(a.checkId, e)));
  });
  result.sys = {
    status: worstStatus(perCheck),
    healthyChecks: perCheck.filter((s) => s === "healthy").length,
    totalChecks: counted.length,
  };
  for (const environmentId of system.environmentIds) {
    const applying = counted.filter((a) => effective(a).includes(environmentId));
    if (applying.length === 0) continue;
    const statuses = applying.map((a) => read(a.checkId, environmentId));
    result[`sys::${environmentId}`] = {
      status: worstStatus(statuses),
      healthyChecks: statuses.filter((s) => s === "healthy").length,
      totalChecks: statuses.length,
    };
  }
  return result;
}

describe("aggregation properties (§6)", () => {
  test.prop([scenario], { numRuns: 300 })("matches §6 computed directly", ({ system: sys, assignments, table }) => {
    const read = lookup(table);
    const views = aggregateSystem(sys, assignments, read);
    expect(byId(views)).toEqual(expectedEntities(sys, assignments, read));
    // Rollup first, then environment entities in membership order.
    const order = views.map((view) => view.environmentId);
    if (views.length > 0) expect(order[0]).toBeNull();
    expect(order.slice(1)).toEqual(sys.environmentIds.filter((e) => order.includes(e)));
  });

  test.prop([scenario, fc.constantFrom(null, "gone", ...ENVIRONMENTS)], { numRuns: 500 })(
    "aggregateRunEntities gives exactly aggregateSystem's rollup and the run's environment entity",
    ({ system: sys, assignments, table }, environmentId) => {
      const read = lookup(table);
      const expected = aggregateSystem(sys, assignments, read).filter(
        (view) => view.environmentId === null || view.environmentId === environmentId,
      );
      expect(aggregateRunEntities(sys, assignments, read, environmentId)).toEqual(expected);
    },
  );

  test.prop([scenario], { numRuns: 300 })(
    "does not depend on the order of assignments nor on the order of environment selectors",
    ({ system: sys, assignments, table, order }) => {
      const read = lookup(table);
      const reordered = permute(assignments, order).map((a) => ({
        ...a,
        environmentIds: a.environmentIds === null ? null : permute(a.environmentIds, order),
      }));
      expect(aggregateSystem(sys, reordered, read)).toEqual(aggregateSystem(sys, assignments, read));
    },
  );

  test.prop([scenario, fc.constantFrom(...CHECKS), fc.constantFrom(null, ...ENVIRONMENTS), status])(
    "a worse slice never improves any entity",
    ({ system: sys, assignments, table }, checkId, environmentId, worse) => {
      const key = sliceKey(checkId, environmentId);
      const current = table[key] ?? "healthy";
      fc.pre(severityOf(worse) > severityOf(current));
      const before = byId(aggregateSystem(sys, assignments, lookup(table)));
      const after = byId(aggregateSystem(sys, assignments, lookup({ ...table, [key]: worse })));
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
      for (const [entityId, state] of Object.entries(after)) {
        const previous = before[entityId];
        expect(previous).toBeDefined();
        if (previous === undefined) continue;
        expect(severityOf(state.status)).toBeGreaterThanOrEqual(severityOf(previous.status));
        expect(state.healthyChecks).toBeLessThanOrEqual(previous.healthyChecks);
        expect(state.totalChecks).toBe(previous.totalChecks);
      }
    },
  );
});
