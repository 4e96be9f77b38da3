import fc from "fast-check";
import type { HealthEngine, HealthEvent, HealthStatus, HealthTransitionEvent, RecordOutcome, TopologyDoc } from "healthstate";
import { describe, expect, it } from "vitest";
import { idsOf, topologyOf } from "../fixtures";
import { HANG_GUARD_MS, Harness } from "../harness";
import { pendingTasks, scheduledPorts } from "../interceptors";
import { failure, groupBy, ok, within } from "../support";
import type { SuiteContext } from "./context";

const MINUTE = 60_000;
const T0 = Date.parse("2031-04-01T10:00:00.000Z");
/** The ISO time `minutes` after T0 (fractions allowed). */
const at = (minutes: number) => new Date(T0 + minutes * MINUTE).toISOString();
/** One millisecond before `at(minutes)`. */
const justBefore = (minutes: number) => new Date(T0 + minutes * MINUTE - 1).toISOString();

/** A clock the test moves by hand, in minutes after T0. */
class ManualClock {
  constructor(public minutes: number) {}
  readonly now = (): Date => new Date(T0 + this.minutes * MINUTE);
}

/** Engine options of this suite: a manual clock, and no flap detection (its events would only add noise). */
const optionsOf = (clock: ManualClock) => ({ clock: clock.now, flapping: { enabled: false } });

const isTransition = (event: HealthEvent): event is HealthTransitionEvent => event.type === "health.transition";

function flushed(engine: HealthEngine): Promise<void> {
  return within(engine.flush(), HANG_GUARD_MS, () => "flush() did not resolve");
}

async function recordAt(engine: HealthEngine, runId: string, systemId: string, environmentId: string | null, minutes: number | string, status: HealthStatus) {
  const timestamp = typeof minutes === "string" ? minutes : at(minutes);
  const outcome = await ok(engine.recordRun({ runId, systemId, checkId: "check", environmentId, status, timestamp }), `recordRun ${runId}`);
  return outcome.events;
}

/** Each entity's events in sequence order are numbered 1..n. */
function expectGapless(events: readonly HealthEvent[]): void {
  for (const [entityId, list] of groupBy(events, (event) => event.entityId)) {
    const sequences = list.map((event) => event.sequence).sort((a, b) => a - b);
    expect(sequences, `${entityId}: boundary events and transitions share one gapless sequence`).toEqual(sequences.map((_, index) => index + 1));
  }
}

const TICK_TOPOLOGY: TopologyDoc = { systems: [...topologyOf(["tick-a"], ["prod", "staging"]).systems, ...topologyOf(["tick-b"]).systems] };
/** Each maintenance target and the entities it covers (a rollup id covers the whole system). */
const TICK_TARGETS: Record<string, readonly string[]> = {
  "tick-a": ["tick-a", "tick-a::prod", "tick-a::staging"],
  "tick-a::prod": ["tick-a::prod"],
  "tick-a::staging": ["tick-a::staging"],
  "tick-b": ["tick-b"],
};
const RUN_TARGETS = [
  { systemId: "tick-a", environmentId: "prod" },
  { systemId: "tick-a", environmentId: "staging" },
  { systemId: "tick-b", environmentId: null },
] as const;

const tickScenarioArbitrary = fc.record({
  windows: fc.array(
    fc.record({ target: fc.constantFrom(...Object.keys(TICK_TARGETS)), start: fc.integer({ min: 0, max: 6 }), length: fc.integer({ min: 1, max: 4 }) }),
    { minLength: 1, maxLength: 4 },
  ),
  calls: fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant("tick" as const), engine: fc.nat({ max: 2 }), minute: fc.integer({ min: 0, max: 12 }) }),
      fc.record({
        kind: fc.constant("run" as const),
        engine: fc.nat({ max: 2 }),
        target: fc.nat({ max: RUN_TARGETS.length - 1 }),
        status: fc.constantFrom<HealthStatus>("healthy", "degraded", "unhealthy"),
        minute: fc.integer({ min: 0, max: 12 }),
      }),
    ),
    { minLength: 3, maxLength: 10 },
  ),
});

