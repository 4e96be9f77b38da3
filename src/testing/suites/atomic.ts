import type { HealthEngine, HealthEvent, HealthTransitionRecord, RunInput, StoredRun, TopologyDoc } from "healthstate";
import { describe, expect, it } from "vitest";
import { EVERY_RUN_COUNTS, idsOf, runsOf } from "../fixtures";
import { HANG_GUARD_MS, type Harness } from "../harness";
import { FailingStore } from "../interceptors";
import { ok, within, type Matchable } from "../support";
import type { SuiteContext } from "./context";

/** Topology changes are stamped with this clock, so that runs of one scenario on different adapters give equal events. */
const FIXED_NOW = new Date("2031-01-01T00:00:00.000Z");
const fixedClock = () => FIXED_NOW;

const TOPOLOGY: TopologyDoc = {
  systems: [
    { systemId: "atom", environmentIds: ["e0", "e1"], checks: [{ checkId: "check", thresholds: EVERY_RUN_COUNTS }] },
    { systemId: "other", environmentIds: [], checks: [{ checkId: "check", thresholds: EVERY_RUN_COUNTS }] },
    {
      systemId: "topo",
      environmentIds: [],
      checks: [
        { checkId: "check", thresholds: EVERY_RUN_COUNTS },
        { checkId: "spare", thresholds: EVERY_RUN_COUNTS },
      ],
    },
  ],
};
const ENTITY_IDS = ["atom", "atom::e0", "atom::e1", "other", "topo"];

interface Operation {
  readonly name: string;
  /** Runs before the operation, committed without failure. */
  readonly history: readonly RunInput[];
  /** Run ids the operation inserts (none for a topology change). */
  readonly runIds: readonly string[];
  readonly perform: (engine: HealthEngine) => Matchable<HealthEvent[]>;
}

function operations(): Operation[] {
  const history = [
    ...runsOf("atomic-history-atom", "atom", ["unhealthy", "healthy"], "e0"),
    ...runsOf("atomic-history-other", "other", ["degraded"]),
    ...runsOf("atomic-history-topo", "topo", ["unhealthy"]),
  ];
  const batch = [
    ...runsOf("atomic-batch-e0", "atom", ["unhealthy"], "e0"),
    ...runsOf("atomic-batch-e1", "atom", ["degraded"], "e1"),
    ...runsOf("atomic-batch-other", "other", ["healthy"]),
    ...runsOf("atomic-batch-e0-again", "atom", ["healthy"], "e0"),
  ];
  return [
    {
      name: "recordRuns (a batch over two systems, with transitions on several entities)",
      history,
      runIds: batch.map((run) => run.runId as string),
      perform: (engine) => engine.recordRuns(batch).map((outcomes) => outcomes.flatMap((outcome) => outcome.events)),
    },
    {
      name: "unassignCheck (a topology change that is a recovery)",
      history,
      runIds: [],
      perform: (engine) => engine.unassignCheck({ systemId: "topo", checkId: "check" }).map((outcome) => outcome.events),
    },
  ];
}

interface Snapshot {
  readonly states: Record<string, unknown>;
  readonly transitions: Record<string, HealthTransitionRecord[]>;
  readonly delivered: string[];
}

async function snapshot(engine: HealthEngine, delivered: readonly HealthEvent[]): Promise<Snapshot> {
  await within(engine.flush(), HANG_GUARD_MS, () => "flush() did not resolve");
  const transitions: Record<string, HealthTransitionRecord[]> = {};
  for (const entityId of ENTITY_IDS) transitions[entityId] = await ok(engine.listTransitions({ entityId }), `listTransitions(${entityId})`);
  return { states: await ok(engine.getManyHealth(ENTITY_IDS), "getManyHealth"), transitions, delivered: idsOf(delivered) };
}

/** A harness with the topology and `history` committed, and an engine whose subscriber collects deliveries. */
async function prepared(harness: Harness, operation: Operation) {
  const engine = harness.engine(harness.adapter, { clock: fixedClock });
  const delivered: HealthEvent[] = [];
  engine.subscribe((event) => void delivered.push(event), { group: "atomic-observer" });
  await ok(engine.applyTopology(TOPOLOGY), "applyTopology");
  await ok(engine.recordRuns(operation.history), "recordRuns(history)");
  return { engine, delivered };
}

