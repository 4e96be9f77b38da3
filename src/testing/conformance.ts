import { afterEach, describe } from "vitest";
import { HarnessPool, type AdapterConformanceOptions, type ConformanceConfig } from "./harness";
import { describeAtomic } from "./suites/atomic";
import { describeCapabilities } from "./suites/capabilities";
import type { SuiteContext } from "./suites/context";
import { describeDelivery } from "./suites/delivery";
import { describeExactlyOnce } from "./suites/exactly-once";
import { describeFlapping } from "./suites/flapping";
import { describeHistory, describeRetention } from "./suites/history";
import { describeIdempotent } from "./suites/idempotent";
import { describeIndependence } from "./suites/independence";
import { describeLifecycle } from "./suites/lifecycle";
import { describeMaintenance } from "./suites/maintenance";
import { describeStateVersions } from "./suites/state-versions";
import { describeValidation } from "./suites/validation";

/**
 * Registers the adapter conformance suite (SPEC §8, §14) with vitest: call it at the top level
 * of a test file. Every test gets a fresh adapter from `create()` and closes it (with its peers
 * and engines) when it ends; each run of a property gets its own adapter too.
 *
 * What it certifies, one `describe` block each: G1 exactly once and G2 no lost update (fast-check
 * scheduler interleavings of concurrent `recordRun`/`recordRuns` from several engines, checked
 * against `replay` over the accepted runs in commit order), G3 atomic (a failure injected on every
 * write of a unit of work leaves no trace), G4 delivery (history, `from: "now"`, redelivery,
 * isolation, groups, competing consumers, dead letters), G5 independence (lock exclusivity,
 * disjoint sets in parallel, no deadlock in canonical order), G6 idempotent ingestion, validation
 * that writes nothing, lifecycle and cleanup, the declared capabilities, and SPEC §9–§11: history
 * and buckets (transition log, availability, latency, concurrent and failed bucket writes, UTC
 * hours), retention (rollup, pruning, idempotence, a failure on every write), flapping (events,
 * the muting-consumer law) and maintenance (marks, boundaries once across engines), and the
 * optional state versions engines cache by. Tests that need a
 * capability the adapter does not declare are not registered (nothing is skipped silently); with
 * `crossProcess`, engines run on peers from `createPeer`.
 *
 * @example
 * import { describeAdapterConformance } from "healthstate/testing";
 * import { createMemoryAdapter } from "healthstate/adapters/memory";
 *
 * describeAdapterConformance({
 *   name: "memory",
 *   create: () => createMemoryAdapter(),
 *   capabilities: { durable: false, crossProcess: false },
 * });
 */
export function describeAdapterConformance(options: AdapterConformanceOptions): void {
  const config: ConformanceConfig = {
    ...options,
    numRuns: options.numRuns ?? 30,
    testTimeoutMs: options.testTimeoutMs ?? 120_000,
  };
  if (!Number.isInteger(config.numRuns) || config.numRuns < 1) throw new RangeError("describeAdapterConformance: numRuns must be a positive integer");
  describe(`healthstate adapter conformance: ${options.name}`, () => {
    const harnesses = new HarnessPool(config);
    afterEach(() => harnesses.closeAll(), config.testTimeoutMs);
    const context: SuiteContext = { config, harnesses };
    describeCapabilities(context);
    describeExactlyOnce(context);
    describeAtomic(context);
    describeDelivery(context);
    describeIndependence(context);
    describeIdempotent(context);
    describeValidation(context);
    describeLifecycle(context);
    describeHistory(context);
    describeRetention(context);
    describeFlapping(context);
    describeMaintenance(context);
    describeStateVersions(context);
  });
}