/** SPEC §11: maintenance windows, their boundary events (once each, across replicas) and inMaintenance marks. */
export function describeMaintenance({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("maintenance", () => {
    it(
      "inMaintenance marks exactly the transitions with start ≤ occurredAt < end; maintenance_started and maintenance_ended are emitted once each, by whichever engine ticks, with statusBefore/statusAfter, in the entity's sequence, and reach a subscriber",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(0);
        const [first, second] = await harness.enginePair(optionsOf(clock));
        await ok(first.applyTopology(topologyOf(["maint"], ["prod", "staging"])), "applyTopology");
        const delivered: HealthEvent[] = [];
        second.subscribe((event) => void delivered.push(event), { group: "maintenance-observer" });

        const added = await ok(first.addMaintenance({ entityId: "maint::prod", start: at(10), end: at(20), reason: "database upgrade" }), "addMaintenance");
        expect(added.events, "nothing is due yet").toEqual([]);
        expect(await ok(second.listMaintenance(), "listMaintenance")).toEqual([
          {
            maintenanceId: added.maintenanceId,
            entityId: "maint::prod",
            systemId: "maint",
            environmentId: "prod",
            start: at(10),
            end: at(20),
            reason: "database upgrade",
            state: "scheduled",
          },
        ]);
        const events: HealthEvent[] = [];
        events.push(...(await recordAt(first, "m-5", "maint", "prod", 5, "degraded")));
        expect(await ok(second.tick(justBefore(10)), "tick just before the start")).toEqual([]);
        const started = await ok(second.tick(at(10)), "tick at the start");
        expect(started).toEqual([
          expect.objectContaining({
            type: "health.maintenance_started",
            entityId: "maint::prod",
            systemId: "maint",
            environmentId: "prod",
            maintenanceId: added.maintenanceId,
            reason: "database upgrade",
            status: "degraded",
            occurredAt: at(10),
            sequence: 2,
          }),
        ]);
        events.push(...started);
        expect(await ok(first.tick(at(10)), "tick at the start, on the other engine"), "the start is emitted once").toEqual([]);
        expect(await ok(second.tick(at(15)), "tick inside")).toEqual([]);

        events.push(...(await recordAt(first, "m-10", "maint", "prod", 10, "healthy")));
        events.push(...(await recordAt(second, "m-late", "maint", "prod", justBefore(10), "unhealthy")));
        events.push(...(await recordAt(first, "m-20-", "maint", "prod", justBefore(20), "healthy")));
        events.push(...(await recordAt(second, "m-20", "maint", "prod", 20, "degraded")));
        const marks = events
          .filter(isTransition)
          .filter((event) => event.entityId === "maint::prod")
          .map((event) => [event.occurredAt, event.inMaintenance === true]);
        expect(marks, "marked exactly when start ≤ occurredAt < end").toEqual([
          [at(5), false],
          [at(10), true],
          [justBefore(10), false],
          [justBefore(20), true],
          [at(20), false],
        ]);
        expect(events.filter(isTransition).filter((event) => event.entityId !== "maint::prod" && event.inMaintenance === true), "other entities are not covered").toEqual([]);

        clock.minutes = 25;
        const ended = await ok(first.tick(), "tick after the end");
        expect(ended, "statusBefore: just before the start; statusAfter: just before the end").toEqual([
          expect.objectContaining({
            type: "health.maintenance_ended",
            entityId: "maint::prod",
            maintenanceId: added.maintenanceId,
            statusBefore: "degraded",
            statusAfter: "healthy",
            occurredAt: at(20),
            sequence: 7,
          }),
        ]);
        events.push(...ended);
        expect(await ok(second.tick(at(30)), "tick again"), "the end is emitted once").toEqual([]);
        expect((await ok(second.listMaintenance({ entityId: "maint::prod" }), "listMaintenance"))[0]?.state).toBe("ended");
        expectGapless(events);
        await flushed(second);
        expect(idsOf(delivered)).toEqual(idsOf(events));
        for (const event of delivered) expect(event, `${event.eventId} delivered as returned`).toEqual(events.find((candidate) => candidate.eventId === event.eventId));
      },
      timeout,
    );

    it(
      "a system-wide window gives one maintenance_started and one maintenance_ended per entity of the system, each on its own sequence, and is listed for every entity",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(0);
        const [first, second] = await harness.enginePair(optionsOf(clock));
        await ok(first.applyTopology({ systems: [...topologyOf(["fleet"], ["prod", "staging"]).systems, ...topologyOf(["bystander"]).systems] }), "applyTopology");
        await recordAt(first, "fleet-1", "fleet", "prod", 1, "degraded");
        const system = await ok(first.addMaintenance({ entityId: "fleet", start: at(5), end: at(6) }), "addMaintenance(fleet)");
        const narrow = await ok(first.addMaintenance({ entityId: "fleet::prod", start: at(50), end: at(60) }), "addMaintenance(fleet::prod)");
        const events = await ok(second.tick(at(7)), "tick");
        expect(events.map((event) => [event.type, event.entityId, event.sequence, "maintenanceId" in event ? event.maintenanceId : undefined]).sort()).toEqual(
          [
            ["health.maintenance_ended", "fleet", 3, system.maintenanceId],
            ["health.maintenance_ended", "fleet::prod", 3, system.maintenanceId],
            ["health.maintenance_ended", "fleet::staging", 2, system.maintenanceId],
            ["health.maintenance_started", "fleet", 2, system.maintenanceId],
            ["health.maintenance_started", "fleet::prod", 2, system.maintenanceId],
            ["health.maintenance_started", "fleet::staging", 1, system.maintenanceId],
          ].sort(),
        );
        expect(events.find((event) => event.type === "health.maintenance_ended" && event.entityId === "fleet::prod")).toMatchObject({
          statusBefore: "degraded",
          statusAfter: "degraded",
        });
        const listed = async (entityId: string) => (await ok(second.listMaintenance({ entityId }), `listMaintenance(${entityId})`)).map((entry) => entry.maintenanceId);
        expect(await listed("fleet::staging"), "the system-wide window covers every environment").toEqual([system.maintenanceId]);
        expect(await listed("fleet::prod"), "ordered by start").toEqual([system.maintenanceId, narrow.maintenanceId]);
        expect(await listed("fleet"), "a rollup id lists every window of its system").toEqual([system.maintenanceId, narrow.maintenanceId]);
        expect(await listed("bystander")).toEqual([]);
      },
      timeout,
    );

    it(
      "three engines (processes when cross-process) ticking and recording at once, under fast-check interleavings: each boundary of each window is emitted exactly once per covered entity, at its time; sequences stay gapless; transitions are marked by their time alone",
      () =>
        fc.assert(
          fc.asyncProperty(fc.scheduler(), tickScenarioArbitrary, async (s, scenario) => {
            const harness = await Harness.open(config);
            try {
              const clock = new ManualClock(-1);
              const remote = await harness.otherProcess();
              const setup = harness.engine(harness.adapter, optionsOf(clock));
              await ok(setup.applyTopology(TICK_TOPOLOGY), "applyTopology");
              const windows = [];
              for (const window of scenario.windows) {
                const { maintenanceId } = await ok(
                  setup.addMaintenance({ entityId: window.target, start: at(window.start), end: at(window.start + window.length) }),
                  "addMaintenance",
                );
                windows.push({ ...window, maintenanceId });
              }
              const observer = harness.engine(remote, optionsOf(clock));
              const delivered: HealthEvent[] = [];
              observer.subscribe((event) => void delivered.push(event), { group: "tick-observer" });

              const engines = [harness.adapter, harness.adapter, remote].map((ports, index) =>
                harness.engine(scheduledPorts(s, ports, `engine${index}`), optionsOf(clock)),
              );
              const calls = scenario.calls.map((call, index): Promise<HealthEvent[]> => {
                const engine = engines[call.engine] as HealthEngine;
                if (call.kind === "tick") return ok(engine.tick(at(call.minute)), `call ${index}: tick(${call.minute})`);
                const target = RUN_TARGETS[call.target] as (typeof RUN_TARGETS)[number];
                return ok(
                  engine.recordRun({ runId: `tick-run-${index}`, checkId: "check", ...target, status: call.status, timestamp: at(call.minute + 0.5) }),
                  `call ${index}: recordRun`,
                ).then((outcome: RecordOutcome) => outcome.events);
              });
              const results = await within(s.waitFor(Promise.all(calls)), HANG_GUARD_MS, () => `concurrent calls did not settle; scheduled tasks pending: ${pendingTasks(s)}`);
              const events = [...results.flat(), ...(await ok(setup.tick(at(30)), "a last tick after every window"))];

              expect(new Set(events.map((event) => event.eventId)).size, "no event returned twice").toBe(events.length);
              const boundaries = events.filter((event) => !isTransition(event)).map((event) => [event.type, event.entityId, "maintenanceId" in event ? event.maintenanceId : "", event.occurredAt]);
              const expected = windows.flatMap((window) =>
                (TICK_TARGETS[window.target] ?? []).flatMap((entityId) => [
                  ["health.maintenance_started", entityId, window.maintenanceId, at(window.start)],
                  ["health.maintenance_ended", entityId, window.maintenanceId, at(window.start + window.length)],
                ]),
              );
              expect(boundaries.map((boundary) => JSON.stringify(boundary)).sort(), "each boundary once per covered entity, in total").toEqual(
                expected.map((boundary) => JSON.stringify(boundary)).sort(),
              );
              expectGapless(events);
              for (const event of events.filter(isTransition)) {
                const time = Date.parse(event.occurredAt);
                const covered = windows.some(
                  (window) => (TICK_TARGETS[window.target] ?? []).includes(event.entityId) && Date.parse(at(window.start)) <= time && time < Date.parse(at(window.start + window.length)),
                );
                expect(event.inMaintenance === true, `${event.eventId} at ${event.occurredAt}: inMaintenance`).toBe(covered);
              }
              for (const [entityId, list] of groupBy(events.filter(isTransition), (event) => event.entityId)) {
                const chain = list.sort((a, b) => a.sequence - b.sequence);
                chain.slice(1).forEach((event, index) => expect(event.previousStatus, `${entityId}: transitions chained`).toBe(chain[index]?.newStatus));
              }
              await flushed(observer);
              expect(idsOf(delivered), "every event delivered").toEqual(idsOf(events));
              if (harness.backgroundErrors.length > 0) throw new Error(`background error: ${String(harness.backgroundErrors[0])}`, { cause: harness.backgroundErrors[0] });
            } finally {
              await harness.close();
            }
          }),
          { numRuns: config.numRuns },
        ),
      timeout,
    );

    it(
      "a window that opens after several transitions reports the entity's status then, and the status at its end: the newest transitions, not the first ones",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(0);
        const engine = harness.engine(harness.adapter, optionsOf(clock));
        await ok(engine.applyTopology(topologyOf(["history"])), "applyTopology");
        const statuses: HealthStatus[] = ["unhealthy", "healthy", "degraded", "unhealthy", "healthy", "degraded"];
        for (const [minute, status] of statuses.entries()) await recordAt(engine, `history-${minute}`, "history", null, minute + 1, status);
        const window = await ok(engine.addMaintenance({ entityId: "history", start: at(10), end: at(20) }), "addMaintenance");
        expect(window.events).toEqual([]);
        const started = await ok(engine.tick(at(10)), "tick at the start");
        expect(started.map((event) => [event.type, "status" in event ? event.status : undefined])).toEqual([["health.maintenance_started", "degraded"]]);
        await recordAt(engine, "history-inside", "history", null, 12, "healthy");
        const ended = await ok(engine.tick(at(20)), "tick at the end");
        expect(ended).toEqual([expect.objectContaining({ type: "health.maintenance_ended", statusBefore: "degraded", statusAfter: "healthy" })]);
      },
      timeout,
    );

    it(
      "ending a window early emits maintenance_ended at that time and unmarks later transitions; ending a future window cancels it without events; ending twice or deleting an active window is a ConflictError; unknown or deleted windows are a NotFoundError",
      async () => {
        const harness = await harnesses.open();
        const clock = new ManualClock(0);
        const [first, second] = await harness.enginePair(optionsOf(clock));
        await ok(first.applyTopology(topologyOf(["early"], ["prod"])), "applyTopology");

        const active = await ok(first.addMaintenance({ entityId: "early::prod", start: at(0), end: at(60) }), "addMaintenance (starting now)");
        expect(active.events, "a window that starts now starts at once").toEqual([
          expect.objectContaining({ type: "health.maintenance_started", entityId: "early::prod", maintenanceId: active.maintenanceId, occurredAt: at(0), sequence: 1 }),
        ]);
        expect(await ok(second.tick(at(1)), "tick"), "and only once").toEqual([]);
        expect((await failure(second.deleteMaintenance({ maintenanceId: active.maintenanceId }), "deleteMaintenance(active)")).type).toBe("conflict");
        const inside = await recordAt(second, "early-5", "early", "prod", 5, "unhealthy");
        expect(inside.find((event) => event.entityId === "early::prod")).toMatchObject({ inMaintenance: true, sequence: 2 });

        clock.minutes = 10;
        const ended = await ok(second.endMaintenance({ maintenanceId: active.maintenanceId }), "endMaintenance (now)");
        expect(ended.events).toEqual([
          expect.objectContaining({ type: "health.maintenance_ended", entityId: "early::prod", statusBefore: "healthy", statusAfter: "unhealthy", occurredAt: at(10), sequence: 3 }),
        ]);
        const after = await recordAt(first, "early-15", "early", "prod", 15, "healthy");
        expect(after.find((event) => event.entityId === "early::prod"), "after the effective end, not marked").not.toHaveProperty("inMaintenance");
        expect(await ok(first.tick(at(70)), "tick past the original end"), "the end is not emitted again").toEqual([]);
        expect(await ok(first.listMaintenance({ entityId: "early::prod" }), "listMaintenance")).toEqual([
          expect.objectContaining({ maintenanceId: active.maintenanceId, end: at(10), state: "ended" }),
        ]);
        expect((await failure(first.endMaintenance({ maintenanceId: active.maintenanceId }), "endMaintenance again")).type).toBe("conflict");

        clock.minutes = 30;
        const later = await ok(first.addMaintenance({ entityId: "early", start: at(20), end: at(40) }), "addMaintenance (already started)");
        expect(later.events.map((event) => [event.type, event.entityId]).sort()).toEqual([
          ["health.maintenance_started", "early"],
          ["health.maintenance_started", "early::prod"],
        ]);
        const endedAt = await ok(second.endMaintenance({ maintenanceId: later.maintenanceId, at: at(25) }), "endMaintenance at a past time");
        expect(endedAt.events.map((event) => [event.type, event.entityId, event.occurredAt]).sort()).toEqual([
          ["health.maintenance_ended", "early", at(25)],
          ["health.maintenance_ended", "early::prod", at(25)],
        ]);

        const future = await ok(first.addMaintenance({ entityId: "early::prod", start: at(100), end: at(120) }), "addMaintenance (future)");
        expect(await ok(second.endMaintenance({ maintenanceId: future.maintenanceId }), "endMaintenance (future)"), "cancelled without events").toEqual({ events: [] });
        expect((await ok(first.listMaintenance(), "listMaintenance")).map((entry) => entry.maintenanceId), "a cancelled window is gone").not.toContain(future.maintenanceId);
        expect(await ok(first.tick(at(130)), "tick past the cancelled window"), "a cancelled window emits nothing").toEqual([]);
        expect((await failure(first.endMaintenance({ maintenanceId: future.maintenanceId }), "endMaintenance(cancelled)")).type).toBe("not_found");
        expect((await failure(first.deleteMaintenance({ maintenanceId: future.maintenanceId }), "deleteMaintenance(cancelled)")).type).toBe("not_found");

        await ok(second.deleteMaintenance({ maintenanceId: active.maintenanceId }), "deleteMaintenance(ended)");
        expect((await ok(first.listMaintenance(), "listMaintenance")).map((entry) => entry.maintenanceId)).toEqual([later.maintenanceId]);
        expect((await failure(first.endMaintenance({ maintenanceId: active.maintenanceId }), "endMaintenance(deleted)")).type).toBe("not_found");
        expect((await failure(first.endMaintenance({ maintenanceId: "no-such-window" }), "endMaintenance(unknown)")).type).toBe("not_found");
        expect((await failure(first.deleteMaintenance({ maintenanceId: "no-such-window" }), "deleteMaintenance(unknown)")).type).toBe("not_found");
      },
      timeout,
    );
  });
}
