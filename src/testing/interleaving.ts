import fc from "fast-check";
import type { HealthEngine, HealthEvent, HealthTransitionRecord, RecordOutcome, ReplayResult, SliceRecord } from "healthstate";
import { HANG_GUARD_MS, Harness, type ConformanceConfig } from "./harness";
import { AcceptanceLog, pendingTasks, scheduledPorts } from "./interceptors";
import { possibleEntityIds, scenarioArbitrary, sequentialModel, type Observation, type Scenario } from "./model";
import { ok, within } from "./support";

/** Engines recording concurrently in each scenario. With peers, the last one runs in another "process". */
export const INTERLEAVED_ENGINES = 3;

/**
 * Runs one scenario: a fresh adapter with the scenario's topology, `INTERLEAVED_ENGINES` engines
 * (two sharing the adapter, the third on a peer when the adapter is cross-process) whose store
 * and lock calls are all interleaved by the scheduler `s`, every call started at once. A
 * subscriber (on the last process) collects deliveries meanwhile. Returns what was observed once
 * every call settled and every event was acknowledged.
 */
export async function observeInterleaving(config: ConformanceConfig, s: fc.Scheduler, scenario: Scenario): Promise<Observation> {
  const harness = await Harness.open(config);
  try {
    const local = harness.adapter;
    const remote = await harness.otherProcess();
    const processes = [local, local, remote];
    const reader = harness.engine();
    await ok(reader.applyTopology(scenario.topology), "applyTopology");

    const log = new AcceptanceLog();
    const engines = processes.map((ports, index) =>
      harness.engine(scheduledPorts(s, { ...ports, store: log.wrap(ports.store) }, `engine${index}`)),
    );
    const observer = harness.engine(remote);
    const delivered: HealthEvent[] = [];
    observer.subscribe((event) => void delivered.push(event), { group: "conformance-observer" });

    const calls = scenario.calls.map((call, index) => record(engines[call.engine] as HealthEngine, call.batch, call.runs, index));
    const settled = await within(s.waitFor(Promise.allSettled(calls)), HANG_GUARD_MS, () => `concurrent calls did not settle; scheduled tasks pending: ${pendingTasks(s)}`);
    const outcomes = settled.map((result) => {
      if (result.status === "rejected") throw result.reason;
      return result.value;
    });
    await within(observer.flush(), HANG_GUARD_MS, () => "observer.flush() did not resolve");

    const entityIds = possibleEntityIds(scenario.topology);
    const states = await ok(reader.getManyHealth(entityIds), "getManyHealth");
    const transitions: Record<string, HealthTransitionRecord[]> = {};
    for (const entityId of entityIds) transitions[entityId] = await ok(reader.listTransitions({ entityId }), `listTransitions(${entityId})`);
    const systemIds = scenario.topology.systems.map((system) => system.systemId);
    const slices: SliceRecord[] = await harness.adapter.store.transaction({ lockKeys: [] }, (tx) => tx.getSlices(systemIds));
    if (harness.backgroundErrors.length > 0) throw new Error(`background error: ${String(harness.backgroundErrors[0])}`, { cause: harness.backgroundErrors[0] });
    return { outcomes, acceptedRunIds: log.runIds(), delivered, states, transitions, slices };
  } finally {
    await harness.close();
  }
}

function record(engine: HealthEngine, batch: boolean, runs: Scenario["calls"][number]["runs"], index: number): Promise<readonly RecordOutcome[]> {
  if (batch) return ok(engine.recordRuns(runs), `call ${index}: recordRuns`);
  return ok(engine.recordRun(runs[0] as (typeof runs)[number]), `call ${index}: recordRun`).then((outcome) => [outcome]);
}

/**
 * A fast-check property over scheduler interleavings of generated scenarios; `check` receives the
 * scenario, what was observed and the sequential model. Uses the global fast-check configuration
 * (seed, verbosity) and prints the seed and the scheduler's report on failure.
 */
export function interleavingProperty(
  config: ConformanceConfig,
  check: (scenario: Scenario, observation: Observation, model: ReplayResult) => void,
): Promise<void> {
  return fc.assert(
    fc.asyncProperty(fc.scheduler(), scenarioArbitrary(INTERLEAVED_ENGINES), async (s, scenario) => {
      const observation = await observeInterleaving(config, s, scenario);
      check(scenario, observation, sequentialModel(scenario, observation));
    }),
    { numRuns: config.numRuns },
  );
}
