import { afterEach, describe, expect, it } from "vitest";
import {
  ConflictError,
  NotFoundError,
  ValidationError,
  createHealthEngine,
  replay,
  statusBefore,
  type HealthAdapter,
  type HealthEngine,
  type HealthEvent,
  type RunInput,
  type StoreTransaction,
  type TopologyDoc,
} from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";
import { proxyMethods } from "../src/testing/interceptors";

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
      environmentIds: ["prod", "staging"],
      checks: [{ checkId: "http", thresholds: { mode: "consecutive", healthy: { minSuccessCount: 1 }, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 2 } } }],
    },
  ],
};

function setup(options: { adapter?: HealthAdapter; flapping?: { enabled?: boolean; low?: number; high?: number } } = {}) {
  const adapter = options.adapter ?? createMemoryAdapter();
  let minute = 0;
  const engine = createHealthEngine({
    ...adapter,
    timers: false,
    clock: () => new Date(T0 + minute * MINUTE),
    ...(options.flapping === undefined ? {} : { flapping: options.flapping }),
  });
  open.push({ engine, adapter });
  return { engine, adapter, setMinute: (value: number) => (minute = value) };
}

const run = (minute: number, status: RunInput["status"], environmentId = "prod"): RunInput => ({
  runId: `${environmentId}-${minute}`,
  systemId: "web",
  checkId: "http",
  environmentId,
  status,
  timestamp: at(minute),
});

async function record(engine: HealthEngine, runs: RunInput[]): Promise<HealthEvent[]> {
  const events: HealthEvent[] = [];
  for (const input of runs) events.push(...(await engine.recordRun(input))._unsafeUnwrap().events);
  return events;
}

const ofEntity = (events: HealthEvent[], entityId: string) => events.filter((event) => event.entityId === entityId);

