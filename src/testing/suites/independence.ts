import fc from "fast-check";
import type { HealthAdapter, RunInput } from "healthstate";
import { describe, expect, it } from "vitest";
import { runsOf, topologyOf } from "../fixtures";
import { HANG_GUARD_MS, type Harness } from "../harness";
import { pendingTasks, stallingStore } from "../interceptors";
import { deferred, ok, within } from "../support";
import type { SuiteContext } from "./context";

const KEYS = ["health:k0", "health:k1", "health:k2", "health:k3", "health:k4"];

/** Calls of a lock property: a key set (sorted, as the engine sorts) and the "process" that makes the call. */
const lockCallsArbitrary = fc.array(fc.record({ keys: fc.subarray(KEYS, { minLength: 1 }), process: fc.nat() }), {
  minLength: 2,
  maxLength: 8,
});

type Exclusive = (process: HealthAdapter, keys: readonly string[], body: () => Promise<void>) => Promise<void>;

/**
 * Runs every call at once, each body holding its keys across a scheduler-controlled pause, and
 * fails if two bodies with a common key overlap or if the calls do not all complete.
 */
function exclusivityProperty(config: SuiteContext["config"], processes: () => readonly HealthAdapter[], exclusive: Exclusive): Promise<void> {
  return fc.assert(
    fc.asyncProperty(fc.scheduler(), lockCallsArbitrary, async (s, calls) => {
      const holders = new Map<string, number>();
      const overlaps: string[] = [];
      const all = processes();
      const pending = calls.map(({ keys, process }, index) =>
        exclusive(all[process % all.length] as HealthAdapter, keys, async () => {
          for (const key of keys) {
            const holder = holders.get(key);
            if (holder !== undefined) overlaps.push(`call ${index} entered ${key} while call ${holder} held it`);
            holders.set(key, index);
          }
          await s.schedule(Promise.resolve(), `call ${index} inside [${keys.join(",")}]`);
          for (const key of keys) holders.delete(key);
        }),
      );
      await within(s.waitFor(Promise.all(pending)), HANG_GUARD_MS, () => `calls with sorted key sets did not all complete (deadlock?); scheduled tasks pending: ${pendingTasks(s)}`);
      expect(overlaps).toEqual([]);
    }),
    { numRuns: config.numRuns },
  );
}

/** Two bodies that each wait for the other to have entered: completes only if they run at the same time. */
async function rendezvous(enter: (side: "left" | "right", body: () => Promise<void>) => Promise<void>, what: string): Promise<void> {
  const left = deferred();
  const right = deferred();
  await within(
    Promise.all([
      enter("left", async () => {
        left.resolve();
        await right.promise;
      }),
      enter("right", async () => {
        right.resolve();
        await left.promise;
      }),
    ]),
    HANG_GUARD_MS,
    () => `${what}: disjoint key sets waited for each other`,
  );
}

const inTransaction = (process: HealthAdapter, keys: readonly string[], body: () => Promise<void>) =>
  process.lock.withLock(keys, () => process.store.transaction({ lockKeys: keys }, () => body()));

/** SPEC §8 G5: per-entity locks, disjoint sets never wait for each other, canonical order never deadlocks. */
export function describeIndependence({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("G5 independence", () => {
    it(
      "lock.withLock: calls with overlapping key sets never run fn at the same time, and sorted key sets never deadlock (fast-check interleavings)",
      async () => {
        const harness = await harnesses.open();
        await exclusivityProperty(config, () => [harness.adapter], (process, keys, body) => process.lock.withLock(keys, body));
      },
      timeout,
    );

    it(
      "lock.withLock: calls with disjoint key sets run at the same time",
      async () => {
        const harness = await harnesses.open();
        const keys = { left: ["health:left-a", "health:left-b"], right: ["health:right-a"] };
        await rendezvous((side, body) => harness.adapter.lock.withLock(keys[side], body), "lock.withLock");
      },
      timeout,
    );

    it(
      "lock.withLock releases every key when fn rejects, and rejects with fn's reason",
      async () => {
        const harness = await harnesses.open();
        const reason = new Error("conformance: fn failed");
        await expect(harness.adapter.lock.withLock(["health:x", "health:y"], () => Promise.reject(reason))).rejects.toBe(reason);
        const entered = await within(
          harness.adapter.lock.withLock(["health:y", "health:z"], () => Promise.resolve("entered")),
          HANG_GUARD_MS,
          () => "a key was kept after fn rejected",
        );
        expect(entered).toBe("entered");
      },
      timeout,
    );

    it(
      "recordRuns batches naming the same systems in opposite orders, from two engines at once, all complete",
      async () => {
        const harness = await harnesses.open();
        const [left, right] = await harness.enginePair();
        const systemIds = ["order-a", "order-b", "order-c"];
        await ok(left.applyTopology(topologyOf(systemIds, ["prod"])), "applyTopology");
        const batch = (prefix: string, order: readonly string[]): RunInput[] =>
          order.flatMap((systemId) => runsOf(`${prefix}-${systemId}`, systemId, ["unhealthy"], "prod"));
        const calls = Array.from({ length: 6 }, (_, index) => {
          const order = index % 2 === 0 ? systemIds : [...systemIds].reverse();
          return ok((index % 2 === 0 ? left : right).recordRuns(batch(`order-${index}`, order)), `recordRuns ${index}`);
        });
        await within(Promise.all(calls), HANG_GUARD_MS, () => "batches over overlapping systems deadlocked");
      },
      timeout,
    );

    if (config.capabilities.crossProcess) {
      const processes = async (harness: Harness) => [harness.adapter, await harness.peer()] as const;

      it(
        "across processes: transactions with overlapping lockKeys never run at the same time, and sorted key sets never deadlock (fast-check interleavings)",
        async () => {
          const harness = await harnesses.open();
          const all = await processes(harness);
          await exclusivityProperty(config, () => all, inTransaction);
        },
        timeout,
      );

      it(
        "across processes: transactions with disjoint lockKeys run at the same time",
        async () => {
          const harness = await harnesses.open();
          const [here, there] = await processes(harness);
          await rendezvous(
            (side, body) => (side === "left" ? inTransaction(here, ["health:left"], body) : inTransaction(there, ["health:right"], body)),
            "store.transaction",
          );
        },
        timeout,
      );

      it(
        "across processes: a recordRun held inside its transaction on one system does not hold back recordRun on another system",
        async () => {
          const harness = await harnesses.open();
          const peer = await harness.peer();
          const entered = deferred();
          const release = deferred();
          const stalling = { ...harness.adapter, store: stallingStore(harness.adapter.store, entered.resolve, release.promise) };
          const setup = harness.engine();
          await ok(setup.applyTopology(topologyOf(["held", "moving"])), "applyTopology");
          const held = ok(harness.engine(stalling).recordRun(runsOf("held", "held", ["unhealthy"])[0] as RunInput), "recordRun(held)");
          await within(entered.promise, HANG_GUARD_MS, () => "the held transaction never started");
          const moving = harness.engine(peer).recordRun(runsOf("moving", "moving", ["unhealthy"])[0] as RunInput);
          await within(ok(moving, "recordRun(moving)"), HANG_GUARD_MS, () => "a write to another system waited for a held transaction");
          release.resolve();
          await within(held, HANG_GUARD_MS, () => "the held transaction did not complete once released");
        },
        timeout,
      );
    }
  });
}
