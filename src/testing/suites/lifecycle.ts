import type { HealthEngine, HealthError, HealthEvent, RunInput } from "healthstate";
import { describe, expect, it } from "vitest";
import { eventsOf, flips, idsOf, runsOf, topologyOf } from "../fixtures";
import { HANG_GUARD_MS } from "../harness";
import { failure, ok, within } from "../support";
import type { SuiteContext } from "./context";

function flushed(engine: HealthEngine): Promise<void> {
  return within(engine.flush(), HANG_GUARD_MS, () => "flush() did not resolve");
}

/** Every engine operation, called once with valid input. */
function everyOperation(engine: HealthEngine, run: RunInput): Record<string, Promise<HealthError>> {
  return {
    applyTopology: failure(engine.applyTopology(topologyOf(["closed"])), "applyTopology"),
    upsertSystem: failure(engine.upsertSystem({ systemId: "closed", environmentIds: [] }), "upsertSystem"),
    assignCheck: failure(engine.assignCheck({ systemId: "closed", checkId: "check" }), "assignCheck"),
    unassignCheck: failure(engine.unassignCheck({ systemId: "closed", checkId: "check" }), "unassignCheck"),
    recordRun: failure(engine.recordRun(run), "recordRun"),
    recordRuns: failure(engine.recordRuns([run]), "recordRuns"),
    getHealth: failure(engine.getHealth("closed"), "getHealth"),
    getManyHealth: failure(engine.getManyHealth(["closed"]), "getManyHealth"),
    listTransitions: failure(engine.listTransitions({ entityId: "closed" }), "listTransitions"),
    inStatusSince: failure(engine.inStatusSince("closed"), "inStatusSince"),
    listDeadLetters: failure(engine.listDeadLetters(), "listDeadLetters"),
  };
}

async function settleAll(operations: Record<string, Promise<HealthError>>): Promise<Record<string, string>> {
  const types: Record<string, string> = {};
  for (const [name, pending] of Object.entries(operations)) types[name] = (await pending).type;
  return types;
}

/** Closing engines and adapters: delivery stops, resources are released, later calls fail cleanly. */
export function describeLifecycle({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("lifecycle and cleanup", () => {
    it(
      "after engine.close() its subscription handles nothing more; the group's other subscription takes over",
      async () => {
        const harness = await harnesses.open();
        const [closing, staying] = await harness.enginePair();
        await ok(staying.applyTopology(topologyOf(["handover"])), "applyTopology");
        const closingHandled: HealthEvent[] = [];
        const stayingHandled: HealthEvent[] = [];
        closing.subscribe((event) => void closingHandled.push(event), { group: "handover" });
        staying.subscribe((event) => void stayingHandled.push(event), { group: "handover" });
        const before = eventsOf(await ok(staying.recordRuns(runsOf("handover-1", "handover", flips(2))), "recordRuns"));
        await flushed(staying);
        await closing.close();
        const handledByClosed = closingHandled.length;
        const after = eventsOf(await ok(staying.recordRuns(runsOf("handover-2", "handover", flips(3))), "recordRuns"));
        await flushed(staying);
        expect(closingHandled).toHaveLength(handledByClosed);
        expect(idsOf([...closingHandled, ...stayingHandled])).toEqual(idsOf([...before, ...after]));
      },
      timeout,
    );

    it(
      "unsubscribe() resolves once its deliveries settled, and its handler gets nothing after",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["unsubscribed"])), "applyTopology");
        const first: HealthEvent[] = [];
        const subscription = engine.subscribe((event) => void first.push(event), { group: "unsubscribe" });
        const early = eventsOf(await ok(engine.recordRuns(runsOf("unsubscribed-1", "unsubscribed", flips(2))), "recordRuns"));
        await flushed(engine);
        await subscription.unsubscribe();
        const late = eventsOf(await ok(engine.recordRuns(runsOf("unsubscribed-2", "unsubscribed", flips(2))), "recordRuns"));
        const second: HealthEvent[] = [];
        engine.subscribe((event) => void second.push(event), { group: "unsubscribe" });
        await flushed(engine);
        expect(idsOf(first)).toEqual(idsOf(early));
        expect(idsOf(second)).toEqual(idsOf(late));
      },
      timeout,
    );

    it(
      "after engine.close(), close() again resolves, every operation returns a ClosedError and subscribe throws one",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        engine.subscribe(() => undefined, { group: "closed-engine" });
        await engine.close();
        await engine.close();
        const [run] = runsOf("closed", "closed", ["unhealthy"]) as [RunInput];
        const types = await settleAll(everyOperation(engine, run));
        for (const [name, type] of Object.entries(types)) expect(type, name).toBe("closed");
        expect(() => engine.subscribe(() => undefined, { group: "closed-engine" })).toThrow(expect.objectContaining({ type: "closed" }) as Error);
        // The adapter is still usable by others.
        const other = harness.engine();
        expect(await ok(other.getHealth("closed"), "getHealth")).toBeUndefined();
      },
      timeout,
    );

    it(
      "after adapter.close(), close() again resolves, the store and emitter reject, and an engine over it returns errors instead of throwing",
      async () => {
        const harness = await harnesses.open();
        const { adapter } = harness;
        const engine = harness.engine();
        engine.subscribe(() => undefined, { group: "closed-adapter" });
        await ok(engine.applyTopology(topologyOf(["closed"])), "applyTopology");
        await engine.close();
        await adapter.close();
        await adapter.close();
        await expect(adapter.store.getEntitiesById(["closed"]), "store.getEntitiesById").rejects.toBeDefined();
        await expect(adapter.store.listTransitions({ entityId: "closed" }), "store.listTransitions").rejects.toBeDefined();
        await expect(adapter.store.transaction({ lockKeys: [] }, (tx) => tx.listSystemIds()), "store.transaction").rejects.toBeDefined();
        await expect(adapter.emitter.highWatermark(), "emitter.highWatermark").rejects.toBeDefined();
        await expect(adapter.emitter.registerGroup({ group: "late", from: "oldest" }), "emitter.registerGroup").rejects.toBeDefined();
        const orphan = harness.engine();
        const [run] = runsOf("orphan", "closed", ["unhealthy"]) as [RunInput];
        const types = await settleAll({
          recordRun: failure(orphan.recordRun(run), "recordRun"),
          getHealth: failure(orphan.getHealth("closed"), "getHealth"),
          listTransitions: failure(orphan.listTransitions({ entityId: "closed" }), "listTransitions"),
        });
        for (const [name, type] of Object.entries(types)) expect(["store", "closed"], name).toContain(type);
      },
      timeout,
    );
  });
}
