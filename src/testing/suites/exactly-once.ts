import type { HealthEvent, HealthStatus, HealthTransitionEvent } from "healthstate";
import { describe, expect, it } from "vitest";
import { EVERY_RUN_COUNTS, eventsOf, flips, runsOf, topologyOf } from "../fixtures";
import { interleavingProperty } from "../interleaving";
import { expectExactlyOnce, expectNoLostUpdate } from "../model";
import { ok } from "../support";
import type { SuiteContext } from "./context";

const isTransition = (event: HealthEvent): event is HealthTransitionEvent => event.type === "health.transition";

/**
 * Every event of the entity (transitions, and the flapping events alternating runs cause) is
 * numbered 1..n, and the transitions among them are chained.
 */
function expectChain(events: readonly HealthEvent[]): void {
  const sorted = [...events].sort((a, b) => a.sequence - b.sequence);
  expect(sorted.map((event) => event.sequence)).toEqual(sorted.map((_, index) => index + 1));
  const transitions = sorted.filter(isTransition);
  transitions.slice(1).forEach((event, index) => expect(event.previousStatus).toBe(transitions[index]?.newStatus));
}

/** SPEC §8 G1: each entity's events are numbered 1, 2, 3 … without gap or repeat, and chained. */
export function describeExactlyOnce({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("G1 exactly once", () => {
    it(
      "under fast-check interleavings of concurrent recordRun/recordRuns from several engines, each entity's events are 1..n, chained, equal to the sequential model (replay over accepted runs in commit order), logged as transitions and delivered to a subscriber",
      () => interleavingProperty(config, expectExactlyOnce),
      timeout,
    );

    it(
      "engines taking turns on one entity continue one chain",
      async () => {
        const harness = await harnesses.open();
        const [first, second] = await harness.enginePair();
        await ok(first.applyTopology(topologyOf(["turns"])), "applyTopology");
        const runs = runsOf("turns", "turns", flips(6));
        const events: HealthEvent[] = [];
        for (const [index, run] of runs.entries()) {
          const engine = index % 2 === 0 ? first : second;
          events.push(...(await ok(engine.recordRun(run), `recordRun ${run.runId}`)).events);
        }
        expect(events.filter(isTransition)).toHaveLength(6);
        expectChain(events);
        const log = await ok(second.listTransitions({ entityId: "turns" }), "listTransitions");
        expect(log.map((entry) => [entry.sequence, entry.previousStatus, entry.newStatus])).toEqual(
          events.filter(isTransition).map((event) => [event.sequence, event.previousStatus, event.newStatus]),
        );
      },
      timeout,
    );

    it(
      "many concurrent calls on one entity from two engines produce one gapless chain",
      async () => {
        const harness = await harnesses.open();
        const engines = await harness.enginePair();
        await ok(engines[0].applyTopology(topologyOf(["crowd"])), "applyTopology");
        const statuses = Array.from({ length: 24 }, (_, index): HealthStatus => (index % 3 === 0 ? "healthy" : index % 3 === 1 ? "degraded" : "unhealthy"));
        const runs = runsOf("crowd", "crowd", statuses);
        const outcomes = await Promise.all(runs.map((run, index) => ok(engines[index % 2 === 0 ? 0 : 1].recordRun(run), `recordRun ${run.runId}`)));
        const events = eventsOf(outcomes);
        expect(events.length).toBeGreaterThan(0);
        expectChain(events);
        const log = await ok(engines[1].listTransitions({ entityId: "crowd" }), "listTransitions");
        expect(log.map((entry) => entry.sequence)).toEqual(
          events
            .filter(isTransition)
            .map((event) => event.sequence)
            .sort((a, b) => a - b),
        );
      },
      timeout,
    );
  });

  describe("G2 no lost update", () => {
    it(
      "under fast-check interleavings, every slice equals §5 over its accepted runs in acceptance order and every entity state equals replay's",
      () => interleavingProperty(config, expectNoLostUpdate),
      timeout,
    );

    it(
      "concurrent runs of different checks of one system, from two engines, all count in the rollup",
      async () => {
        const harness = await harnesses.open();
        const engines = await harness.enginePair();
        const checkIds = Array.from({ length: 8 }, (_, index) => `check-${index}`);
        await ok(
          engines[0].applyTopology({
            systems: [{ systemId: "wide", environmentIds: [], checks: checkIds.map((checkId) => ({ checkId, thresholds: EVERY_RUN_COUNTS })) }],
          }),
          "applyTopology",
        );
        await Promise.all(
          checkIds.map((checkId, index) =>
            ok(
              engines[index % 2 === 0 ? 0 : 1].recordRun({ runId: `wide-${index}`, systemId: "wide", checkId, status: "unhealthy" }),
              `recordRun ${checkId}`,
            ),
          ),
        );
        expect(await ok(engines[1].getHealth("wide"), "getHealth")).toEqual({ status: "unhealthy", healthyChecks: 0, totalChecks: 8 });
      },
      timeout,
    );
  });
}
