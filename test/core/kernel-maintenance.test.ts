import { fc, test } from "@fast-check/vitest";
import {
  coversEntity,
  hasDueBoundary,
  statusBefore,
  validateThresholds,
  withinWindow,
  type AssignmentRecord,
  type HealthEvent,
  type HealthStatus,
  type HealthTransitionEvent,
  type MaintenanceRecord,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { healthEventSchema } from "../../src/events";
import type { EntityRecord, HealthTransitionRecord } from "../../src/kernel";
import { SystemWorkspace } from "../../src/kernel/system-workspace";

const H = "healthy";
const D = "degraded";
const U = "unhealthy";

const START = "2026-11-30T10:00:00.000Z";
const END = "2026-11-30T12:00:00.000Z";

/** ISO time `ms` milliseconds after (or before) `base`. */
function shift(base: string, ms: number): string {
  return new Date(Date.parse(base) + ms).toISOString();
}

const MINUTE = 60_000;

/** One run moves the slice: healthy → healthy, degraded → degraded, unhealthy → unhealthy. */
const IMMEDIATE = validateThresholds({ mode: "consecutive", degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 1 } })._unsafeUnwrap();

function assignment(options: Partial<AssignmentRecord> = {}): AssignmentRecord {
  return { systemId: "sys", checkId: "a", thresholds: IMMEDIATE, environmentIds: null, enabled: true, paused: false, ...options };
}

function maintenance(
  maintenanceId: string,
  environmentId: string | null,
  options: Partial<MaintenanceRecord> = {},
): MaintenanceRecord {
  return {
    maintenanceId,
    entityId: environmentId === null ? "sys" : `sys::${environmentId}`,
    systemId: "sys",
    environmentId,
    start: START,
    end: END,
    reason: null,
    startedEntities: null,
    ended: false,
    createdAt: "2026-11-30T09:00:00.000Z",
    ...options,
  };
}

/** System `sys` with environments prod and staging and one fanned-out check `a`; flapping off. */
function workspace(windows: readonly MaintenanceRecord[] = [], membership: readonly string[] = ["prod", "staging"]): SystemWorkspace {
  const ws = new SystemWorkspace("sys", { maintenance: windows }, { flapping: { enabled: false, low: 20, high: 30 } });
  ws.setSystem({ systemId: "sys", environmentIds: membership });
  ws.setAssignment(assignment());
  expect(ws.applyTopologyChange(shift(START, -60 * MINUTE))).toEqual([]);
  return ws;
}

let runCounter = 0;
function run(ws: SystemWorkspace, environmentId: string, status: HealthStatus, timestamp: string): HealthEvent[] {
  runCounter += 1;
  return ws.applyRun({
    runId: `run-${runCounter}`,
    systemId: "sys",
    checkId: "a",
    environmentId,
    status,
    latencyMs: null,
    timestamp,
    message: null,
    recordedAt: timestamp,
  });
}

function entity(ws: SystemWorkspace, entityId: string): EntityRecord {
  return ws.listEntities().find((record) => record.entityId === entityId) as EntityRecord;
}

/** The transition log of the workspace's own new transitions is added by the workspace itself. */
const noStoredLog = (): readonly HealthTransitionRecord[] => [];

function marks(events: readonly HealthEvent[]): [string, boolean][] {
  return events
    .filter((event): event is HealthTransitionEvent => event.type === "health.transition")
    .map((event) => [event.entityId, event.inMaintenance === true]);
}

