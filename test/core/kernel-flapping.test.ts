import { fc, test } from "@fast-check/vitest";
import {
  DEFAULT_FLAPPING,
  percentStateChange,
  validateThresholds,
  type AssignmentRecord,
  type FlappingConfig,
  type HealthEvent,
  type HealthStatus,
  type HealthTransitionEvent,
  type StoredRun,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { healthEventSchema, type FlappingStartedEvent, type FlappingStoppedEvent } from "../../src/events";
import type { EntityRecord } from "../../src/kernel";
import { SystemWorkspace } from "../../src/kernel/system-workspace";

const T0 = Date.parse("2026-11-30T12:00:00.000Z");
const H = "healthy";
const D = "degraded";
const U = "unhealthy";
const LETTER: Record<HealthStatus, string> = { healthy: "h", degraded: "d", unhealthy: "u" };

/** One run is enough to move the slice: healthy → healthy, degraded → degraded, unhealthy → unhealthy. */
const IMMEDIATE = validateThresholds({ mode: "consecutive", degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 1 } })._unsafeUnwrap();

function assignment(options: Partial<AssignmentRecord> = {}): AssignmentRecord {
  return { systemId: "sys", checkId: "a", thresholds: IMMEDIATE, environmentIds: [], enabled: true, paused: false, ...options };
}

/**
 * A system without environments and one env-less check `a`, so the rollup `sys` is the only
 * entity and its status follows the runs one for one. Created at T0 (first history entry: h).
 */
function flappingWorkspace(flapping?: FlappingConfig): SystemWorkspace {
  const ws = new SystemWorkspace("sys", {}, flapping === undefined ? {} : { flapping });
  ws.setSystem({ systemId: "sys", environmentIds: [] });
  ws.setAssignment(assignment());
  expect(ws.applyTopologyChange(at(0))).toEqual([]);
  return ws;
}

/** ISO time `minutes` after T0. */
function at(minutes: number): string {
  return new Date(T0 + minutes * 60_000).toISOString();
}

/** Drives the workspace: one run per status, one minute apart after the runs already made. */
class Driver {
  private runs = 0;
  readonly statuses: HealthStatus[] = [H];
  readonly perRun: HealthEvent[][] = [];

  constructor(readonly ws: SystemWorkspace) {}

  run(...statuses: HealthStatus[]): HealthEvent[] {
    const produced: HealthEvent[] = [];
    for (const status of statuses) {
      this.runs += 1;
      const run: StoredRun = {
        runId: `run-${this.runs}`,
        systemId: "sys",
        checkId: "a",
        environmentId: null,
        status,
        latencyMs: null,
        timestamp: at(this.runs),
        message: null,
        recordedAt: at(this.runs),
      };
      const events = this.ws.applyRun(run);
      this.statuses.push(status);
      this.perRun.push(events);
      produced.push(...events);
    }
    return produced;
  }

  /** The percent state change over the entity's history so far, as §10 computes it. */
  percent(): number {
    return percentStateChange(this.statuses);
  }

  entity(): EntityRecord {
    return this.ws.listEntities()[0] as EntityRecord;
  }
}

function alternating(length: number, first: HealthStatus = U, second: HealthStatus = H): HealthStatus[] {
  return Array.from({ length }, (_, index) => (index % 2 === 0 ? first : second));
}

const isTransition = (event: HealthEvent): event is HealthTransitionEvent => event.type === "health.transition";
const isStarted = (event: HealthEvent): event is FlappingStartedEvent => event.type === "health.flapping_started";
const isStopped = (event: HealthEvent): event is FlappingStoppedEvent => event.type === "health.flapping_stopped";
const isFlapEvent = (event: HealthEvent) => isStarted(event) || isStopped(event);

