import { fc, test } from "@fast-check/vitest";
import {
  DEFAULT_THRESHOLDS,
  HEALTH_TRIGGER_EVENTS,
  aggregateSystem,
  evaluateRuns,
  healthEventSchema,
  healthTransitionEventSchema,
  validateThresholds,
  type AssignmentRecord,
  type EntityRecord,
  type HealthEvent,
  type HealthStatus,
  type HealthTransitionEvent,
  type StoredRun,
  type SystemRecord,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { eventIdOf } from "../../src/events";
import { SystemWorkspace, runRejection } from "../../src/kernel/system-workspace";
import { applySystemSpec, assignmentFromSpec } from "../../src/kernel/topology-ops";

const T0 = "2026-11-30T12:00:00.000Z";
const H = "healthy";
const D = "degraded";
const U = "unhealthy";

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

let runCounter = 0;
function storedRun(checkId: string, environmentId: string | null, status: HealthStatus, timestamp = T0): StoredRun {
  runCounter += 1;
  return {
    runId: `run-${runCounter}`,
    systemId: "sys",
    checkId,
    environmentId,
    status,
    latencyMs: null,
    timestamp,
    message: null,
    recordedAt: timestamp,
  };
}

/** A workspace whose topology was applied (entities created at the baseline). */
function workspace(membership: readonly string[], assignments: readonly AssignmentRecord[]): SystemWorkspace {
  const ws = new SystemWorkspace("sys");
  ws.setSystem({ systemId: "sys", environmentIds: membership });
  for (const record of assignments) ws.setAssignment(record);
  expect(ws.applyTopologyChange(T0)).toEqual([]);
  return ws;
}

function apply(ws: SystemWorkspace, checkId: string, environmentId: string | null, statuses: readonly HealthStatus[]): HealthEvent[] {
  return statuses.flatMap((status) => ws.applyRun(storedRun(checkId, environmentId, status)));
}

function entity(ws: SystemWorkspace, entityId: string): EntityRecord | undefined {
  return ws.listEntities().find((record) => record.entityId === entityId);
}

function transitions(events: readonly HealthEvent[], entityId: string): HealthTransitionEvent[] {
  return events.filter((event): event is HealthTransitionEvent => event.type === "health.transition" && event.entityId === entityId);
}

describe("SystemWorkspace: topology", () => {
  it("creates every entity at the baseline { healthy, n, n } without events", () => {
    const ws = workspace(["prod", "staging"], [assignment("http"), assignment("db", { environmentIds: ["prod"] })]);
    // The creating evaluation is the first entry of each entity's flap history (SPEC §10).
    const fresh = { sequence: 0, history: "h", flappingFrom: null };
    expect(ws.listEntities()).toEqual([
      { entityId: "sys", systemId: "sys", environmentId: null, state: { status: H, healthyChecks: 2, totalChecks: 2 }, ...fresh },
      { entityId: "sys::prod", systemId: "sys", environmentId: "prod", state: { status: H, healthyChecks: 2, totalChecks: 2 }, ...fresh },
      { entityId: "sys::staging", systemId: "sys", environmentId: "staging", state: { status: H, healthyChecks: 1, totalChecks: 1 }, ...fresh },
    ]);
    const changes = ws.changes();
    expect(changes.system).toEqual({ systemId: "sys", environmentIds: ["prod", "staging"] });
    expect(changes.assignments.map((record) => record.checkId)).toEqual(["http", "db"]);
    expect(changes.entities).toHaveLength(3);
    expect(changes.events).toEqual([]);
    expect(changes.transitions).toEqual([]);
  });

  it("exposes its topology", () => {
    const ws = workspace(["prod"], [assignment("http")]);
    expect(ws.getSystem()).toEqual({ systemId: "sys", environmentIds: ["prod"] });
    expect(ws.getAssignment("http")).toEqual(assignment("http"));
    expect(ws.getAssignment("nope")).toBeUndefined();
    expect(ws.listAssignments()).toEqual([assignment("http")]);
  });

  it("reports whether an edit changed anything", () => {
    const ws = workspace(["prod"], [assignment("http")]);
    expect(ws.setSystem({ systemId: "sys", environmentIds: ["prod"] })).toBe(false);
    expect(ws.setSystem({ systemId: "sys", environmentIds: ["prod", "dev"] })).toBe(true);
    expect(ws.setAssignment(assignment("http"))).toBe(false);
    expect(ws.setAssignment(assignment("http", { environmentIds: ["prod"] }))).toBe(true);
    expect(ws.setAssignment(assignment("http", { environmentIds: ["prod"] }))).toBe(false);
    expect(ws.setAssignment(assignment("http", { environmentIds: ["dev"] }))).toBe(true);
    expect(ws.setAssignment(assignment("http", { environmentIds: null }))).toBe(true);
    expect(ws.setAssignment(assignment("http", { paused: true }))).toBe(true);
    expect(ws.setAssignment(assignment("http", { paused: true, enabled: false }))).toBe(true);
    expect(ws.deleteAssignment("http")).toBe(true);
    expect(ws.deleteAssignment("http")).toBe(false);
    expect(ws.deleteSystem()).toBe(true);
    expect(ws.deleteSystem()).toBe(false);
  });

  it("the copy of the membership is its own", () => {
    const membership = ["prod"];
    const ws = new SystemWorkspace("sys");
    ws.setSystem({ systemId: "sys", environmentIds: membership });
    membership.push("dev");
    expect(ws.getSystem()?.environmentIds).toEqual(["prod"]);
  });
});

describe("SystemWorkspace: runs", () => {
  it("produces transitions with sequence 1, 2, 3 chained previous → new", () => {
    const ws = workspace(["prod"], [assignment("http")]);
    const events = [
      ...apply(ws, "http", "prod", [D, D]),
      ...apply(ws, "http", "prod", [U, U, U]),
      ...apply(ws, "http", "prod", [H]),
    ];
    for (const entityId of ["sys::prod", "sys"]) {
      const chain = transitions(events, entityId);
      expect(chain.map((event) => [event.sequence, event.previousStatus, event.newStatus, event.classification])).toEqual([
        [1, H, D, "escalation"],
        [2, D, U, "escalation"],
        [3, U, H, "recovery"],
      ]);
      expect(chain.map((event) => event.eventId)).toEqual([1, 2, 3].map((sequence) => eventIdOf(entityId, sequence)));
      expect(chain.map((event) => event.triggers)).toEqual([
        [HEALTH_TRIGGER_EVENTS.degraded, HEALTH_TRIGGER_EVENTS.healthChanged],
        [HEALTH_TRIGGER_EVENTS.healthChanged],
        [HEALTH_TRIGGER_EVENTS.healthy, HEALTH_TRIGGER_EVENTS.healthChanged],
      ]);
      expect(entity(ws, entityId)?.sequence).toBe(3);
    }
    for (const event of events) {
      expect(healthEventSchema.safeParse(event).success).toBe(true);
      expect(healthTransitionEventSchema.parse(event)).toEqual(event);
    }
    // The workspace's change set holds the same events, and one transition record per event.
    const changes = ws.changes();
    expect(changes.events).toEqual(events);
    expect(changes.transitions.map((record) => [record.entityId, record.sequence, record.previousStatus, record.newStatus])).toEqual(
      events.map((event) => [event.entityId, event.sequence, (event as HealthTransitionEvent).previousStatus, (event as HealthTransitionEvent).newStatus]),
    );
  });

  it("the first failing evaluation is a real healthy → … transition from the baseline", () => {
    const ws = workspace(["prod"], [assignment("http", { thresholds: validateThresholds({ mode: "consecutive", degraded: { minFailureCount: 1 } })._unsafeUnwrap() })]);
    const run = storedRun("http", "prod", U, "2026-11-30T13:00:00.000Z");
    const events = ws.applyRun(run);
    expect(events).toEqual([
      {
        type: "health.transition",
        eventId: "sys#1",
        entityId: "sys",
        systemId: "sys",
        environmentId: null,
        sequence: 1,
        previousStatus: H,
        newStatus: D,
        healthyChecks: 0,
        totalChecks: 1,
        classification: "escalation",
        triggers: [HEALTH_TRIGGER_EVENTS.degraded, HEALTH_TRIGGER_EVENTS.healthChanged],
        occurredAt: "2026-11-30T13:00:00.000Z",
        cause: { runId: run.runId, checkId: "http" },
      },
      {
        type: "health.transition",
        eventId: "sys::prod#1",
        entityId: "sys::prod",
        systemId: "sys",
        environmentId: "prod",
        sequence: 1,
        previousStatus: H,
        newStatus: D,
        healthyChecks: 0,
        totalChecks: 1,
        classification: "escalation",
        triggers: [HEALTH_TRIGGER_EVENTS.degraded, HEALTH_TRIGGER_EVENTS.healthChanged],
        occurredAt: "2026-11-30T13:00:00.000Z",
        cause: { runId: run.runId, checkId: "http" },
      },
    ]);
    expect(ws.changes().transitions[1]).toEqual({
      entityId: "sys::prod",
      systemId: "sys",
      environmentId: "prod",
      sequence: 1,
      previousStatus: H,
      newStatus: D,
      occurredAt: "2026-11-30T13:00:00.000Z",
      runId: run.runId,
      checkId: "http",
    });
  });

  it("a run below the threshold updates the slice but emits nothing", () => {
    const ws = workspace(["prod"], [assignment("http")]);
    expect(apply(ws, "http", "prod", [U])).toEqual([]);
    const slice = ws.changes().slices.find((record) => record.environmentId === "prod");
    expect(slice?.state.status).toBe(H);
    expect(slice?.state.failureStreak).toBe(1);
  });

  it("touches only the run's environment and the rollup", () => {
    const ws = workspace(["prod", "staging"], [assignment("http")]);
    const events = apply(ws, "http", "staging", [U, U]);
    expect(events.map((event) => event.entityId).sort()).toEqual(["sys", "sys::staging"]);
    expect(entity(ws, "sys::prod")?.state).toEqual({ status: H, healthyChecks: 1, totalChecks: 1 });
    expect(entity(ws, "sys::staging")?.state).toEqual({ status: D, healthyChecks: 0, totalChecks: 1 });
  });

  it("an env-less check changes the rollup only", () => {
    const ws = workspace(["prod"], [assignment("cron", { environmentIds: [] }), assignment("http")]);
    const events = apply(ws, "cron", null, [D, D]);
    expect(events.map((event) => event.entityId)).toEqual(["sys"]);
    expect(entity(ws, "sys")?.state).toEqual({ status: D, healthyChecks: 1, totalChecks: 2 });
    expect(entity(ws, "sys::prod")?.state).toEqual({ status: H, healthyChecks: 1, totalChecks: 1 });
  });

  it("count-only changes update the entity but emit nothing", () => {
    const ws = workspace(["prod"], [assignment("a"), assignment("b")]);
    expect(transitions(apply(ws, "a", "prod", [D, D]), "sys::prod")).toHaveLength(1);
    expect(entity(ws, "sys::prod")).toMatchObject({ state: { status: D, healthyChecks: 1, totalChecks: 2 }, sequence: 1 });
    const events = apply(ws, "b", "prod", [D, D]);
    expect(events).toEqual([]);
    expect(entity(ws, "sys::prod")).toMatchObject({ state: { status: D, healthyChecks: 0, totalChecks: 2 }, sequence: 1 });
    expect(entity(ws, "sys")).toMatchObject({ state: { status: D, healthyChecks: 0, totalChecks: 2 }, sequence: 1 });
    expect(ws.changes().transitions).toHaveLength(2);
  });

  it("runs of a paused check are stepped but do not count", () => {
    const ws = workspace(["prod"], [assignment("a"), assignment("p", { paused: true })]);
    expect(apply(ws, "p", "prod", [U, U, U, U, U])).toEqual([]);
    expect(entity(ws, "sys::prod")?.state).toEqual({ status: H, healthyChecks: 1, totalChecks: 1 });
    // Resuming it counts its slice as evaluated meanwhile.
    ws.setAssignment(assignment("p"));
    const events = ws.applyTopologyChange("2026-11-30T14:00:00.000Z");
    expect(transitions(events, "sys::prod").map((event) => [event.previousStatus, event.newStatus, event.occurredAt])).toEqual([
      [H, U, "2026-11-30T14:00:00.000Z"],
    ]);
  });
});

describe("SystemWorkspace: topology changes", () => {
  it("unassigning the only failing check among several is a recovery", () => {
    const ws = workspace(["prod"], [assignment("a"), assignment("b"), assignment("c")]);
    apply(ws, "b", "prod", [U, U, U, U, U]);
    expect(entity(ws, "sys::prod")?.state).toEqual({ status: U, healthyChecks: 2, totalChecks: 3 });
    ws.deleteAssignment("b");
    const events = ws.applyTopologyChange("2026-11-30T15:00:00.000Z");
    const prod = transitions(events, "sys::prod");
    expect(prod).toHaveLength(1);
    expect(prod[0]).toMatchObject({
      sequence: 3,
      previousStatus: U,
      newStatus: H,
      healthyChecks: 2,
      totalChecks: 2,
      classification: "recovery",
      triggers: [HEALTH_TRIGGER_EVENTS.healthy, HEALTH_TRIGGER_EVENTS.healthChanged],
      occurredAt: "2026-11-30T15:00:00.000Z",
      cause: {},
    });
    expect(transitions(events, "sys")).toHaveLength(1);
    expect(ws.changes().deletedAssignments).toEqual(["b"]);
    expect(ws.changes().deletedSlices).toEqual([{ systemId: "sys", checkId: "b", environmentId: "prod" }]);
  });

  it("deleteAssignment drops the check's slices at once, before any re-evaluation", () => {
    const ws = workspace(["prod", "staging"], [assignment("a"), assignment("b")]);
    apply(ws, "a", "prod", [D, D]);
    apply(ws, "a", "staging", [D]);
    apply(ws, "b", "prod", [D]);
    expect(ws.deleteAssignment("a")).toBe(true);
    const changes = ws.changes();
    expect(changes.deletedSlices).toEqual([
      { systemId: "sys", checkId: "a", environmentId: "prod" },
      { systemId: "sys", checkId: "a", environmentId: "staging" },
    ]);
    expect(changes.slices.map((slice) => [slice.checkId, slice.environmentId])).toEqual([["b", "prod"]]);
    // Assigned again before the topology is re-evaluated, the check starts from the baseline:
    // one more degraded run is not three in a row, so prod (degraded through the old slice) recovers.
    ws.setAssignment(assignment("a"));
    const events = apply(ws, "a", "prod", [D]);
    expect(transitions(events, "sys::prod").map((event) => [event.previousStatus, event.newStatus])).toEqual([[D, H]]);
    expect(ws.changes().slices.find((slice) => slice.checkId === "a")?.state).toMatchObject({ status: H, failureStreak: 1, recent: "d" });
    expect(ws.changes().deletedSlices).toEqual([{ systemId: "sys", checkId: "a", environmentId: "staging" }]);
  });

  it("pausing a failing check removes it from the aggregate", () => {
    const ws = workspace(["prod"], [assignment("a"), assignment("b")]);
    apply(ws, "b", "prod", [D, D]);
    ws.setAssignment(assignment("b", { paused: true }));
    const events = ws.applyTopologyChange(T0);
    expect(transitions(events, "sys::prod").map((event) => event.classification)).toEqual(["recovery"]);
    expect(entity(ws, "sys::prod")?.state).toEqual({ status: H, healthyChecks: 1, totalChecks: 1 });
  });

  it("removing the last check tombstones the entity; re-creating it continues the sequence", () => {
    const ws = workspace(["prod"], [assignment("a")]);
    apply(ws, "a", "prod", [U, U, U, U, U]);
    expect(entity(ws, "sys::prod")).toMatchObject({ state: { status: U }, sequence: 2 });

    ws.deleteAssignment("a");
    expect(ws.applyTopologyChange(T0)).toEqual([]);
    expect(entity(ws, "sys::prod")).toEqual({
      entityId: "sys::prod",
      systemId: "sys",
      environmentId: "prod",
      state: null,
      sequence: 2,
      // A tombstone keeps what it had; re-creation starts a new history (below).
      history: "hhdddu",
      flappingFrom: null,
    });
    expect(entity(ws, "sys")).toMatchObject({ state: null, sequence: 2 });
    expect(ws.changes().entities.filter((record) => record.state === null).map((record) => record.entityId).sort()).toEqual(["sys", "sys::prod"]);
    // Tombstoning twice changes nothing more.
    expect(ws.applyTopologyChange(T0)).toEqual([]);

    ws.setAssignment(assignment("a"));
    expect(ws.applyTopologyChange(T0)).toEqual([]);
    // The slice was dropped with the assignment: it starts from the baseline again.
    expect(entity(ws, "sys::prod")).toEqual({
      entityId: "sys::prod",
      systemId: "sys",
      environmentId: "prod",
      state: { status: H, healthyChecks: 1, totalChecks: 1 },
      sequence: 2,
      history: "h",
      flappingFrom: null,
    });
    const events = apply(ws, "a", "prod", [D, D]);
    expect(transitions(events, "sys::prod").map((event) => [event.sequence, event.eventId, event.previousStatus, event.newStatus])).toEqual([
      [3, "sys::prod#3", H, D],
    ]);
    const ids = ws.changes().events.map((event) => event.eventId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("a threshold change re-evaluates the check's slices", () => {
    const ws = workspace(["prod", "staging"], [assignment("a"), assignment("b")]);
    apply(ws, "a", "prod", [D, D]);
    apply(ws, "a", "staging", [D, D, D]);
    apply(ws, "b", "prod", [D, D]);
    expect(entity(ws, "sys::prod")?.state?.status).toBe(D);
    const lenient = validateThresholds({ mode: "consecutive", degraded: { minFailureCount: 3 } })._unsafeUnwrap();
    expect(ws.setAssignment(assignment("a", { thresholds: lenient }))).toBe(true);
    const slices = ws.changes().slices;
    expect(slices.find((slice) => slice.checkId === "a" && slice.environmentId === "prod")?.state.status).toBe(H);
    expect(slices.find((slice) => slice.checkId === "a" && slice.environmentId === "staging")?.state.status).toBe(D);
    // Check b keeps its thresholds and its state.
    expect(slices.find((slice) => slice.checkId === "b")?.state.status).toBe(D);
    const events = ws.applyTopologyChange(T0);
    expect(events).toEqual([]);
    expect(entity(ws, "sys::prod")?.state).toEqual({ status: D, healthyChecks: 1, totalChecks: 2 });

    const strict = validateThresholds({ mode: "window", windowSize: 3, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 2 } })._unsafeUnwrap();
    ws.setAssignment(assignment("b", { thresholds: strict }));
    ws.setAssignment(assignment("a", { thresholds: strict }));
    const stricter = ws.applyTopologyChange(T0);
    // Window mode counts 3 degraded runs on a@staging (no unhealthy run): degraded, unchanged.
    expect(transitions(stricter, "sys::staging")).toEqual([]);
    expect(entity(ws, "sys::prod")?.state).toEqual({ status: D, healthyChecks: 0, totalChecks: 2 });
  });

  it("a threshold change can cause a transition", () => {
    const ws = workspace(["prod"], [assignment("a")]);
    apply(ws, "a", "prod", [D, D]);
    ws.setAssignment(assignment("a", { thresholds: validateThresholds({ mode: "consecutive", degraded: { minFailureCount: 3 } })._unsafeUnwrap() }));
    expect(transitions(ws.applyTopologyChange(T0), "sys::prod").map((event) => [event.previousStatus, event.newStatus])).toEqual([[D, H]]);
    ws.setAssignment(assignment("a", { thresholds: validateThresholds({ mode: "consecutive", degraded: { minFailureCount: 1 } })._unsafeUnwrap() }));
    expect(transitions(ws.applyTopologyChange(T0), "sys::prod").map((event) => [event.previousStatus, event.newStatus])).toEqual([[H, D]]);
  });

  it("a change that keeps the thresholds does not re-evaluate", () => {
    const ws = workspace(["prod"], [assignment("a")]);
    apply(ws, "a", "prod", [D, D]);
    ws.setAssignment(assignment("a", { environmentIds: ["prod"] }));
    expect(ws.applyTopologyChange(T0)).toEqual([]);
    expect(entity(ws, "sys::prod")?.state?.status).toBe(D);
  });

  it("an environment leaving the membership tombstones its entity and drops its slices", () => {
    const ws = workspace(["prod", "staging"], [assignment("a")]);
    apply(ws, "a", "staging", [U, U, U, U, U]);
    ws.setSystem({ systemId: "sys", environmentIds: ["prod"] });
    const events = ws.applyTopologyChange(T0);
    expect(events.map((event) => [event.entityId, (event as HealthTransitionEvent).newStatus])).toEqual([["sys", H]]);
    expect(entity(ws, "sys::staging")).toMatchObject({ state: null, sequence: 2 });
    expect(ws.changes().deletedSlices).toEqual([{ systemId: "sys", checkId: "a", environmentId: "staging" }]);

    ws.setSystem({ systemId: "sys", environmentIds: ["prod", "staging"] });
    expect(ws.applyTopologyChange(T0)).toEqual([]);
    expect(entity(ws, "sys::staging")).toMatchObject({ state: { status: H, healthyChecks: 1, totalChecks: 1 }, sequence: 2 });
    expect(ws.changes().deletedSlices).toEqual([{ systemId: "sys", checkId: "a", environmentId: "staging" }]);
    apply(ws, "a", "staging", [D]);
    expect(ws.changes().deletedSlices).toEqual([]);
  });

  it("deleting the system tombstones every entity without events", () => {
    const ws = workspace(["prod"], [assignment("a")]);
    apply(ws, "a", "prod", [D, D]);
    expect(ws.deleteSystem()).toBe(true);
    expect(ws.applyTopologyChange(T0)).toEqual([]);
    expect(ws.getSystem()).toBeUndefined();
    expect(ws.listAssignments()).toEqual([]);
    expect(ws.listEntities().map((record) => record.state)).toEqual([null, null]);
    const changes = ws.changes();
    expect(changes.systemDeleted).toBe(true);
    expect(changes.system).toBeUndefined();
    expect(changes.deletedAssignments).toEqual(["a"]);
    expect(changes.assignments).toEqual([]);
    expect(changes.slices).toEqual([]);
    expect(changes.deletedSlices).toEqual([{ systemId: "sys", checkId: "a", environmentId: "prod" }]);

    ws.setSystem({ systemId: "sys", environmentIds: ["prod"] });
    expect(ws.changes().systemDeleted).toBe(false);
    expect(ws.changes().system).toEqual({ systemId: "sys", environmentIds: ["prod"] });
  });

  it("continues the sequences of a workspace loaded from the store", () => {
    const thresholds = DEFAULT_THRESHOLDS;
    const ws = new SystemWorkspace("sys", {
      system: { systemId: "sys", environmentIds: ["prod"] },
      assignments: [assignment("a", { thresholds })],
      slices: [
        {
          systemId: "sys",
          checkId: "a",
          environmentId: "prod",
          state: { status: D, successStreak: 0, failureStreak: 4, streakHasUnhealthy: false, recent: "dddd" },
        },
      ],
      entities: [
        { entityId: "sys", systemId: "sys", environmentId: null, state: { status: D, healthyChecks: 0, totalChecks: 1 }, sequence: 7 },
        { entityId: "sys::prod", systemId: "sys", environmentId: "prod", state: { status: D, healthyChecks: 0, totalChecks: 1 }, sequence: 4 },
      ],
    });
    const events = apply(ws, "a", "prod", [U]);
    expect(events.map((event) => [event.eventId, event.sequence])).toEqual([
      ["sys#8", 8],
      ["sys::prod#5", 5],
    ]);
    expect(ws.changes().system).toBeUndefined();
    expect(ws.changes().assignments).toEqual([]);
  });
});

describe("topology specs", () => {
  const lenient = validateThresholds({ mode: "window" })._unsafeUnwrap();

  it("assignmentFromSpec fills omitted fields from the defaults, or from the current assignment", () => {
    expect(assignmentFromSpec("sys", { checkId: "a" })).toEqual(assignment("a"));
    const base = assignment("a", { thresholds: lenient, environmentIds: ["prod"], enabled: false, paused: true });
    expect(assignmentFromSpec("sys", { checkId: "a" }, base)).toEqual(base);
    expect(assignmentFromSpec("sys", { checkId: "a", environmentIds: null, paused: false }, base)).toEqual({ ...base, environmentIds: null, paused: false });
    expect(assignmentFromSpec("sys", { checkId: "a", thresholds: DEFAULT_THRESHOLDS, environmentIds: [], enabled: true }, base)).toEqual({
      ...base,
      thresholds: DEFAULT_THRESHOLDS,
      environmentIds: [],
      enabled: true,
    });
  });

  it("applySystemSpec makes the workspace match the document; prune unassigns unlisted checks", () => {
    const ws = workspace(["prod"], [assignment("a", { thresholds: lenient, paused: true }), assignment("b")]);
    // A document is the whole truth about what it lists: a's omitted fields go back to defaults.
    expect(applySystemSpec(ws, { systemId: "sys", environmentIds: ["prod"], checks: [{ checkId: "a" }] }, false)).toBe(true);
    expect(ws.listAssignments()).toEqual([assignment("a"), assignment("b")]);
    expect(applySystemSpec(ws, { systemId: "sys", environmentIds: ["prod"], checks: [{ checkId: "a" }] }, false)).toBe(false);
    expect(applySystemSpec(ws, { systemId: "sys", environmentIds: ["prod"], checks: [{ checkId: "a" }] }, true)).toBe(true);
    expect(ws.listAssignments()).toEqual([assignment("a")]);
    expect(applySystemSpec(ws, { systemId: "sys", environmentIds: ["prod", "dev"], checks: [{ checkId: "a" }] }, true)).toBe(true);
    expect(ws.getSystem()).toEqual({ systemId: "sys", environmentIds: ["prod", "dev"] });
    expect(applySystemSpec(ws, { systemId: "sys", environmentIds: ["prod", "dev"], checks: [{ checkId: "a" }, { checkId: "c", environmentIds: [] }] }, true)).toBe(true);
    expect(ws.getAssignment("c")).toEqual(assignment("c", { environmentIds: [] }));
  });
});

describe("runRejection (§4)", () => {
  const system: SystemRecord = { systemId: "sys", environmentIds: ["prod", "staging"] };
  const fanned = assignment("http");
  const onlyProd = assignment("http", { environmentIds: ["prod"] });
  const envless = assignment("cron", { environmentIds: [] });
  const ref = (checkId: string, environmentId: string | null) => ({ systemId: "sys", checkId, environmentId });

  it("accepts runs that fit the topology", () => {
    expect(runRejection(system, fanned, ref("http", "prod"))).toBeUndefined();
    expect(runRejection(system, fanned, ref("http", "staging"))).toBeUndefined();
    expect(runRejection(system, onlyProd, ref("http", "prod"))).toBeUndefined();
    expect(runRejection(system, envless, ref("cron", null))).toBeUndefined();
    expect(runRejection({ systemId: "sys", environmentIds: [] }, fanned, ref("http", null))).toBeUndefined();
    expect(runRejection(system, assignment("x", { environmentIds: ["gone"] }), ref("x", null))).toBeUndefined();
  });

  it("rejects a run for an unknown system", () => {
    expect(runRejection(undefined, undefined, ref("http", "prod"))).toEqual({ path: "systemId", message: 'unknown system "sys"' });
  });

  it("rejects a run for an unassigned check", () => {
    expect(runRejection(system, undefined, ref("http", "prod"))).toEqual({
      path: "checkId",
      message: 'check "http" is not assigned to system "sys"',
    });
  });

  it("rejects an environment that is not effective", () => {
    const notSelected = runRejection(system, onlyProd, ref("http", "staging"));
    expect(notSelected?.path).toBe("environmentId");
    expect(notSelected?.message).toMatch(/"staging" is not effective/);
    expect(notSelected?.message).toContain('(effective: "prod")');
    expect(runRejection(system, fanned, ref("http", "dev"))?.path).toBe("environmentId");
  });

  it("rejects an env-less run for a fanned-out check", () => {
    const rejection = runRejection(system, fanned, ref("http", null));
    expect(rejection?.path).toBe("environmentId");
    expect(rejection?.message).toMatch(/runs per environment \("prod", "staging"\)/);
  });

  it("rejects an environment run for an env-less check", () => {
    const rejection = runRejection(system, envless, ref("cron", "prod"));
    expect(rejection?.path).toBe("environmentId");
    expect(rejection?.message).toMatch(/runs env-less/);
    expect(runRejection({ systemId: "sys", environmentIds: [] }, fanned, ref("http", "prod"))?.path).toBe("environmentId");
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const ENVIRONMENTS = ["prod", "staging"] as const;
const status = fc.constantFrom<HealthStatus>(H, D, U);
const checkSetup = fc.record({
  checkId: fc.constantFrom("a", "b", "c"),
  environmentIds: fc.constantFrom<readonly string[] | null>(null, [], ["prod"], ["staging"], ["staging", "prod"]),
  paused: fc.constantFrom(false, false, false, true),
  thresholds: fc.constantFrom(
    DEFAULT_THRESHOLDS,
    validateThresholds({ mode: "consecutive", degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 2 } })._unsafeUnwrap(),
    validateThresholds({ mode: "window", windowSize: 4, degraded: { minFailureCount: 2 }, unhealthy: { minFailureCount: 3 } })._unsafeUnwrap(),
  ),
});

describe("SystemWorkspace properties", () => {
  test.prop([fc.uniqueArray(checkSetup, { selector: (setup) => setup.checkId, minLength: 1 }), fc.array(fc.tuple(fc.nat(), fc.nat(), status), { maxLength: 80 })], {
    numRuns: 200,
  })("events chain per entity and final states equal §6 over §5 of each slice's runs", (setups, picks) => {
    const assignments = setups.map((setup) => assignment(setup.checkId, setup));
    const system: SystemRecord = { systemId: "sys", environmentIds: [...ENVIRONMENTS] };
    const ws = workspace(ENVIRONMENTS, assignments);
    const accepted = new Map<string, HealthStatus[]>();
    const events: HealthEvent[] = [];
    for (const [checkPick, envPick, value] of picks) {
      const record = assignments[checkPick % assignments.length] as AssignmentRecord;
      const candidates = [null, ...ENVIRONMENTS].filter((environmentId) => runRejection(system, record, { systemId: "sys", checkId: record.checkId, environmentId }) === undefined);
      const environmentId = candidates[envPick % candidates.length] as string | null;
      const key = JSON.stringify([record.checkId, environmentId]);
      accepted.set(key, [...(accepted.get(key) ?? []), value]);
      events.push(...ws.applyRun(storedRun(record.checkId, environmentId, value)));
    }

    const expected = aggregateSystem(system, assignments, (checkId, environmentId) => {
      const runs = accepted.get(JSON.stringify([checkId, environmentId])) ?? [];
      const record = assignments.find((candidate) => candidate.checkId === checkId) as AssignmentRecord;
      return evaluateRuns(runs, record.thresholds);
    });
    expect(Object.fromEntries(ws.listEntities().map((record) => [record.entityId, record.state]))).toEqual(
      Object.fromEntries(expected.map((view) => [view.entityId, view.state])),
    );

    for (const record of ws.listEntities()) {
      // Sequences are gapless over every event of the entity (transitions and flap events alike).
      const own = events.filter((event) => event.entityId === record.entityId);
      expect(own.map((event) => event.sequence)).toEqual(own.map((_, index) => index + 1));
      expect(own.map((event) => event.eventId)).toEqual(own.map((event) => eventIdOf(record.entityId, event.sequence)));
      expect(record.sequence).toBe(own.length);
      for (const event of own) expect(healthEventSchema.parse(event)).toEqual(event);
      // The chain law holds over the transitions only.
      const chain = transitions(events, record.entityId);
      let previous: HealthStatus = H;
      for (const event of chain) {
        expect(event.previousStatus).toBe(previous);
        expect(event.newStatus).not.toBe(event.previousStatus);
        previous = event.newStatus;
      }
      expect(previous).toBe(record.state?.status);
    }
  });
});

/** Random workspace operations: runs (`runWeight` in `runWeight + 3`) and topology changes. */
const operations = (runWeight: number) =>
  fc.oneof(
    { weight: runWeight, arbitrary: fc.record({ kind: fc.constant("run" as const), check: fc.nat(), environment: fc.nat(), status }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("assign" as const), setup: checkSetup }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("unassign" as const), check: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("membership" as const), environments: fc.subarray([...ENVIRONMENTS]) }) },
  );
type Operation = ReturnType<typeof operations> extends fc.Arbitrary<infer T> ? T : never;

/**
 * Applies one operation: a run of one of the workspace's assignments in one of the environments
 * it accepts (nothing when there is none), or a topology change followed by `applyTopologyChange`.
 * Returns the events and, for a run, its environment.
 */
function applyOperation(ws: SystemWorkspace, op: Operation): { events: HealthEvent[]; ranIn?: string | null } {
  const assignments = ws.listAssignments();
  if (op.kind === "run") {
    const record = assignments[op.check % Math.max(1, assignments.length)];
    const system = ws.getSystem();
    if (record === undefined || system === undefined) return { events: [] };
    const candidates = [null, ...ENVIRONMENTS].filter(
      (environmentId) => runRejection(system, record, { systemId: "sys", checkId: record.checkId, environmentId }) === undefined,
    );
    if (candidates.length === 0) return { events: [] };
    const environmentId = candidates[op.environment % candidates.length] ?? null;
    return { events: ws.applyRun(storedRun(record.checkId, environmentId, op.status, T0)), ranIn: environmentId };
  }
  if (op.kind === "assign") ws.setAssignment(assignment(op.setup.checkId, op.setup));
  else if (op.kind === "unassign") ws.deleteAssignment(assignments[op.check % Math.max(1, assignments.length)]?.checkId ?? "none");
  else ws.setSystem({ systemId: "sys", environmentIds: op.environments });
  ws.pruneSlices();
  return { events: ws.applyTopologyChange(T0) };
}

describe("SystemWorkspace snapshots", () => {
  /** The records a snapshot holds, as plain lists (what a store read would return). */
  const recordsOf = (snapshot: ReturnType<SystemWorkspace["snapshot"]>) => ({
    system: snapshot.system,
    assignments: [...snapshot.assignments.values()],
    slices: [...snapshot.slices.values()].flatMap((slices) => [...slices.values()]),
    entities: [...snapshot.entities.values()],
  });
  test.prop([fc.array(fc.array(operations(6), { maxLength: 6 }), { maxLength: 12 }), fc.nat({ max: 11 })], { numRuns: 200 })(
    "a workspace from a snapshot behaves as one loaded from its records, and never changes the snapshot",
    (units, failing) => {
      const start = workspace(ENVIRONMENTS, [assignment("a"), assignment("b", { environmentIds: ["prod"] })]);
      let snapshot = start.snapshot();
      for (const [index, unit] of units.entries()) {
        const frozenBefore = structuredClone(recordsOf(snapshot));
        const fromSnapshot = SystemWorkspace.fromSnapshot("sys", snapshot, []);
        const fromRecords = new SystemWorkspace("sys", recordsOf(snapshot));
        const outcomes = [fromSnapshot, fromRecords].map((ws) => {
          const events = unit.flatMap((op) => applyOperation(ws, op).events);
          return { events, changes: ws.changes(), after: recordsOf(ws.snapshot()) };
        });
        // Run ids differ between the two copies (a counter): compare the rest.
        const withoutRunIds = (value: unknown) => JSON.parse(JSON.stringify(value, (key, field: unknown) => (key === "runId" ? undefined : field))) as unknown;
        expect(withoutRunIds(outcomes[0])).toEqual(withoutRunIds(outcomes[1]));
        // The snapshot the unit of work started from is untouched, whatever it did.
        expect(recordsOf(snapshot)).toEqual(frozenBefore);
        // A unit of work that fails is dropped; the next one starts from the same snapshot.
        if (index !== failing) snapshot = fromSnapshot.snapshot();
      }
    },
  );
});

describe("SystemWorkspace evaluation", () => {
  const LETTERS: Readonly<Record<HealthStatus, string>> = { healthy: "h", degraded: "d", unhealthy: "u" };
  // A run that leaves its slice's status as it was reuses the stored entity states instead of
  // aggregating again: this holds that to the full aggregation after every step.
  test.prop([fc.array(operations(8), { maxLength: 60 })], { numRuns: 300 })(
    "after every run and topology change the live entities are the §6 aggregation of the slices as they now are, and a run evaluates the rollup and its environment's entity",
    (ops) => {
      const ws = workspace(ENVIRONMENTS, [assignment("a"), assignment("b", { environmentIds: ["prod"] })]);
      for (const op of ops) {
        const before = new Map(ws.listEntities().map((record) => [record.entityId, record]));
        const { ranIn } = applyOperation(ws, op);
        const { slices } = ws.snapshot();
        const system = ws.getSystem();
        const expected =
          system === undefined
            ? []
            : aggregateSystem(system, ws.listAssignments(), (checkId, environmentId) => slices.get(checkId)?.get(environmentId)?.state.status ?? H);
        const live = ws.listEntities().filter((record) => record.state !== null);
        expect(Object.fromEntries(live.map((record) => [record.entityId, record.state]))).toEqual(
          Object.fromEntries(expected.map((view) => [view.entityId, view.state])),
        );
        if (ranIn === undefined) continue;
        for (const view of expected) {
          if (view.environmentId !== null && view.environmentId !== ranIn) continue;
          const previous = before.get(view.entityId);
          const history = previous?.state == null ? "" : (previous.history ?? "");
          expect(live.find((record) => record.entityId === view.entityId)?.history).toBe((history + LETTERS[view.state.status]).slice(-21));
        }
      }
    },
  );
});
