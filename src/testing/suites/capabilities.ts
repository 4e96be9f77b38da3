import type { HealthEvent } from "healthstate";
import { describe, expect, it } from "vitest";
import { eventsOf, flips, idsOf, runsOf, topologyOf } from "../fixtures";
import { HANG_GUARD_MS } from "../harness";
import { ok, within } from "../support";
import type { SuiteContext } from "./context";

/**
 * The capabilities the suite was told about are the adapter's own, and the tests that only some
 * adapters can pass are registered exactly when the adapter claims what they need.
 */
export function describeCapabilities({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  const { durable, crossProcess } = config.capabilities;
  describe("capabilities", () => {
    it(
      `the adapter declares { durable: ${durable}, crossProcess: ${crossProcess} } on its store and emitter`,
      async () => {
        const harness = await harnesses.open();
        expect(harness.adapter.store.capabilities).toMatchObject({ durable, crossProcess });
        expect(harness.adapter.emitter.capabilities).toMatchObject({ durable, crossProcess });
      },
      timeout,
    );

    if (crossProcess) {
      it(
        "a cross-process adapter is certified with createPeer, so that engines sharing no in-process lock are exercised",
        () => {
          expect(config.createPeer, "describeAdapterConformance({ createPeer }) is required when crossProcess is true").toBeTypeOf("function");
        },
        timeout,
      );
    }

    if (durable && config.createPeer !== undefined) {
      it(
        "durable: committed state and undelivered events outlive the adapter instance that wrote them",
        async () => {
          const harness = await harnesses.open();
          const successor = await harness.peer();
          const writer = harness.engine();
          await ok(writer.applyTopology(topologyOf(["lasting"], ["prod"])), "applyTopology");
          const events = eventsOf(await ok(writer.recordRuns(runsOf("lasting", "lasting", flips(3), "prod")), "recordRuns"));
          const state = await ok(writer.getManyHealth(["lasting", "lasting::prod"]), "getManyHealth");
          await writer.close();
          await harness.adapter.close();
          const reader = harness.engine(successor);
          expect(await ok(reader.getManyHealth(["lasting", "lasting::prod"]), "getManyHealth")).toEqual(state);
          const delivered: HealthEvent[] = [];
          reader.subscribe((event) => void delivered.push(event), { group: "successor" });
          await within(reader.flush(), HANG_GUARD_MS, () => "flush() did not resolve");
          expect(idsOf(delivered)).toEqual(idsOf(events));
        },
        timeout,
      );
    }
  });
}
