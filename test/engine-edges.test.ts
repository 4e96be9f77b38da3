import { afterEach, describe, expect, it } from "vitest";
import { createHealthEngine, type HealthAdapter, type HealthEmitter, type HealthEngine, type HealthEvent, type RunInput, type TopologyDoc } from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";

const T0 = Date.parse("2026-11-30T10:00:00Z");
const MINUTE = 60_000;
const at = (minute: number) => new Date(T0 + minute * MINUTE).toISOString();
const open: Array<{ engine: HealthEngine; adapter: HealthAdapter }> = [];
afterEach(async () => {
  for (const { engine, adapter } of open.splice(0)) {
    await engine.close();
    await adapter.close();
  }
});
const TOPOLOGY: TopologyDoc = {
  systems: [
    {
      systemId: "web",
      environmentIds: ["prod"],
      checks: [{ checkId: "http", thresholds: { mode: "consecutive", healthy: { minSuccessCount: 1 }, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 2 } } }],
    },
  ],
};
const run = (minute: number, status: RunInput["status"], runId = `r-${minute}-${status}`): RunInput => ({
  runId, systemId: "web", checkId: "http", environmentId: "prod", status, timestamp: at(minute),
});
async function record(engine: HealthEngine, runs: RunInput[]): Promise<HealthEvent[]> {
  const events: HealthEvent[] = [];
  for (const input of runs) events.push(...(await engine.recordRun(input))._unsafeUnwrap().events);
  return events;
}

// Edges of the engine and the memory adapter that a mutation review (session 8) found no test
// held: each test here failed against a small change to the code it names.

