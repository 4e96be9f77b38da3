import type { EntityRecord, HealthStore, SliceRecord, StoreTransaction, StoredRun } from "healthstate";
import { describe, expect, it } from "vitest";
import { ok } from "../support";
import type { SuiteContext } from "./context";

const AT = "2031-01-01T00:00:00.000Z";
const SLICE: SliceRecord = {
  systemId: "t",
  checkId: "c",
  environmentId: null,
  state: { status: "healthy", successStreak: 1, failureStreak: 0, streakHasUnhealthy: false, recent: "h" },
};
const ENTITY: EntityRecord = { entityId: "s", systemId: "s", environmentId: null, state: { status: "healthy", healthyChecks: 1, totalChecks: 1 }, sequence: 0 };
const RUN: StoredRun = { runId: "r", systemId: "s", checkId: "c", environmentId: null, status: "healthy", latencyMs: null, timestamp: AT, message: null, recordedAt: AT };

const inTx = <T>(store: HealthStore, fn: (tx: StoreTransaction) => Promise<T>): Promise<T> => store.transaction({ lockKeys: [] }, fn);

/**
 * The optional state-version contract (`StoreTransaction.getStateVersions` and `stateVersion`),
 * which engines trust to keep a system's state in memory instead of reading its rows: a version
 * changes exactly when a committed transaction wrote the system's state. An adapter without the
 * capability must offer neither member.
 */
export function describeStateVersions({ config, harnesses }: SuiteContext): void {
  describe("state versions (optional)", () => {
    it(
      "offers both members or neither; a commit that writes a system's state gives it that transaction's version, and nothing else does",
      async () => {
        const { store } = (await harnesses.open()).adapter;
        const members = await inTx(store, (tx) => Promise.resolve({ read: typeof tx.getStateVersions, token: typeof tx.stateVersion }));
        if (members.read === "undefined") {
          expect(members.token, "stateVersion without getStateVersions").toBe("undefined");
          return;
        }
        expect(members, "getStateVersions without stateVersion").toEqual({ read: "function", token: "string" });
        const versions = async () =>
          Object.fromEntries((await inTx(store, async (tx) => (await tx.getStateVersions?.(["s", "t", "u"])) ?? [])).map((row) => [row.systemId, row.version]));
        expect(await versions()).toEqual({});

        const first = await inTx(store, async (tx) => {
          await tx.putSystem({ systemId: "s", environmentIds: [] });
          await tx.putSlices([SLICE]);
          // Inside the transaction the versions are still the committed ones.
          expect(await tx.getStateVersions?.(["s", "t"])).toEqual([]);
          return tx.stateVersion;
        });
        expect(await versions()).toEqual({ s: first, t: first });

        // Runs (and the other history tables) are not state: the versions stay.
        await inTx(store, (tx) => tx.insertRuns([RUN]));
        expect(await versions()).toEqual({ s: first, t: first });

        // A rolled-back transaction leaves them.
        const rolledBack = store.transaction({ lockKeys: [] }, async (tx) => {
          await tx.putEntities([ENTITY]);
          throw new Error("roll back");
        });
        await expect(rolledBack).rejects.toThrow("roll back");
        expect(await versions()).toEqual({ s: first, t: first });

        // Deletes count as writes; every transaction has its own token.
        const second = await inTx(store, async (tx) => {
          await tx.deleteAssignments([{ systemId: "u", checkId: "c" }]);
          await tx.putEntities([ENTITY]);
          return tx.stateVersion;
        });
        expect(second).not.toBe(first);
        expect(await versions()).toEqual({ s: second, t: first, u: second });
        const third = await inTx(store, async (tx) => {
          await tx.deleteSlices([{ systemId: "t", checkId: "c", environmentId: null }]);
          await tx.deleteSystem("s");
          return tx.stateVersion;
        });
        expect(new Set([first, second, third]).size).toBe(3);
        expect(await versions()).toEqual({ s: third, t: third, u: second });
      },
      config.testTimeoutMs,
    );

    it(
      "engines sharing the store see each other's writes to a system they keep in memory",
      async () => {
        const harness = await harnesses.open();
        const [a, b] = [harness.engine(), harness.crossProcess ? harness.engine(await harness.peer()) : harness.engine()];
        await ok(a.applyTopology({ systems: [{ systemId: "kept", environmentIds: ["prod"], checks: [{ checkId: "c", thresholds: { mode: "consecutive", degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 1 }, healthy: { minSuccessCount: 1 } } }] }] }), "applyTopology");
        const record = async (engine: typeof a, runId: string, status: "healthy" | "unhealthy") =>
          (await ok(engine.recordRun({ runId, systemId: "kept", checkId: "c", environmentId: "prod", status }), "recordRun")).events.map((event) => [
            event.entityId,
            event.sequence,
          ]);
        expect(await record(a, "1", "unhealthy")).toEqual([["kept", 1], ["kept::prod", 1]]);
        expect(await record(b, "2", "healthy")).toEqual([["kept", 2], ["kept::prod", 2]]);
        // `a` last wrote the system before `b` did: it must not reuse what it kept.
        expect(await record(a, "3", "unhealthy")).toEqual([["kept", 3], ["kept::prod", 3]]);
        expect(await record(a, "4", "unhealthy")).toEqual([]);
        expect(await record(b, "5", "healthy")).toEqual([["kept", 4], ["kept::prod", 4]]);
        // A topology change by `b` (no run) is seen by `a` too.
        await ok(b.unassignCheck({ systemId: "kept", checkId: "c" }), "unassignCheck");
        const rejected = await a.recordRun({ runId: "6", systemId: "kept", checkId: "c", environmentId: "prod", status: "unhealthy" });
        expect(rejected.isErr() && rejected.error.name).toBe("ValidationError");
      },
      config.testTimeoutMs,
    );
  });
}