describe("maintenance windows (§11): pure helpers", () => {
  it("withinWindow is start ≤ t < end, to the millisecond", () => {
    const window = { start: START, end: END };
    expect(withinWindow(window, shift(START, -1))).toBe(false);
    expect(withinWindow(window, START)).toBe(true);
    expect(withinWindow(window, "2026-11-30T11:00:00Z")).toBe(true);
    expect(withinWindow(window, shift(END, -1))).toBe(true);
    expect(withinWindow(window, END)).toBe(false);
    // Offsets are honoured: 11:59:59.999+00:00 is 12:59:59.999+01:00.
    expect(withinWindow(window, "2026-11-30T12:59:59.999+01:00")).toBe(true);
    expect(withinWindow(window, "2026-11-30T13:00:00+01:00")).toBe(false);
  });

  it("coversEntity: a system-wide window covers every entity of its system, an environment window only its entity", () => {
    const systemWide = maintenance("m", null);
    for (const entityId of ["sys", "sys::prod", "sys::staging"]) expect(coversEntity(systemWide, entityId, "sys")).toBe(true);
    expect(coversEntity(systemWide, "other", "other")).toBe(false);
    expect(coversEntity(systemWide, "sys", "other")).toBe(false);

    const prod = maintenance("m", "prod");
    expect(coversEntity(prod, "sys::prod", "sys")).toBe(true);
    expect(coversEntity(prod, "sys", "sys")).toBe(false);
    expect(coversEntity(prod, "sys::staging", "sys")).toBe(false);
    expect(coversEntity(prod, "sys::prod", "other")).toBe(false);
  });

  it("hasDueBoundary: the start once it has come, then the end once it has come, then nothing", () => {
    const pending = maintenance("m", null);
    expect(hasDueBoundary(pending, new Date(shift(START, -1)))).toBe(false);
    expect(hasDueBoundary(pending, new Date(START))).toBe(true);
    expect(hasDueBoundary(pending, new Date(END))).toBe(true);

    const started = maintenance("m", null, { startedEntities: ["sys"] });
    expect(hasDueBoundary(started, new Date(START))).toBe(false);
    expect(hasDueBoundary(started, new Date(shift(END, -1)))).toBe(false);
    expect(hasDueBoundary(started, new Date(END))).toBe(true);
    // A start processed with no entity to cover still counts as processed.
    expect(hasDueBoundary(maintenance("m", null, { startedEntities: [] }), new Date(START))).toBe(false);

    const ended = maintenance("m", null, { startedEntities: ["sys"], ended: true });
    expect(hasDueBoundary(ended, new Date(shift(END, 3_600_000)))).toBe(false);
  });

  it("statusBefore reads the status in effect just before a time from the log", () => {
    const log = [
      { previousStatus: H, newStatus: D, occurredAt: "2026-11-30T09:00:00.000Z" },
      { previousStatus: D, newStatus: U, occurredAt: "2026-11-30T10:00:00.000Z" },
      { previousStatus: U, newStatus: H, occurredAt: "2026-11-30T11:00:00.000Z" },
    ] as const;
    expect(statusBefore([], START, U)).toBe(U);
    expect(statusBefore(log, "2026-11-30T08:00:00.000Z", U)).toBe(H);
    expect(statusBefore(log, "2026-11-30T09:00:00.000Z", U)).toBe(H);
    expect(statusBefore(log, "2026-11-30T09:00:00.001Z", U)).toBe(D);
    // A transition at exactly the time is not before it.
    expect(statusBefore(log, START, H)).toBe(D);
    expect(statusBefore(log, shift(START, 1), H)).toBe(U);
    expect(statusBefore(log, END, D)).toBe(H);
  });

  it("statusBefore: a transition earlier than its predecessor takes effect at its predecessor's time", () => {
    const log = [
      { previousStatus: H, newStatus: U, occurredAt: "2026-11-30T11:00:00.000Z" },
      { previousStatus: U, newStatus: D, occurredAt: "2026-11-30T09:00:00.000Z" },
      { previousStatus: D, newStatus: H, occurredAt: "2026-11-30T11:30:00.000Z" },
    ] as const;
    expect(statusBefore(log, START, U)).toBe(H);
    expect(statusBefore(log, "2026-11-30T11:00:00.001Z", U)).toBe(D);
    expect(statusBefore(log, "2026-11-30T11:30:00.001Z", U)).toBe(H);
  });
});

