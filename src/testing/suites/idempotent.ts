import type { HealthEngine, HealthEvent, RunInput, StoredRun, StoreTransaction } from "healthstate";
import { describe, expect, it } from "vitest";
import { flips, runsOf, topologyOf } from "../fixtures";
import { deferred, ok } from "../support";
import type { SuiteContext } from "./context";

async function stateOf(engine: HealthEngine, entityId: string) {
  return {
    state: await ok(engine.getHealth(entityId), "getHealth"),
    transitions: await ok(engine.listTransitions({ entityId }), "listTransitions"),
  };
}

/** SPEC §8 G6: a run id is applied once; every later attempt is reported as a duplicate. */
export function describeIdempotent({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("G6 idempotent ingestion", () => {
    it(
      "a runId that was accepted returns { duplicate: true, events: [] } and changes nothing, whatever the run says this time",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["again"])), "applyTopology");
        const [run] = runsOf("again", "again", ["unhealthy"]) as [RunInput];
        const first = await ok(engine.recordRun(run), "recordRun");
        expect(first).toMatchObject({ runId: run.runId, duplicate: false });
        expect(first.events).toHaveLength(1);
        const before = await stateOf(engine, "again");
        expect(await ok(engine.recordRun(run), "recordRun again")).toEqual({ runId: run.runId, duplicate: true, events: [] });
        expect(await ok(engine.recordRun({ ...run, status: "healthy" }), "recordRun changed")).toEqual({
          runId: run.runId,
          duplicate: true,
          events: [],
        });
        expect(await stateOf(engine, "again")).toEqual(before);
      },
      timeout,
    );

    it(
      "a run id repeated inside one batch is applied once, at its first position",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["batch"])), "applyTopology");
        const [failing, recovering] = runsOf("batch", "batch", flips(2)) as [RunInput, RunInput];
        const outcomes = await ok(engine.recordRuns([failing, { ...failing, status: "healthy" }, recovering, failing]), "recordRuns");
        expect(outcomes.map((outcome) => [outcome.runId, outcome.duplicate, outcome.events.length])).toEqual([
          [failing.runId, false, 1],
          [failing.runId, true, 0],
          [recovering.runId, false, 1],
          [failing.runId, true, 0],
        ]);
        expect((await stateOf(engine, "batch")).transitions.map((entry) => entry.newStatus)).toEqual(["unhealthy", "healthy"]);
      },
      timeout,
    );

    it(
      "a run sent to two engines (processes when cross-process) at once is accepted by exactly one",
      async () => {
        const harness = await harnesses.open();
        const [left, right] = await harness.enginePair();
        await ok(left.applyTopology(topologyOf(["twice"])), "applyTopology");
        const runs = runsOf("twice", "twice", flips(6));
        const published: HealthEvent[] = [];
        for (const run of runs) {
          const outcomes = await Promise.all([ok(left.recordRun(run), "left"), ok(right.recordRun(run), "right")]);
          expect(outcomes.filter((outcome) => !outcome.duplicate), `${run.runId as string}: accepted once`).toHaveLength(1);
          const events = outcomes.flatMap((outcome) => outcome.events);
          expect(events.filter((event) => event.type === "health.transition"), `${run.runId as string}: one transition`).toHaveLength(1);
          published.push(...events);
        }
        // Alternating runs make the entity flap: its flapping events share the sequence.
        expect(published.map((event) => event.sequence).sort((a, b) => a - b)).toEqual(published.map((_, index) => index + 1));
        const { transitions } = await stateOf(right, "twice");
        expect(transitions.map((entry) => entry.sequence)).toEqual(
          published.filter((event) => event.type === "health.transition").map((event) => event.sequence),
        );
        expect(transitions).toHaveLength(6);
        expect(await ok(left.recordRun(runs[0] as RunInput), "resent later")).toMatchObject({ duplicate: true, events: [] });
      },
      timeout,
    );

    it(
      "the store itself refuses a run id, a transition's or event's (entityId, sequence) and an eventId it already holds, that a call repeats, or that a transaction in flight at the same time committed first, and keeps nothing of that transaction",
      async () => {
        // The engine checks run ids and numbers events under its locks; the store's uniqueness is
        // what still holds G1 and G6 if locking were ever wrong (docs/adapters.md).
        const harness = await harnesses.open();
        const engine = harness.engine();
        const { store } = harness.adapter;
        await ok(engine.applyTopology(topologyOf(["unique"])), "applyTopology");
        const [event] = (await ok(engine.recordRun(runsOf("unique", "unique", ["unhealthy"])[0] as RunInput), "recordRun")).events;
        const [transition] = await store.listTransitions({ entityId: "unique" });
        if (event === undefined || transition === undefined) throw new Error("conformance: the run made no transition");
        const stored: StoredRun = {
          runId: "unique-0",
          systemId: "unique",
          checkId: "check",
          environmentId: null,
          status: "unhealthy",
          latencyMs: null,
          timestamp: event.occurredAt,
          message: null,
          recordedAt: event.occurredAt,
        };
        const fresh: StoredRun = { ...stored, runId: "unique-fresh" };
        const refused = async (what: string, write: (tx: StoreTransaction) => Promise<unknown>) => {
          let committed = true;
          try {
            // A fresh run is written first: the failing write must take it down with it.
            await store.transaction({ lockKeys: [] }, async (tx) => {
              await tx.insertRuns([{ ...fresh, runId: `unique-with-${what}` }]);
              await write(tx);
            });
          } catch {
            committed = false;
          }
          expect(committed, `${what}: the transaction must fail`).toBe(false);
          const kept = await store.transaction({ lockKeys: [] }, (tx) => tx.findRunIds([`unique-with-${what}`, fresh.runId]));
          expect(kept, `${what}: nothing of the failed transaction is kept`).toEqual([]);
        };
        await refused("a committed run id", (tx) => tx.insertRuns([stored]));
        await refused("a run id twice in one call", (tx) => tx.insertRuns([fresh, fresh]));
        await refused("a logged (entityId, sequence)", (tx) => tx.appendTransitions([{ ...transition }]));
        await refused("an enqueued (entityId, sequence)", (tx) => tx.enqueueEvents([{ ...event, eventId: `${event.eventId}-again` }]));
        await refused("an enqueued eventId", (tx) => tx.enqueueEvents([{ ...event, sequence: event.sequence + 100 }]));
        expect(await store.listTransitions({ entityId: "unique" }), "the log is as it was").toEqual([transition]);
        expect(await ok(engine.getHealth("unique"), "getHealth")).toMatchObject({ status: "unhealthy" });

        // Two transactions in flight at once, outside any lock, append the same (entityId, sequence)
        // (and run id): the first to commit wins, the other fails and keeps nothing.
        const next = { ...transition, sequence: transition.sequence + 1, previousStatus: transition.newStatus, newStatus: "healthy" as const };
        const gates = [deferred(), deferred()];
        const racing = gates.map((gate, index) =>
          store.transaction({ lockKeys: [] }, async (tx) => {
            await tx.insertRuns([{ ...fresh, runId: `unique-race-${index}` }]);
            await tx.appendTransitions([next]);
            await gate.promise;
          }),
        );
        gates[0]?.resolve();
        const first = await Promise.allSettled([racing[0]]);
        gates[1]?.resolve();
        const second = await Promise.allSettled([racing[1]]);
        expect([first[0]?.status, second[0]?.status], "the first commit wins, the second fails").toEqual(["fulfilled", "rejected"]);
        expect(await store.listTransitions({ entityId: "unique" })).toEqual([transition, next]);
        expect(await store.transaction({ lockKeys: [] }, (tx) => tx.findRunIds(["unique-race-0", "unique-race-1"]))).toEqual(["unique-race-0"]);
      },
      timeout,
    );
  });
}