describe("SystemWorkspace: flapping (§10)", () => {
  it("uses the SPEC defaults: enabled, low 20, high 30", () => {
    expect(DEFAULT_FLAPPING).toEqual({ enabled: true, low: 20, high: 30 });
    expect(Object.isFrozen(DEFAULT_FLAPPING)).toBe(true);
  });

  it("starts exactly at the evaluation that reaches high, after its (unmarked) transition", () => {
    const driver = new Driver(flappingWorkspace());
    // Five changes after the creating h weigh 29.93…%: just below 30, nothing yet.
    for (const status of alternating(5)) {
      const events = driver.run(status);
      expect(events).toHaveLength(1);
      expect(events[0]).not.toHaveProperty("flapping");
      expect(driver.percent()).toBeLessThan(30);
    }
    expect(driver.percent()).toBeCloseTo(29.934, 3);
    expect(driver.entity()).toMatchObject({ sequence: 5, history: "huhuhu", flappingFrom: null });

    // The sixth change crosses 30 (35.53…%): its transition, then flapping_started.
    const events = driver.run(H);
    expect(driver.percent()).toBeGreaterThanOrEqual(30);
    expect(events).toEqual([
      {
        type: "health.transition",
        eventId: "sys#6",
        entityId: "sys",
        systemId: "sys",
        environmentId: null,
        sequence: 6,
        previousStatus: U,
        newStatus: H,
        healthyChecks: 1,
        totalChecks: 1,
        classification: "recovery",
        triggers: expect.any(Array) as unknown,
        occurredAt: at(6),
        cause: { runId: "run-6", checkId: "a" },
      },
      {
        type: "health.flapping_started",
        eventId: "sys#7",
        entityId: "sys",
        systemId: "sys",
        environmentId: null,
        sequence: 7,
        occurredAt: at(6),
        percentStateChange: driver.percent(),
        status: H,
      },
    ]);
    expect(events[0]).not.toHaveProperty("flapping");
    for (const event of events) expect(healthEventSchema.parse(event)).toEqual(event);
    expect(driver.entity()).toMatchObject({ state: { status: H }, sequence: 7, history: "huhuhuh", flappingFrom: H });
  });

  it("marks later transitions flapping and stops at ≤ low with statusBefore and statusAfter", () => {
    const driver = new Driver(flappingWorkspace());
    driver.run(...alternating(6));
    expect(driver.entity().flappingFrom).toBe(H);

    // Still flapping: every transition is marked, no second flapping_started.
    const during = driver.run(...alternating(9));
    expect(during.filter(isTransition)).toHaveLength(9);
    expect(during.every((event) => isTransition(event) && event.flapping === true)).toBe(true);
    expect(driver.entity()).toMatchObject({ state: { status: U }, flappingFrom: H });

    // Steady unhealthy: no transition; the percentage decays until it is ≤ 20.
    let stopped: HealthEvent[] = [];
    let steadyRuns = 0;
    while (stopped.length === 0) {
      steadyRuns += 1;
      expect(steadyRuns).toBeLessThanOrEqual(21);
      const before = driver.percent();
      stopped = driver.run(U);
      if (stopped.length === 0) {
        expect(driver.percent()).toBeGreaterThan(20);
        expect(driver.percent()).toBeLessThanOrEqual(before);
      }
    }
    expect(steadyRuns).toBeGreaterThan(1);
    expect(driver.percent()).toBeLessThanOrEqual(20);
    const sequence = driver.entity().sequence;
    expect(stopped).toEqual([
      {
        type: "health.flapping_stopped",
        eventId: `sys#${sequence}`,
        entityId: "sys",
        systemId: "sys",
        environmentId: null,
        sequence,
        occurredAt: at(15 + steadyRuns),
        percentStateChange: driver.percent(),
        statusBefore: H,
        statusAfter: U,
      },
    ]);
    expect(healthEventSchema.parse(stopped[0])).toEqual(stopped[0]);
    expect(driver.entity().flappingFrom).toBeNull();

    // Afterwards transitions are unmarked again.
    const after = driver.run(H);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ type: "health.transition", previousStatus: U, newStatus: H, sequence: sequence + 1 });
    expect(after[0]).not.toHaveProperty("flapping");
  });

  it("high and low are inclusive", () => {
    // Find the exact percentages this stream reaches, and use them as thresholds.
    const stream: HealthStatus[] = [...alternating(4), ...Array.from<HealthStatus>({ length: 10 }).fill(H)];
    const percents = stream.map((_, index) => percentStateChange([H, ...stream.slice(0, index + 1)]));
    const high = percents[3] as number;
    expect(percents.slice(0, 3).every((value) => value < high)).toBe(true);
    // Without a change the percentage decays at every evaluation: stop at the fourth steady one.
    const stopIndex = 7;
    const low = percents[stopIndex] as number;
    for (let index = 4; index <= stopIndex; index += 1) expect(percents[index]).toBeLessThan(percents[index - 1] as number);

    const driver = new Driver(flappingWorkspace({ enabled: true, low, high }));
    driver.run(...stream);
    const startedAt = driver.perRun.findIndex((events) => events.some(isStarted));
    const stoppedAt = driver.perRun.findIndex((events) => events.some(isStopped));
    expect(startedAt).toBe(3);
    expect(stoppedAt).toBe(stopIndex);
    expect(driver.perRun[stopIndex]?.find(isStopped)?.percentStateChange).toBe(low);
  });

  it("a transition in the evaluation that stops the flap is marked flapping; the stop follows it", () => {
    // With fixed thresholds a transition never lowers the percentage, so a stop coincides with a
    // transition only when the thresholds changed meanwhile: reload the entity under a higher low.
    const first = new Driver(flappingWorkspace());
    first.run(...alternating(12));
    const flapping = first.entity();
    expect(flapping).toMatchObject({ state: { status: H }, flappingFrom: H, sequence: 13 });
    const changes = first.ws.changes();

    const ws = new SystemWorkspace(
      "sys",
      { system: changes.system, assignments: changes.assignments, slices: changes.slices, entities: changes.entities },
      { flapping: { enabled: true, low: 90, high: 95 } },
    );
    const events = ws.applyRun({
      runId: "late",
      systemId: "sys",
      checkId: "a",
      environmentId: null,
      status: D,
      latencyMs: null,
      timestamp: at(100),
      message: null,
      recordedAt: at(100),
    });
    expect(events.map((event) => [event.type, event.sequence])).toEqual([
      ["health.transition", 14],
      ["health.flapping_stopped", 15],
    ]);
    expect(events[0]).toMatchObject({ previousStatus: H, newStatus: D, flapping: true });
    expect(events[1]).toMatchObject({ statusBefore: H, statusAfter: D, occurredAt: at(100) });
    expect(ws.listEntities()[0]).toMatchObject({ flappingFrom: null, history: `${flapping.history?.slice(-20)}d` });
  });

  it("a flap that ends where it started notifies nothing", () => {
    const driver = new Driver(flappingWorkspace());
    const events = driver.run(...alternating(6), ...alternating(8), ...Array.from<HealthStatus>({ length: 21 }).fill(H));
    const started = events.findIndex(isStarted);
    const stopped = events.findIndex(isStopped);
    expect(started).toBeGreaterThan(0);
    expect(stopped).toBeGreaterThan(started);
    expect(events[started]).toMatchObject({ status: H });
    expect(events[stopped]).toMatchObject({ statusBefore: H, statusAfter: H });
    // Every transition between the two is muted by a consumer that drops flapping ones.
    const inside = events.slice(started + 1, stopped);
    expect(inside.length).toBeGreaterThan(0);
    expect(inside.every((event) => isTransition(event) && event.flapping === true)).toBe(true);
    expect(notifications(events).slice(-1)).toEqual([H]);
    expect(notifications(events.slice(started))).toEqual([]);
  });

  it("disabled: no flap events, no marks, no history", () => {
    const driver = new Driver(flappingWorkspace({ enabled: false, low: 20, high: 30 }));
    const events = driver.run(...alternating(40));
    expect(driver.percent()).toBeGreaterThan(90);
    expect(events).toHaveLength(40);
    for (const event of events) {
      expect(event.type).toBe("health.transition");
      expect(event).not.toHaveProperty("flapping");
    }
    expect(driver.entity()).toMatchObject({ sequence: 40, history: "", flappingFrom: null });
    expect(driver.ws.changes().entities).toEqual([driver.entity()]);
  });

  it("counts every evaluation, also those without a transition", () => {
    const driver = new Driver(flappingWorkspace());
    expect(driver.run(H, H, U, U, H, D)).toHaveLength(3);
    expect(driver.entity().history).toBe("hhhuuhd");
    // The history keeps the newest 21 statuses.
    driver.run(...alternating(30, D, H));
    expect(driver.entity().history).toBe(driver.statuses.slice(-21).map((status) => LETTER[status]).join(""));
  });

  it("an evaluation that changes nothing leaves the record alone", () => {
    const changes = (() => {
      const driver = new Driver(flappingWorkspace());
      driver.run(...Array.from<HealthStatus>({ length: 21 }).fill(H));
      return driver.ws.changes();
    })();
    const ws = new SystemWorkspace("sys", { system: changes.system, assignments: changes.assignments, slices: changes.slices, entities: changes.entities });
    expect(ws.applyTopologyChange(at(100))).toEqual([]);
    expect(ws.changes().entities).toEqual([]);
  });

  it("records stored before flap detection (no history fields) are rewritten only when something changes", () => {
    const legacy = (): EntityRecord => ({ entityId: "sys", systemId: "sys", environmentId: null, state: { status: H, healthyChecks: 1, totalChecks: 1 }, sequence: 4 });
    const loaded = () => ({ system: { systemId: "sys", environmentIds: [] }, assignments: [assignment()], entities: [legacy()] });
    // Disabled: nothing to store, the evaluation changes nothing.
    const off = new SystemWorkspace("sys", loaded(), { flapping: { enabled: false, low: 20, high: 30 } });
    expect(off.applyTopologyChange(at(1))).toEqual([]);
    expect(off.changes().entities).toEqual([]);
    // Enabled: the evaluation starts the history.
    const on = new SystemWorkspace("sys", loaded());
    expect(on.applyTopologyChange(at(1))).toEqual([]);
    expect(on.changes().entities).toEqual([{ ...legacy(), history: "h", flappingFrom: null }]);
  });

  it("a re-created entity starts a fresh history", () => {
    const driver = new Driver(flappingWorkspace());
    driver.run(...alternating(8));
    expect(driver.entity().flappingFrom).toBe(H);
    const sequence = driver.entity().sequence;

    driver.ws.deleteAssignment("a");
    expect(driver.ws.applyTopologyChange(at(50))).toEqual([]);
    expect(driver.entity().state).toBeNull();
    driver.ws.setAssignment(assignment());
    expect(driver.ws.applyTopologyChange(at(51))).toEqual([]);
    expect(driver.entity()).toMatchObject({ state: { status: H }, sequence, history: "h", flappingFrom: null });

    // A single change on a fresh history is 6.25%: an unmarked transition and nothing else.
    const events = driver.run(U);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "health.transition", sequence: sequence + 1, previousStatus: H, newStatus: U });
    expect(events[0]).not.toHaveProperty("flapping");
    expect(driver.entity()).toMatchObject({ history: "hu", flappingFrom: null });
  });
});

