import type { HealthEngine, HealthEvent, RunInput } from "healthstate";
import { describe, expect, it } from "vitest";
import { eventsOf, flips, idsOf, runsOf, topologyOf } from "../fixtures";
import { HANG_GUARD_MS } from "../harness";
import { failure, ok, within } from "../support";
import type { SuiteContext } from "./context";

/** SPEC §13: one invalid run rejects the whole batch, with every problem listed, and nothing is written. */
export function describeValidation({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;

  async function expectNothingWritten(engine: HealthEngine, delivered: readonly HealthEvent[], runs: readonly RunInput[]) {
    await within(engine.flush(), HANG_GUARD_MS, () => "flush() did not resolve");
    expect(await ok(engine.getManyHealth(["valid", "valid::prod"]), "getManyHealth")).toEqual({
      valid: { status: "healthy", healthyChecks: 1, totalChecks: 1 },
      "valid::prod": { status: "healthy", healthyChecks: 1, totalChecks: 1 },
    });
    expect(await ok(engine.listTransitions({ entityId: "valid" }), "listTransitions")).toEqual([]);
    expect(delivered, "no event delivered").toHaveLength(0);
    // The runs were not accepted: each one is new when it comes again, valid.
    const outcomes = await ok(engine.recordRuns(runs), "recordRuns of the valid runs");
    expect(outcomes.map((outcome) => outcome.duplicate)).toEqual(runs.map(() => false));
    await within(engine.flush(), HANG_GUARD_MS, () => "flush() did not resolve");
    expect(idsOf(delivered), "then their events are delivered").toEqual(idsOf(eventsOf(outcomes)));
  }

  describe("validation writes nothing", () => {
    it(
      "a batch with malformed runs is a ValidationError listing every problem under its run's index",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        const delivered: HealthEvent[] = [];
        engine.subscribe((event) => void delivered.push(event), { group: "validation-observer" });
        await ok(engine.applyTopology(topologyOf(["valid"], ["prod"])), "applyTopology");
        const [a, b] = runsOf("malformed", "valid", flips(2), "prod") as [RunInput, RunInput];
        const error = await failure(
          engine.recordRuns([a, { ...a, runId: "bad-status", status: "sideways" as never }, b, { ...b, runId: "bad-latency", latencyMs: -1 }]),
          "recordRuns",
        );
        expect(error.type).toBe("validation");
        const issues = "issues" in error ? error.issues : [];
        expect(issues.map((issue) => issue.path[0]).sort()).toEqual([1, 3]);
        expect(issues.find((issue) => issue.path[0] === 1)?.path).toContain("status");
        expect(issues.find((issue) => issue.path[0] === 3)?.path).toContain("latencyMs");
        await expectNothingWritten(engine, delivered, [a, b]);
      },
      timeout,
    );

    it(
      "a batch with a run that does not fit the topology is a ValidationError under that run's index, and nothing of the valid runs is written",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        const delivered: HealthEvent[] = [];
        engine.subscribe((event) => void delivered.push(event), { group: "validation-observer" });
        await ok(engine.applyTopology(topologyOf(["valid"], ["prod"])), "applyTopology");
        const [a, b] = runsOf("misfit", "valid", flips(2), "prod") as [RunInput, RunInput];
        const error = await failure(
          engine.recordRuns([a, b, { ...a, runId: "unknown-check", checkId: "nope" }, { ...a, runId: "unknown-env", environmentId: "nowhere" }]),
          "recordRuns",
        );
        expect(error.type).toBe("validation");
        const issues = "issues" in error ? error.issues : [];
        expect(issues.map((issue) => issue.path[0]).sort()).toEqual([2, 3]);
        await expectNothingWritten(engine, delivered, [a, b]);
      },
      timeout,
    );
  });
}