describe("flapping", () => {
  it("starts after the crossing transition, marks transitions while flapping, and stops with the net change", async () => {
    const { engine } = setup();
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const pattern: RunInput["status"][] = ["degraded", "healthy", "degraded", "healthy", "degraded", "healthy", "degraded"];
    const calm = Array.from({ length: 25 }, () => "degraded" as const);
    const events = ofEntity(await record(engine, [...pattern, ...calm].map((status, index) => run(index, status))), "web::prod");

    const started = events.findIndex((event) => event.type === "health.flapping_started");
    expect(started).toBeGreaterThan(0);
    const crossing = events[started - 1];
    expect(crossing?.type).toBe("health.transition");
    expect(crossing).not.toHaveProperty("flapping");
    const during = events.slice(started + 1).filter((event) => event.type === "health.transition");
    expect(during.length).toBeGreaterThan(0);
    expect(during.every((event) => event.type === "health.transition" && event.flapping === true)).toBe(true);
    const stopped = events.find((event) => event.type === "health.flapping_stopped");
    expect(stopped).toMatchObject({ statusAfter: "degraded" });
    expect(events.map((event) => event.sequence)).toEqual(events.map((_, index) => index + 1));
  });

  it("gives a consumer that mutes flapping transitions exactly one net-change notification", async () => {
    const { engine } = setup();
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const notified: string[] = [];
    const subscription = engine.subscribe(
      (event) => {
        if (event.entityId !== "web::prod") return;
        if (event.type === "health.transition" && event.flapping !== true) notified.push(event.newStatus);
        if (event.type === "health.flapping_stopped" && event.statusBefore !== event.statusAfter) notified.push(event.statusAfter);
      },
      { group: "pager" },
    );
    const flap: RunInput["status"][] = ["degraded", "healthy", "degraded", "healthy", "degraded", "healthy", "degraded", "healthy"];
    // Ends unhealthy: a problem that must not be swallowed by the muted flap.
    const tail = Array.from({ length: 25 }, () => "unhealthy" as const);
    await record(engine, [...flap, ...tail].map((status, index) => run(index, status)));
    await engine.flush();
    await subscription.unsubscribe();
    const final = (await engine.getHealth("web::prod"))._unsafeUnwrap()?.status;
    expect(final).toBe("unhealthy");
    expect(notified.at(-1)).toBe(final);
  });

  it("starts at exactly its high threshold and stops at exactly its low one (≥ high, ≤ low)", async () => {
    const S = { h: "healthy", u: "unhealthy" } as const;
    // Every run is the entity's status (one check that fails on one run); creating the entity is
    // its first evaluation ("h"), each run one more.
    const flapsOf = async (letters: string, flapping: { low: number; high: number }) => {
      const adapter = createMemoryAdapter();
      const engine = createHealthEngine({ ...adapter, timers: false, flapping });
      open.push({ engine, adapter });
      (await engine.upsertSystem({ systemId: "s", environmentIds: [] }))._unsafeUnwrap();
      const everyRun = { mode: "consecutive", degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 1 } } as const;
      (await engine.assignCheck({ systemId: "s", checkId: "c", thresholds: everyRun }))._unsafeUnwrap();
      const flaps: [number, string, number][] = [];
      for (const [index, letter] of [...letters.slice(1)].entries()) {
        const { events } = (await engine.recordRun({ systemId: "s", checkId: "c", status: S[letter as "h" | "u"] }))._unsafeUnwrap();
        for (const event of events) {
          if (event.type === "health.flapping_started" || event.type === "health.flapping_stopped") flaps.push([index + 1, event.type, event.percentStateChange]);
        }
      }
      return flaps;
    };
    // Exactly 40 % (1,520 / 38) at the last evaluation, computed 39.99999999999999 before.
    expect(await flapsOf("hhhhhuuhuhuhhhuuuuuuh", { low: 20, high: 40 })).toEqual([[20, "health.flapping_started", 40]]);
    // Exactly 30 % at the last evaluation while flapping, computed 30.000000000000007 before.
    const stop = await flapsOf("hhuuhuuuhhhuuhuhuuhhuhuuuuuuuuuuhuuhhuhhhhuuuhhuhhhhhuuuhhh", { low: 30, high: 50 });
    expect(stop.at(-1)).toEqual([58, "health.flapping_stopped", 30]);
  });

  it("can be disabled", async () => {
    const { engine } = setup({ flapping: { enabled: false } });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const events = await record(engine, Array.from({ length: 30 }, (_, index) => run(index, index % 2 === 0 ? "degraded" : "healthy")));
    expect(events.every((event) => event.type === "health.transition" && event.flapping === undefined)).toBe(true);
  });

  it("is validated", () => {
    expect(() => createHealthEngine({ ...createMemoryAdapter(), flapping: { low: 40, high: 30 } })).toThrow(ValidationError);
  });
});