describe("SystemWorkspace: maintenance marks (§11)", () => {
  it("marks transitions with start ≤ occurredAt < end, boundaries exact", () => {
    const ws = workspace([maintenance("m", "prod")]);
    const before = run(ws, "prod", U, shift(START, -1));
    const atStart = run(ws, "prod", H, START);
    const lastInside = run(ws, "prod", U, shift(END, -1));
    const atEnd = run(ws, "prod", H, END);
    // The environment window covers prod only, not the rollup.
    expect(marks(before)).toEqual([["sys", false], ["sys::prod", false]]);
    expect(marks(atStart)).toEqual([["sys", false], ["sys::prod", true]]);
    expect(marks(lastInside)).toEqual([["sys", false], ["sys::prod", true]]);
    expect(marks(atEnd)).toEqual([["sys", false], ["sys::prod", false]]);
    for (const event of [...before, ...atEnd]) expect(event).not.toHaveProperty("inMaintenance");
    for (const event of [...atStart, ...lastInside]) expect(healthEventSchema.parse(event)).toEqual(event);
    // Another environment inside the same time is not covered either.
    expect(marks(run(ws, "staging", D, START))).toEqual([["sys", false], ["sys::staging", false]]);
  });

  it("a system-wide window covers every entity of the system", () => {
    const ws = workspace([maintenance("m", null)]);
    const events = [...run(ws, "prod", U, START), ...run(ws, "staging", D, shift(START, MINUTE)), ...run(ws, "prod", H, shift(END, -1))];
    expect(marks(events)).toEqual([
      ["sys", true],
      ["sys::prod", true],
      ["sys::staging", true],
      ["sys", true],
      ["sys::prod", true],
    ]);
    expect(marks(run(ws, "staging", H, END))).toEqual([["sys", false], ["sys::staging", false]]);
  });

  it("a window of another system marks nothing; putMaintenance applies to later transitions only", () => {
    const ws = workspace([maintenance("elsewhere", null, { systemId: "other", entityId: "other" })]);
    expect(marks(run(ws, "prod", U, START))).toEqual([["sys", false], ["sys::prod", false]]);
    const window = maintenance("late", "prod");
    ws.putMaintenance(window);
    expect(marks(run(ws, "prod", H, shift(START, MINUTE)))).toEqual([["sys", false], ["sys::prod", true]]);
    expect(ws.listMaintenance().map((record) => record.maintenanceId)).toEqual(["elsewhere", "late"]);
    expect(ws.changes().maintenance).toEqual([window]);
    expect(ws.changes().transitions.filter((record) => record.entityId === "sys::prod").map((record) => record.occurredAt)).toEqual([
      START,
      shift(START, MINUTE),
    ]);
  });
});