/** The emitter with some of its methods replaced (each override gets the original emitter). */
function emitterWith(emitter: HealthEmitter, overrides: { [K in keyof HealthEmitter]?: (target: HealthEmitter) => HealthEmitter[K] }): HealthEmitter {
  return new Proxy(emitter, {
    get: (target, property) => {
      const override = overrides[property as keyof HealthEmitter];
      if (override !== undefined) return override(target);
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe("engine and memory adapter edges", () => {
  it("two windows due in one late tick each read the status at their own start", async () => {
    const adapter = createMemoryAdapter();
    const engine = createHealthEngine({ ...adapter, timers: false, clock: () => new Date(T0), flapping: { enabled: false } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const a = (await engine.addMaintenance({ entityId: "web::prod", start: at(1), end: at(10) }))._unsafeUnwrap();
    const b = (await engine.addMaintenance({ entityId: "web::prod", start: at(6), end: at(10) }))._unsafeUnwrap();
    // healthy -> degraded @2, degraded -> unhealthy @4, unhealthy -> healthy @8
    await record(engine, [run(2, "degraded"), run(4, "unhealthy"), run(8, "healthy")]);
    // The engine was down: both windows' boundaries are processed by one late tick.
    const events = (await engine.tick(at(11)))._unsafeUnwrap();
    const of = (id: string, type: string) => events.find((e) => e.entityId === "web::prod" && e.type === type && "maintenanceId" in e && e.maintenanceId === id);
    expect(of(a.maintenanceId, "health.maintenance_started")).toMatchObject({ status: "healthy" });
    expect(of(a.maintenanceId, "health.maintenance_ended")).toMatchObject({ statusBefore: "healthy", statusAfter: "healthy" });
    expect(of(b.maintenanceId, "health.maintenance_started")).toMatchObject({ status: "unhealthy" });
  });

  it("a handler that succeeded is never failed or dead-lettered because its ack is slow", async () => {
    const adapter = createMemoryAdapter();
    const fails: string[] = [];
    const slowAck = emitterWith(adapter.emitter, {
      ack: (target) => async (options) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return target.ack(options);
      },
      fail: (target) => async (options) => {
        fails.push(options.eventId);
        return target.fail(options);
      },
    });
    const engine = createHealthEngine({ ...adapter, emitter: slowAck, timers: false, flapping: { enabled: false }, delivery: { pollIntervalMs: 5, leaseMs: 30, maxAttempts: 1 } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const handled: string[] = [];
    const sub = engine.subscribe((event) => void handled.push(event.eventId), { group: "g" });
    await record(engine, [run(1, "degraded")]);
    await engine.flush();
    await sub.unsubscribe();
    // Redelivery while the ack is in flight is at-least-once and fine; a failure is not.
    expect([...new Set(handled)].sort()).toEqual(["web#1", "web::prod#1"]);
    expect(fails).toEqual([]);
    expect((await engine.listDeadLetters())._unsafeUnwrap()).toEqual([]);
  });

  it("store.prune keeps, of transitions tied at the latest time before the horizon, only the last one", async () => {
    const adapter = createMemoryAdapter();
    const engine = createHealthEngine({ ...adapter, timers: false, clock: () => new Date(T0 + 100 * MINUTE), flapping: { enabled: false } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    // Two transitions at the same millisecond (seq 1, 2), then one later (seq 3).
    await record(engine, [run(1, "degraded", "x1"), run(1, "healthy", "x2"), run(50, "degraded", "x3")]);
    const pruned = await adapter.store.prune({ runsBefore: new Date(0), dailyBefore: new Date(0), transitionsBefore: new Date(at(2)) });
    expect(pruned.transitions).toBe(2); // seq 1 of "web" and of "web::prod"
    for (const entityId of ["web", "web::prod"]) {
      const log = (await engine.listTransitions({ entityId }))._unsafeUnwrap();
      expect(log.map((t) => t.sequence)).toEqual([2, 3]);
    }
  });

  it("one runRetention rolls every hourly bucket past the horizon, even more than one chunk (500)", async () => {
    const adapter = createMemoryAdapter();
    const engine = createHealthEngine({ ...adapter, timers: false, clock: () => new Date(T0), flapping: { enabled: false } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const HOUR = 60 * MINUTE;
    const runs: RunInput[] = [];
    for (let hour = 0; hour < 520; hour += 1) {
      runs.push({ runId: `h${hour}`, systemId: "web", checkId: "http", environmentId: "prod", status: "healthy", timestamp: new Date(T0 - 40 * 24 * HOUR - hour * HOUR).toISOString() });
    }
    (await engine.recordRuns(runs))._unsafeUnwrap();
    const outcome = (await engine.runRetention({ now: new Date(T0) }))._unsafeUnwrap();
    expect(outcome.hourlyRolled).toBe(520);
    expect(await adapter.store.listSystemsWithBucketsBefore({ granularity: "hour", before: new Date(T0 - 30 * 24 * HOUR) })).toEqual([]);
  });

  it("claim hands out the oldest deliverable heads first (commit order across entities)", async () => {
    const adapter = createMemoryAdapter();
    const engine = createHealthEngine({ ...adapter, timers: false, clock: () => new Date(T0), flapping: { enabled: false } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    // positions: web#1 (1), web::prod#1 (2), web#2 (3), web::prod#2 (4)
    await record(engine, [run(1, "degraded"), run(2, "healthy")]);
    const claim = async () => (await adapter.emitter.claim({ group: "g", consumerId: "c", limit: 1, leaseMs: 60_000, now: new Date(T0) }))[0]!.event.eventId;
    const first = await claim();
    expect(first).toBe("web#1");
    await adapter.emitter.ack({ group: "g", eventIds: [first] });
    expect(await claim()).toBe("web::prod#1");
  });

  it("endMaintenance with `at` after the scheduled end never lengthens the window", async () => {
    const adapter = createMemoryAdapter();
    const engine = createHealthEngine({ ...adapter, timers: false, clock: () => new Date(T0 + 15 * MINUTE), flapping: { enabled: false } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const { maintenanceId } = (await engine.addMaintenance({ entityId: "web::prod", start: at(10), end: at(20) }))._unsafeUnwrap();
    (await engine.endMaintenance({ maintenanceId, at: at(30) }))._unsafeUnwrap();
    const [window] = (await engine.listMaintenance({ entityId: "web::prod" }))._unsafeUnwrap();
    expect(Date.parse(window!.end)).toBe(Date.parse(at(20)));
    const ended = (await engine.tick(at(21)))._unsafeUnwrap();
    expect(ended).toEqual([expect.objectContaining({ type: "health.maintenance_ended", occurredAt: at(20) })]);
  });

  it("ending a scheduled window exactly at its start deletes it: no zero-length window, no events", async () => {
    const adapter = createMemoryAdapter();
    const engine = createHealthEngine({ ...adapter, timers: false, clock: () => new Date(T0), flapping: { enabled: false } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const { maintenanceId } = (await engine.addMaintenance({ entityId: "web::prod", start: at(10), end: at(20) }))._unsafeUnwrap();
    expect((await engine.endMaintenance({ maintenanceId, at: at(10) }))._unsafeUnwrap().events).toEqual([]);
    expect((await engine.listMaintenance())._unsafeUnwrap()).toEqual([]);
    expect((await engine.tick(at(30)))._unsafeUnwrap()).toEqual([]);
  });

  it("subscribe from now, then write at once: the write's events are delivered even if registering the group is slow", async () => {
    const adapter = createMemoryAdapter();
    const slowRegister = emitterWith(adapter.emitter, {
      registerGroup: (target) => async (options) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return target.registerGroup(options);
      },
    });
    const engine = createHealthEngine({ ...adapter, emitter: slowRegister, timers: false, clock: () => new Date(T0), flapping: { enabled: false }, delivery: { pollIntervalMs: 5 } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const handled: string[] = [];
    engine.subscribe((event) => void handled.push(event.eventId), { group: "g", from: "now" });
    await record(engine, [run(1, "degraded")]);
    await engine.flush();
    expect(handled.sort()).toEqual(["web#1", "web::prod#1"]);
  });

  it("a commit that lands while the loop is claiming still wakes it (no wait for the poll interval)", async () => {
    const adapter = createMemoryAdapter();
    const slowClaim = emitterWith(adapter.emitter, {
      claim: (target) => async (options) => {
        const claimed = await target.claim(options);
        await new Promise((resolve) => setTimeout(resolve, 30));
        return claimed;
      },
    });
    const engine = createHealthEngine({ ...adapter, emitter: slowClaim, timers: false, clock: () => new Date(T0), flapping: { enabled: false }, delivery: { pollIntervalMs: 60_000 } });
    open.push({ engine, adapter });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const handled: string[] = [];
    engine.subscribe((event) => void handled.push(event.eventId), { group: "g" });
    await new Promise((resolve) => setTimeout(resolve, 10)); // the loop is inside its first (empty) claim
    await record(engine, [run(1, "degraded")]);
    // Far below the 60 s poll interval: only a lost wake-up waits that long.
    const deadline = Date.now() + 5_000;
    while (handled.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(handled.sort()).toEqual(["web#1", "web::prod#1"]);
  });
});