describe("maintenance", () => {
  it("marks transitions inside [start, end) and emits started/ended once, with the net change", async () => {
    const { engine, setMinute } = setup({ flapping: { enabled: false } });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const added = (await engine.addMaintenance({ entityId: "web::prod", start: at(10), end: at(20), reason: "db upgrade" }))._unsafeUnwrap();
    expect(added.events).toEqual([]);
    expect((await engine.tick(at(9)))._unsafeUnwrap()).toEqual([]);
    const started = (await engine.tick(at(10)))._unsafeUnwrap();
    expect(started).toEqual([
      expect.objectContaining({ type: "health.maintenance_started", entityId: "web::prod", maintenanceId: added.maintenanceId, reason: "db upgrade", status: "healthy", occurredAt: at(10) }),
    ]);
    expect((await engine.tick(at(11)))._unsafeUnwrap()).toEqual([]);

    const events = await record(engine, [run(9, "degraded"), run(12, "healthy"), run(15, "unhealthy"), run(20, "healthy"), run(21, "unhealthy")]);
    const transitions = ofEntity(events, "web::prod").filter((event) => event.type === "health.transition");
    expect(transitions.map((event) => [event.occurredAt, event.type === "health.transition" && event.inMaintenance === true])).toEqual([
      [at(9), false],
      [at(12), true],
      [at(15), true],
      [at(20), false],
      [at(21), false],
    ]);
    setMinute(30);
    const ended = (await engine.tick())._unsafeUnwrap();
    expect(ended).toEqual([
      expect.objectContaining({ type: "health.maintenance_ended", entityId: "web::prod", statusBefore: "degraded", statusAfter: "degraded", occurredAt: at(20) }),
    ]);
    expect((await engine.tick())._unsafeUnwrap()).toEqual([]);
    expect((await engine.listMaintenance({ entityId: "web::prod" }))._unsafeUnwrap()).toEqual([
      expect.objectContaining({ maintenanceId: added.maintenanceId, state: "ended" }),
    ]);
  });

  it("gives a system-wide window one started and one ended event per entity, each on its own sequence", async () => {
    const { engine } = setup({ flapping: { enabled: false } });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    await record(engine, [run(1, "degraded")]);
    (await engine.addMaintenance({ entityId: "web", start: at(5), end: at(6) }))._unsafeUnwrap();
    const events = (await engine.tick(at(7)))._unsafeUnwrap();
    expect(events.map((event) => [event.type, event.entityId, event.sequence])).toEqual([
      ["health.maintenance_started", "web", 2],
      ["health.maintenance_started", "web::prod", 2],
      ["health.maintenance_started", "web::staging", 1],
      ["health.maintenance_ended", "web", 3],
      ["health.maintenance_ended", "web::prod", 3],
      ["health.maintenance_ended", "web::staging", 2],
    ]);
  });

  it("emits each boundary once across engines sharing the store", async () => {
    const adapter = createMemoryAdapter();
    const engines = [setup({ adapter }).engine, setup({ adapter }).engine, setup({ adapter }).engine];
    (await engines[0]!.applyTopology(TOPOLOGY))._unsafeUnwrap();
    (await engines[1]!.addMaintenance({ entityId: "web::staging", start: at(1), end: at(2) }))._unsafeUnwrap();
    const results = await Promise.all(engines.map((engine) => engine.tick(at(3))));
    const all = results.flatMap((result) => result._unsafeUnwrap());
    expect(all.map((event) => event.type).sort()).toEqual(["health.maintenance_ended", "health.maintenance_started"]);
  });

  it("cancels a window ended before it started, refuses to end twice or delete an active one", async () => {
    const { engine, setMinute } = setup();
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const future = (await engine.addMaintenance({ entityId: "web", start: at(60), end: at(120) }))._unsafeUnwrap();
    expect((await engine.endMaintenance({ maintenanceId: future.maintenanceId }))._unsafeUnwrap()).toEqual({ events: [] });
    expect((await engine.listMaintenance())._unsafeUnwrap()).toEqual([]);

    const active = (await engine.addMaintenance({ entityId: "web::prod", start: at(0), end: at(60) }))._unsafeUnwrap();
    expect(active.events.map((event) => event.type)).toEqual(["health.maintenance_started"]);
    expect((await engine.deleteMaintenance({ maintenanceId: active.maintenanceId }))._unsafeUnwrapErr()).toBeInstanceOf(ConflictError);
    setMinute(5);
    const ended = (await engine.endMaintenance({ maintenanceId: active.maintenanceId }))._unsafeUnwrap();
    expect(ended.events).toEqual([expect.objectContaining({ type: "health.maintenance_ended", occurredAt: at(5) })]);
    expect((await engine.endMaintenance({ maintenanceId: active.maintenanceId }))._unsafeUnwrapErr()).toBeInstanceOf(ConflictError);
    (await engine.deleteMaintenance({ maintenanceId: active.maintenanceId }))._unsafeUnwrap();
    expect((await engine.endMaintenance({ maintenanceId: active.maintenanceId }))._unsafeUnwrapErr()).toBeInstanceOf(NotFoundError);
  });

  it("reads each entity's log from the window's start on, not its whole history, and reports the statuses the whole log gives", async () => {
    const adapter = createMemoryAdapter();
    let rowsRead = 0;
    const counted = proxyMethods(adapter.store, (method, original) => {
      if (method !== "transaction") return original;
      return (options: unknown, fn: unknown) =>
        original(options, (tx: StoreTransaction) =>
          (fn as (tx: StoreTransaction) => Promise<unknown>)(
            proxyMethods(tx, (txMethod, txOriginal) => {
              if (txMethod !== "listTransitions") return txOriginal;
              return async (...args: unknown[]) => {
                const rows = (await txOriginal(...args)) as unknown[];
                rowsRead += rows.length;
                return rows;
              };
            }),
          ),
        );
    });
    const { engine, setMinute } = setup({ adapter: { ...adapter, store: counted }, flapping: { enabled: false } });
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    // 300 runs a minute apart alternate healthy and degraded: a transition a minute on web::prod and web.
    await record(engine, Array.from({ length: 300 }, (_, minute) => run(minute, minute % 2 === 0 ? "degraded" : "healthy")));
    // Two more transitions inside the window, one of them out of timestamp order.
    (await engine.addMaintenance({ entityId: "web", start: at(400), end: at(410) }))._unsafeUnwrap();
    setMinute(400);
    expect((await engine.tick())._unsafeUnwrap().map((event) => event.type)).toEqual([
      "health.maintenance_started",
      "health.maintenance_started",
      "health.maintenance_started",
    ]);
    await record(engine, [run(405, "degraded"), run(399, "healthy"), run(406, "unhealthy")]);
    rowsRead = 0;
    setMinute(420);
    const ended = (await engine.tick())._unsafeUnwrap();
    // Three entities: web and web::prod read their transitions since minute 400 and the few
    // before it back to the one preceding the first of them; web::staging has none.
    expect(rowsRead).toBeLessThanOrEqual(12);
    for (const entityId of ["web", "web::prod", "web::staging"]) {
      const log = (await engine.listTransitions({ entityId }))._unsafeUnwrap();
      const current = (await engine.getHealth(entityId))._unsafeUnwrap()?.status ?? "healthy";
      expect(ofEntity(ended, entityId)).toEqual([
        expect.objectContaining({
          type: "health.maintenance_ended",
          statusBefore: statusBefore(log, at(400), current),
          statusAfter: statusBefore(log, at(410), current),
        }),
      ]);
    }
    expect(ofEntity(ended, "web::prod")[0]).toMatchObject({ statusBefore: "healthy", statusAfter: "degraded" });
  });

  it("validates windows", async () => {
    const { engine } = setup();
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    const inverted = (await engine.addMaintenance({ entityId: "web", start: at(5), end: at(5) }))._unsafeUnwrapErr() as ValidationError;
    expect(inverted.issues.map((issue) => issue.path)).toEqual([["end"]]);
    expect((await engine.addMaintenance({ entityId: "ghost", start: at(1), end: at(2) }))._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
    expect((await engine.addMaintenance({ entityId: "web::dev", start: at(1), end: at(2) }))._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
    expect((await engine.addMaintenance({ entityId: "web::", start: at(1), end: at(2) }))._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
  });
});

describe("replay with flapping and maintenance", () => {
  it("produces the events the engine produces when tick runs before each run", async () => {
    const statuses: RunInput["status"][] = ["degraded", "healthy", "degraded", "healthy", "unhealthy", "healthy", "degraded", "degraded", "healthy", "unhealthy", "unhealthy", "healthy"];
    const runs = statuses.flatMap((status, index) => [run(index * 2, status), run(index * 2 + 1, index % 3 === 0 ? "degraded" : "healthy", "staging")]);
    const maintenance = [{ entityId: "web", start: at(4), end: at(9) }, { entityId: "web::prod", start: at(15), end: at(30) }];
    const expected = replay({ topology: TOPOLOGY, runs, options: { now: at(0), maintenance, until: at(40) } });

    const { engine, setMinute } = setup();
    (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
    for (const window of maintenance) (await engine.addMaintenance(window))._unsafeUnwrap();
    const events: HealthEvent[] = [];
    for (const input of runs) {
      events.push(...(await engine.tick(input.timestamp))._unsafeUnwrap());
      events.push(...(await engine.recordRun(input))._unsafeUnwrap().events);
    }
    setMinute(40);
    events.push(...(await engine.tick())._unsafeUnwrap());
    const strip = (list: HealthEvent[]) =>
      list.map((event) => ("maintenanceId" in event ? { ...event, maintenanceId: "" } : event));
    expect(strip(events)).toEqual(strip(expected.transitions));
    expect(expected.transitions.some((event) => event.type === "health.flapping_started")).toBe(true);
    expect(expected.transitions.some((event) => event.type === "health.maintenance_ended")).toBe(true);
  });
});