describe("SystemWorkspace: processMaintenance (§11)", () => {
  it("emits started once per covered existing entity, and ended after the end to the same entities", () => {
    const ws = workspace([maintenance("m", null, { reason: "db upgrade" })], ["prod", "staging", "old"]);
    // An entity that no longer exists gets nothing.
    ws.setSystem({ systemId: "sys", environmentIds: ["prod", "staging"] });
    ws.applyTopologyChange(shift(START, -30 * MINUTE));
    expect(entity(ws, "sys::old").state).toBeNull();
    run(ws, "prod", D, shift(START, -10 * MINUTE));

    expect(ws.processMaintenance(new Date(shift(START, -1)), noStoredLog)).toEqual([]);
    expect(ws.changes().maintenance).toEqual([]);

    const started = ws.processMaintenance(new Date(START), noStoredLog);
    expect(started).toEqual([
      {
        type: "health.maintenance_started",
        eventId: "sys#2",
        entityId: "sys",
        systemId: "sys",
        environmentId: null,
        sequence: 2,
        occurredAt: START,
        maintenanceId: "m",
        reason: "db upgrade",
        status: D,
      },
      {
        type: "health.maintenance_started",
        eventId: "sys::prod#2",
        entityId: "sys::prod",
        systemId: "sys",
        environmentId: "prod",
        sequence: 2,
        occurredAt: START,
        maintenanceId: "m",
        reason: "db upgrade",
        status: D,
      },
      {
        type: "health.maintenance_started",
        eventId: "sys::staging#1",
        entityId: "sys::staging",
        systemId: "sys",
        environmentId: "staging",
        sequence: 1,
        occurredAt: START,
        maintenanceId: "m",
        reason: "db upgrade",
        status: H,
      },
    ]);
    for (const event of started) expect(healthEventSchema.parse(event)).toEqual(event);
    expect(ws.changes().maintenance).toEqual([
      maintenance("m", null, { reason: "db upgrade", startedEntities: ["sys", "sys::prod", "sys::staging"] }),
    ]);
    // Never twice.
    expect(ws.processMaintenance(new Date(START), noStoredLog)).toEqual([]);
    expect(ws.processMaintenance(new Date(shift(END, -1)), noStoredLog)).toEqual([]);

    // During the window: prod goes unhealthy, a new environment appears.
    run(ws, "prod", U, shift(START, 30 * MINUTE));
    ws.setSystem({ systemId: "sys", environmentIds: ["prod", "staging", "dev"] });
    ws.applyTopologyChange(shift(START, 40 * MINUTE));

    const ended = ws.processMaintenance(new Date(END), noStoredLog);
    expect(ended.map((event) => [event.type, event.entityId, event.sequence, event.occurredAt])).toEqual([
      ["health.maintenance_ended", "sys", 4, END],
      ["health.maintenance_ended", "sys::prod", 4, END],
      ["health.maintenance_ended", "sys::staging", 2, END],
    ]);
    expect(ended[1]).toEqual({
      type: "health.maintenance_ended",
      eventId: "sys::prod#4",
      entityId: "sys::prod",
      systemId: "sys",
      environmentId: "prod",
      sequence: 4,
      occurredAt: END,
      maintenanceId: "m",
      statusBefore: D,
      statusAfter: U,
    });
    expect(ended.map((event) => event.type === "health.maintenance_ended" && [event.statusBefore, event.statusAfter])).toEqual([
      [D, U],
      [D, U],
      [H, H],
    ]);
    for (const event of ended) expect(healthEventSchema.parse(event)).toEqual(event);
    expect(ws.processMaintenance(new Date(shift(END, 3_600_000)), noStoredLog)).toEqual([]);
    expect(ws.listMaintenance()).toEqual([
      maintenance("m", null, { reason: "db upgrade", startedEntities: ["sys", "sys::prod", "sys::staging"], ended: true }),
    ]);
    expect(entity(ws, "sys::dev").sequence).toBe(0);
  });

  it("an environment window starts and ends on its entity only", () => {
    const ws = workspace([maintenance("m", "staging")]);
    const events = ws.processMaintenance(new Date(END), noStoredLog);
    expect(events.map((event) => [event.type, event.entityId, event.sequence])).toEqual([
      ["health.maintenance_started", "sys::staging", 1],
      ["health.maintenance_ended", "sys::staging", 2],
    ]);
    expect(events[0]).not.toHaveProperty("reason");
  });

  it("a window already over at its first processing gives started then ended, with statuses from the stored log", () => {
    // Loaded from the store: prod went degraded before the window, unhealthy inside it, and
    // recovered after it; three events so far.
    const log: HealthTransitionRecord[] = [
      { entityId: "sys::prod", systemId: "sys", environmentId: "prod", sequence: 1, previousStatus: H, newStatus: D, occurredAt: shift(START, -MINUTE) },
      { entityId: "sys::prod", systemId: "sys", environmentId: "prod", sequence: 2, previousStatus: D, newStatus: U, occurredAt: shift(START, MINUTE) },
      { entityId: "sys::prod", systemId: "sys", environmentId: "prod", sequence: 3, previousStatus: U, newStatus: H, occurredAt: END },
    ];
    const ws = new SystemWorkspace("sys", {
      system: { systemId: "sys", environmentIds: ["prod"] },
      assignments: [assignment()],
      entities: [
        { entityId: "sys", systemId: "sys", environmentId: null, state: { status: H, healthyChecks: 1, totalChecks: 1 }, sequence: 3 },
        { entityId: "sys::prod", systemId: "sys", environmentId: "prod", state: { status: H, healthyChecks: 1, totalChecks: 1 }, sequence: 3 },
      ],
      maintenance: [maintenance("m", "prod")],
    });
    const asked: string[] = [];
    const events = ws.processMaintenance(new Date("2026-12-01T00:00:00.000Z"), (entityId) => {
      asked.push(entityId);
      return entityId === "sys::prod" ? log : [];
    });
    expect(asked.every((entityId) => entityId === "sys::prod")).toBe(true);
    expect(events).toEqual([
      {
        type: "health.maintenance_started",
        eventId: "sys::prod#4",
        entityId: "sys::prod",
        systemId: "sys",
        environmentId: "prod",
        sequence: 4,
        occurredAt: START,
        maintenanceId: "m",
        status: D,
      },
      {
        type: "health.maintenance_ended",
        eventId: "sys::prod#5",
        entityId: "sys::prod",
        systemId: "sys",
        environmentId: "prod",
        sequence: 5,
        occurredAt: END,
        maintenanceId: "m",
        // The recovery at exactly the end is not before it.
        statusBefore: D,
        statusAfter: U,
      },
    ]);
    expect(entity(ws, "sys::prod").sequence).toBe(5);
    expect(ws.changes().events).toEqual(events);

    // The chain continues after the boundary events.
    const next = run(ws, "prod", D, "2026-12-01T00:00:00.000Z");
    expect(next.map((event) => [event.entityId, event.sequence])).toEqual([
      ["sys", 4],
      ["sys::prod", 6],
    ]);
  });

  it("a system-wide window's boundary events go out in entity-id order, whatever order the entities were loaded in", () => {
    const state = { status: H, healthyChecks: 1, totalChecks: 1 } as const;
    const record = (entityId: string, environmentId: string | null): EntityRecord => ({ entityId, systemId: "sys", environmentId, state, sequence: 0 });
    const ws = new SystemWorkspace("sys", {
      system: { systemId: "sys", environmentIds: ["b", "a"] },
      assignments: [assignment()],
      entities: [record("sys::b", "b"), record("sys", null), record("sys::a", "a")],
      maintenance: [maintenance("m", null)],
    });
    const events = ws.processMaintenance(new Date(END), noStoredLog);
    expect(events.map((event) => [event.type, event.entityId])).toEqual([
      ["health.maintenance_started", "sys"],
      ["health.maintenance_started", "sys::a"],
      ["health.maintenance_started", "sys::b"],
      ["health.maintenance_ended", "sys"],
      ["health.maintenance_ended", "sys::a"],
      ["health.maintenance_ended", "sys::b"],
    ]);
  });

  it("windows starting at the same instant are processed in id order", () => {
    const ws = workspace([maintenance("z", "prod"), maintenance("b", "prod", { start: "2026-11-30T11:00:00+01:00" }), maintenance("m", "prod")]);
    const events = ws.processMaintenance(new Date(START), noStoredLog);
    expect(events.map((event) => [event.sequence, "maintenanceId" in event ? event.maintenanceId : null])).toEqual([
      [1, "b"],
      [2, "m"],
      [3, "z"],
    ]);
  });

  it("an entity removed during the window still gets its ended, on its tombstone's sequence", () => {
    const ws = workspace([maintenance("m", null)]);
    run(ws, "staging", D, shift(START, -MINUTE));
    expect(ws.processMaintenance(new Date(START), noStoredLog).map((event) => event.entityId)).toEqual(["sys", "sys::prod", "sys::staging"]);
    ws.setSystem({ systemId: "sys", environmentIds: ["prod"] });
    ws.applyTopologyChange(shift(START, MINUTE));
    expect(entity(ws, "sys::staging")).toMatchObject({ state: null, sequence: 2 });
    const ended = ws.processMaintenance(new Date(END), noStoredLog);
    expect(ended.find((event) => event.entityId === "sys::staging")).toMatchObject({
      type: "health.maintenance_ended",
      sequence: 3,
      statusBefore: D,
      statusAfter: D,
    });
    expect(entity(ws, "sys::staging")).toMatchObject({ state: null, sequence: 3 });
  });

  it("ended skips a started entity the workspace does not hold", () => {
    const ws = workspace([maintenance("m", null, { startedEntities: ["sys::gone", "sys::prod"] })]);
    const events = ws.processMaintenance(new Date(END), noStoredLog);
    expect(events.map((event) => [event.type, event.entityId, event.sequence])).toEqual([["health.maintenance_ended", "sys::prod", 1]]);
    expect(ws.listMaintenance()[0]).toMatchObject({ startedEntities: ["sys::gone", "sys::prod"], ended: true });
  });

  it("reads the workspace's own new transitions along with the stored log", () => {
    const ws = workspace([maintenance("m", "prod")]);
    run(ws, "prod", D, shift(START, -MINUTE));
    run(ws, "prod", U, shift(END, -MINUTE));
    run(ws, "prod", H, shift(END, MINUTE));
    const events = ws.processMaintenance(new Date(shift(END, 2 * MINUTE)), noStoredLog);
    expect(events.map((event) => [event.type, event.sequence])).toEqual([
      ["health.maintenance_started", 4],
      ["health.maintenance_ended", 5],
    ]);
    expect(events[0]).toMatchObject({ status: D });
    expect(events[1]).toMatchObject({ statusBefore: D, statusAfter: U });
  });

  it("windows are processed in start order; an entity's sequence stays gapless over all its events", () => {
    const ws = workspace([
      maintenance("b", "prod", { start: shift(START, MINUTE), end: shift(START, 3 * MINUTE) }),
      maintenance("a", null, { start: START, end: shift(START, 2 * MINUTE) }),
    ]);
    const events = [
      ...run(ws, "prod", U, shift(START, -MINUTE)),
      ...ws.processMaintenance(new Date(shift(START, 90_000)), noStoredLog),
      ...run(ws, "prod", H, shift(START, 100_000)),
      ...ws.processMaintenance(new Date(shift(END, 0)), noStoredLog),
    ];
    const prod = events.filter((event) => event.entityId === "sys::prod");
    expect(prod.map((event) => [event.type, event.sequence, "maintenanceId" in event ? event.maintenanceId : null])).toEqual([
      ["health.transition", 1, null],
      ["health.maintenance_started", 2, "a"],
      ["health.maintenance_started", 3, "b"],
      ["health.transition", 4, null],
      ["health.maintenance_ended", 5, "a"],
      ["health.maintenance_ended", 6, "b"],
    ]);
    expect(prod[3]).toMatchObject({ inMaintenance: true, previousStatus: U, newStatus: H });
    expect(entity(ws, "sys::prod").sequence).toBe(6);
    for (const record of ws.listEntities()) {
      const own = events.filter((event) => event.entityId === record.entityId);
      expect(own.map((event) => event.sequence)).toEqual(own.map((_, index) => index + 1));
    }
  });
});