describe("SystemWorkspace: per-assignment flap settings (§10)", () => {
  it("an override on the entity's check applies: a lower high starts the flap earlier", () => {
    const ws = flappingWorkspace();
    expect(ws.setAssignment(assignment({ flapping: { high: 10, low: 5 } }))).toBe(true);
    expect(ws.applyTopologyChange(at(0))).toEqual([]);
    const driver = new Driver(ws);
    const events = driver.run(U, H);
    expect(events.map((event) => event.type)).toEqual(["health.transition", "health.transition", "health.flapping_started"]);
  });

  it("only a real change of the override is a topology change; an empty override equals none", () => {
    const ws = flappingWorkspace();
    expect(ws.setAssignment(assignment({ flapping: {} }))).toBe(false);
    expect(ws.setAssignment(assignment({ flapping: { high: 40 } }))).toBe(true);
    expect(ws.setAssignment(assignment({ flapping: { high: 40 } }))).toBe(false);
    expect(ws.setAssignment(assignment({ flapping: { high: 40, enabled: true } }))).toBe(true);
    expect(ws.setAssignment(assignment())).toBe(true);
    expect(ws.setAssignment(assignment({ flapping: {} }))).toBe(false);
  });

  it("turning detection off on the only contributor while flapping drops the flap silently, as the engine-wide switch does", () => {
    const driver = new Driver(flappingWorkspace());
    driver.run(...alternating(8));
    expect(driver.entity().flappingFrom).toBe(H);
    driver.ws.setAssignment(assignment({ flapping: { enabled: false } }));
    expect(driver.ws.applyTopologyChange(at(60))).toEqual([]);
    expect(driver.entity()).toMatchObject({ history: "", flappingFrom: null });
    const events = driver.run(U);
    expect(events).toHaveLength(1);
    expect(events[0]).not.toHaveProperty("flapping");
  });

  it("paused and disabled assignments do not contribute their overrides", () => {
    const ws = flappingWorkspace();
    ws.setAssignment(assignment({ checkId: "b", paused: true, flapping: { high: 10, low: 5 } }));
    ws.setAssignment(assignment({ checkId: "c", enabled: false, flapping: { high: 10, low: 5 } }));
    ws.setAssignment(assignment({ flapping: { enabled: false } }));
    expect(ws.applyTopologyChange(at(0))).toEqual([]);
    const events = new Driver(ws).run(...alternating(30));
    expect(events.filter(isFlapEvent)).toEqual([]);
  });
});