/** SPEC §8 G3: the writes of one call commit together or not at all. */
export function describeAtomic({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("G3 atomic", () => {
    it(
      "a transaction whose fn rejects after writing keeps none of its writes and rejects with the same reason",
      async () => {
        const harness = await harnesses.open();
        const { store } = harness.adapter;
        const reason = new Error("conformance: abort");
        const run: StoredRun = {
          runId: "rolled-back-run",
          systemId: "ghost",
          checkId: "check",
          environmentId: null,
          status: "unhealthy",
          latencyMs: null,
          timestamp: FIXED_NOW.toISOString(),
          message: null,
          recordedAt: FIXED_NOW.toISOString(),
        };
        const rejected = store.transaction({ lockKeys: ["health:ghost"] }, async (tx) => {
          await tx.putSystem({ systemId: "ghost", environmentIds: [] });
          await tx.insertRuns([run]);
          throw reason;
        });
        await expect(rejected).rejects.toBe(reason);
        const [systems, runIds] = await store.transaction({ lockKeys: ["health:ghost"] }, (tx) =>
          Promise.all([tx.getSystems(["ghost"]), tx.findRunIds(["rolled-back-run"])]),
        );
        expect(systems).toEqual([]);
        expect(runIds).toEqual([]);
      },
      timeout,
    );

    it(
      "a call left running after fn settled (a sibling of a rejected Promise.all) rejects and writes nothing, now or later",
      async () => {
        const harness = await harnesses.open();
        const { store } = harness.adapter;
        const runs: StoredRun[] = Array.from({ length: 300 }, (_, index) => ({
          runId: `late-run-${index}`,
          systemId: "late",
          checkId: "check",
          environmentId: null,
          status: "healthy",
          latencyMs: null,
          timestamp: FIXED_NOW.toISOString(),
          message: null,
          recordedAt: FIXED_NOW.toISOString(),
        }));
        let late: Promise<PromiseSettledResult<unknown>[]> | undefined;
        const rejected = store.transaction({ lockKeys: ["health:late"] }, async (tx) => {
          const sibling = (async () => {
            await new Promise((resolve) => setTimeout(resolve, 20));
            late = Promise.allSettled([tx.insertRuns(runs), tx.putSystem({ systemId: "late", environmentIds: [] }), tx.getSystems(["late"])]);
          })();
          await Promise.all([Promise.reject(new Error("conformance: sibling failed")), sibling]);
        });
        await expect(rejected).rejects.toThrow("conformance: sibling failed");
        await new Promise((resolve) => setTimeout(resolve, 60));
        const outcomes = await (late as Promise<PromiseSettledResult<unknown>[]>);
        expect(outcomes.map((outcome) => outcome.status), "calls on a transaction whose fn has settled").toEqual(["rejected", "rejected", "rejected"]);
        const [systems, runIds] = await store.transaction({ lockKeys: ["health:late"] }, (tx) =>
          Promise.all([tx.getSystems(["late"]), tx.findRunIds(runs.map((run) => run.runId))]),
        );
        expect(systems).toEqual([]);
        expect(runIds).toEqual([]);
      },
      timeout,
    );

    for (const operation of operations()) {
      it(
        `a failure injected on the k-th write of ${operation.name} leaves no trace, for every k and whether the write was staged or not`,
        async () => {
          // The same operation without failure, on its own adapter: what a retry must produce.
          const reference = await harnesses.open();
          const referenceSetup = await prepared(reference, operation);
          const expectedEvents = await ok(operation.perform(referenceSetup.engine), operation.name);
          const expected = await snapshot(referenceSetup.engine, referenceSetup.delivered);
          expect(expectedEvents.length, "the operation under test produces events").toBeGreaterThan(0);

          let injected = 0;
          for (const mode of ["before", "after"] as const) {
            for (let write = 1; write <= 50; write += 1) {
              const harness = await harnesses.open();
              const { engine, delivered } = await prepared(harness, operation);
              const before = await snapshot(engine, delivered);
              const failing = new FailingStore(harness.adapter.store, write, mode);
              const faulty = harness.engine({ ...harness.adapter, store: failing.store }, { clock: fixedClock });
              const outcome = await operation.perform(faulty).match(
                () => undefined,
                (error) => error,
              );
              if (failing.injected === undefined) {
                // The operation makes fewer writes than `write`: it ran to completion, as it should.
                expect(outcome, `${operation.name} without failure`).toBeUndefined();
                await harness.close();
                break;
              }
              const where = `write #${write} (${failing.injected.method}, failing ${mode} the real call)`;
              injected += 1;
              expect(outcome, `${where}: the call returns a StoreError`).toMatchObject({ type: "store" });
              expect(outcome?.cause, `${where}: the StoreError's cause is the reason the transaction was aborted with`).toBe(failing.injected);
              expect(await snapshot(engine, delivered), `${where}: nothing of the call is visible or delivered`).toEqual(before);
              if (operation.runIds.length > 0) {
                const known = await harness.adapter.store.transaction({ lockKeys: [] }, (tx) => tx.findRunIds(operation.runIds));
                expect(known, `${where}: no run id of the call is known`).toEqual([]);
              }
              const events = await within(ok(operation.perform(engine), `${where}: retry`), HANG_GUARD_MS, () => `${where}: the retry did not complete (a lock kept?)`);
              expect(events, `${where}: the retry produces what a call without failure produces`).toEqual(expectedEvents);
              expect(await snapshot(engine, delivered), `${where}: after the retry, the state is that of a call without failure`).toEqual(expected);
              await harness.close();
            }
          }
          expect(injected, "failures were injected").toBeGreaterThan(2);
        },
        timeout,
      );
    }
  });
}