describe("SystemWorkspace: maintenance properties", () => {
  const minute = fc.integer({ min: 0, max: 240 });
  test.prop([
    fc.array(fc.tuple(fc.constantFrom("prod", "staging"), fc.constantFrom<HealthStatus>(H, D, U), minute), { maxLength: 40 }),
    fc.tuple(minute, fc.integer({ min: 1, max: 120 }), fc.constantFrom<string | null>(null, "prod", "staging")),
    fc.array(minute, { maxLength: 6 }),
  ])("each covered entity gets one started and one ended, statuses agree with the log, sequences gapless", (runs, [from, length, environmentId], ticks) => {
    const base = "2026-11-30T08:00:00.000Z";
    const start = shift(base, from * MINUTE);
    const end = shift(base, (from + length) * MINUTE);
    const ws = workspace([maintenance("m", environmentId, { start, end })]);
    const sortedRuns = [...runs].sort((a, b) => a[2] - b[2]);
    const sortedTicks = [...ticks, 400].sort((a, b) => a - b);
    const events: HealthEvent[] = [];
    let next = 0;
    for (const tick of sortedTicks) {
      while (next < sortedRuns.length && (sortedRuns[next] as [string, HealthStatus, number])[2] <= tick) {
        const [env, status, at] = sortedRuns[next] as [string, HealthStatus, number];
        events.push(...run(ws, env, status, shift(base, at * MINUTE)));
        next += 1;
      }
      events.push(...ws.processMaintenance(new Date(shift(base, tick * MINUTE)), noStoredLog));
    }
    const covered = environmentId === null ? ["sys", "sys::prod", "sys::staging"] : [`sys::${environmentId}`];
    const log = ws.changes().transitions;
    for (const record of ws.listEntities()) {
      const own = events.filter((event) => event.entityId === record.entityId);
      expect(own.map((event) => event.sequence)).toEqual(own.map((_, index) => index + 1));
      const started = own.filter((event) => event.type === "health.maintenance_started");
      const ended = own.filter((event) => event.type === "health.maintenance_ended");
      const expected = covered.includes(record.entityId) ? 1 : 0;
      expect([started.length, ended.length]).toEqual([expected, expected]);
      for (const event of own) {
        if (event.type === "health.transition") expect(event.inMaintenance === true).toBe(expected === 1 && withinWindow({ start, end }, event.occurredAt));
      }
      if (expected === 0) continue;
      // Status just before a time, from the transitions of this entity.
      const mine = log.filter((transition) => transition.entityId === record.entityId);
      const reference = (time: string) => {
        const effective = mine.filter((transition) => Date.parse(transition.occurredAt) < Date.parse(time));
        return effective.at(-1)?.newStatus ?? H;
      };
      expect(started[0]).toMatchObject({ status: reference(start), occurredAt: start });
      expect(ended[0]).toMatchObject({ statusBefore: reference(start), statusAfter: reference(end), occurredAt: end });
    }
  });
});