/**
 * SPEC §10's consumer: mutes transitions marked flapping, and on `flapping_stopped` sends one
 * net-change notification when statusBefore ≠ statusAfter. Returns the statuses it notified.
 */
function notifications(events: readonly HealthEvent[]): HealthStatus[] {
  const sent: HealthStatus[] = [];
  for (const event of events) {
    if (isTransition(event) && event.flapping !== true) sent.push(event.newStatus);
    else if (isStopped(event) && event.statusBefore !== event.statusAfter) sent.push(event.statusAfter);
  }
  return sent;
}

const flappingConfig = fc.oneof(
  fc.constant(DEFAULT_FLAPPING),
  fc
    .tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 50 }))
    .map(([low, spread]): FlappingConfig => ({ enabled: true, low, high: Math.min(100, low + spread) })),
);

describe("SystemWorkspace: the flapping consumer law (§10)", () => {
  test.prop(
    [
      fc.array(fc.constantFrom<HealthStatus>(H, D, U), { maxLength: 120 }),
      fc.constantFrom<HealthStatus>(H, U),
      flappingConfig,
    ],
    { numRuns: 300 },
  )("no recovery or problem is swallowed: the last notification is the final status", (stream, settle, config) => {
    const driver = new Driver(flappingWorkspace(config));
    // Whatever happened, 22 equal runs bring the percentage to 0 ≤ low: the flap (if any) is over.
    const events = driver.run(...stream, ...Array.from<HealthStatus>({ length: 22 }).fill(settle));
    const final = driver.entity();
    expect(final.flappingFrom).toBeNull();
    expect(final.state?.status).toBe(settle);

    let notified: HealthStatus = H;
    let flappingSince: HealthStatus | undefined;
    for (const event of events) {
      if (isStarted(event)) {
        expect(flappingSince).toBeUndefined();
        // The consumer has seen the status the flap starts from: nothing muted before it.
        expect(event.status).toBe(notified);
        flappingSince = event.status;
      } else if (isStopped(event)) {
        expect(event.statusBefore).toBe(flappingSince);
        flappingSince = undefined;
        if (event.statusBefore !== event.statusAfter) {
          expect(event.statusAfter).not.toBe(notified);
          notified = event.statusAfter;
        }
      } else if (isTransition(event)) {
        expect(event.flapping === true).toBe(flappingSince !== undefined);
        if (event.flapping !== true) {
          // Each notification is a real change of what the consumer last told.
          expect(event.previousStatus).toBe(notified);
          notified = event.newStatus;
        }
      }
    }
    expect(notified).toBe(final.state?.status);
    expect(notifications(events).at(-1) ?? H).toBe(final.state?.status);
    // Sequences are gapless over all events; the chain law holds over transitions only.
    expect(events.map((event) => event.sequence)).toEqual(events.map((_, index) => index + 1));
    const chain = events.filter(isTransition);
    chain.forEach((event, index) => expect(event.previousStatus).toBe(index === 0 ? H : chain[index - 1]?.newStatus));
    expect(events.filter(isFlapEvent).length % 2).toBe(0);
  });

  test.prop([fc.array(fc.constantFrom<HealthStatus>(H, D, U), { maxLength: 80 })])(
    "disabled flapping emits exactly the transitions, unmarked",
    (stream) => {
      const enabled = new Driver(flappingWorkspace());
      const disabled = new Driver(flappingWorkspace({ ...DEFAULT_FLAPPING, enabled: false }));
      const withFlaps = enabled.run(...stream);
      const without = disabled.run(...stream);
      expect(without.every((event) => isTransition(event) && !("flapping" in event))).toBe(true);
      const strip = (event: HealthTransitionEvent) => [event.previousStatus, event.newStatus, event.occurredAt, event.cause];
      expect(without.filter(isTransition).map(strip)).toEqual(withFlaps.filter(isTransition).map(strip));
      expect(disabled.entity().state).toEqual(enabled.entity().state);
    },
  );
});
