import fc from "fast-check";
import {
  DEFAULT_THRESHOLDS,
  INITIAL_SLICE_STATE,
  encodeHealthEntityId,
  replay,
  resolveEffectiveEnvironments,
  stepSlice,
  validateThresholds,
  type HealthEntityState,
  type HealthEvent,
  type HealthStatus,
  type HealthTransitionRecord,
  type RecordOutcome,
  type ReplayResult,
  type RunInput,
  type SliceRecord,
  type SliceState,
  type Thresholds,
  type ThresholdsInput,
  type TopologyDoc,
} from "healthstate";
import { expect } from "vitest";
import { groupBy, sortedRecord } from "./support";

/** Environment ids the generated topologies draw from. */
const ENVIRONMENTS = ["e0", "e1"] as const;
/** Timestamps of generated runs: one second apart from this instant, so every event has a distinct, known `occurredAt`. */
const TIME_BASE = Date.parse("2030-01-01T00:00:00.000Z");

/** One concurrent call of a scenario: `recordRun` of one run, or `recordRuns` of a batch. */
export interface ScenarioCall {
  /** Index of the engine that makes the call. */
  readonly engine: number;
  readonly batch: boolean;
  readonly runs: readonly RunInput[];
}

/** A topology and the calls that record runs against it concurrently. */
export interface Scenario {
  readonly topology: TopologyDoc;
  readonly calls: readonly ScenarioCall[];
}

type CheckDoc = TopologyDoc["systems"][number]["checks"][number];

const statusArbitrary = fc.constantFrom<HealthStatus>("healthy", "degraded", "unhealthy");

/** Thresholds within the limits of SPEC §5, small enough that a few runs cross them. */
const thresholdsArbitrary: fc.Arbitrary<ThresholdsInput> = fc.oneof(
  fc
    .record({ success: fc.integer({ min: 1, max: 2 }), degraded: fc.integer({ min: 1, max: 3 }), extra: fc.integer({ min: 0, max: 2 }) })
    .map(({ success, degraded, extra }) => ({
      mode: "consecutive" as const,
      healthy: { minSuccessCount: success },
      degraded: { minFailureCount: degraded },
      unhealthy: { minFailureCount: degraded + extra },
    })),
  fc
    .record({ windowSize: fc.integer({ min: 3, max: 5 }), degraded: fc.integer({ min: 1, max: 3 }), extra: fc.integer({ min: 0, max: 2 }) })
    .map(({ windowSize, degraded, extra }) => ({
      mode: "window" as const,
      windowSize,
      degraded: { minFailureCount: degraded },
      unhealthy: { minFailureCount: Math.min(windowSize, degraded + extra) },
    })),
);

const checkArbitrary = fc.record({
  thresholds: fc.option(thresholdsArbitrary, { nil: undefined }),
  // null: every environment; []: env-less; a list: those of the membership it names.
  environmentIds: fc.oneof(fc.constant(null), fc.constant([] as string[]), fc.subarray([...ENVIRONMENTS], { minLength: 1 })),
  paused: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
});

const systemArbitrary = fc.record({
  membership: fc.shuffledSubarray([...ENVIRONMENTS], { minLength: 1 }),
  checks: fc.array(checkArbitrary, { minLength: 1, maxLength: 3 }),
});

const runPickArbitrary = fc.record({
  system: fc.nat(),
  check: fc.nat(),
  environment: fc.nat(),
  status: statusArbitrary,
  // Now and then a run is sent again (same runId, same content): a client retry.
  resend: fc.oneof({ arbitrary: fc.constant(undefined), weight: 5 }, { arbitrary: fc.nat(), weight: 1 }),
});

const callArbitrary = fc.record({
  engine: fc.nat(),
  batch: fc.boolean(),
  runs: fc.array(runPickArbitrary, { minLength: 1, maxLength: 3 }),
});

/**
 * Scenarios for `engines` engines: 1–3 systems of 1–2 environments with 1–3 checks each
 * (random thresholds, selectors, a paused check now and then), and 1–10 concurrent calls of
 * 1–3 valid runs each, every run with an explicit `runId` and `timestamp`.
 */
export function scenarioArbitrary(engines: number): fc.Arbitrary<Scenario> {
  return fc
    .record({
      systems: fc.array(systemArbitrary, { minLength: 1, maxLength: 3 }),
      calls: fc.array(callArbitrary, { minLength: 1, maxLength: 10 }),
    })
    .map(({ systems, calls }) => {
      const topology = {
        systems: systems.map((system, systemIndex) => ({
          systemId: `s${systemIndex}`,
          environmentIds: system.membership,
          checks: system.checks.map((check, checkIndex): CheckDoc => ({
            checkId: `c${checkIndex}`,
            environmentIds: check.environmentIds,
            paused: check.paused,
            ...(check.thresholds === undefined ? {} : { thresholds: check.thresholds }),
          })),
        })),
      } satisfies TopologyDoc;
      const sent: RunInput[] = [];
      const scenarioCalls = calls.map((call): ScenarioCall => {
        const picks = call.batch ? call.runs : call.runs.slice(0, 1);
        const runs = picks.map((pick): RunInput => {
          if (pick.resend !== undefined && sent.length > 0) return sent[pick.resend % sent.length] as RunInput;
          const system = topology.systems[pick.system % topology.systems.length] as (typeof topology.systems)[number];
          const check = system.checks[pick.check % system.checks.length] as CheckDoc;
          const effective = resolveEffectiveEnvironments({ environmentIds: check.environmentIds, membership: system.environmentIds });
          const index = sent.length;
          const run: RunInput = {
            runId: `r${index}`,
            systemId: system.systemId,
            checkId: check.checkId,
            environmentId: effective.length === 0 ? null : effective[pick.environment % effective.length],
            status: pick.status,
            latencyMs: index,
            timestamp: new Date(TIME_BASE + index * 1000).toISOString(),
          };
          sent.push(run);
          return run;
        });
        return { engine: call.engine % engines, batch: call.batch, runs };
      });
      return { topology, calls: scenarioCalls };
    });
}

/** Every entity id a topology can have: each system's rollup and each of its environments. */
export function possibleEntityIds(topology: TopologyDoc): string[] {
  return topology.systems.flatMap((system) =>
    [null, ...system.environmentIds].map((environmentId) => encodeHealthEntityId({ systemId: system.systemId, environmentId })._unsafeUnwrap()),
  );
}

/** What a scenario produced, read back after every call settled and every event was delivered. */
export interface Observation {
  /** Outcomes of each call, in call order (one per run). */
  readonly outcomes: readonly (readonly RecordOutcome[])[];
  /** Run ids in acceptance (commit) order. */
  readonly acceptedRunIds: readonly string[];
  /** Events as a subscriber received them, in delivery order, redeliveries included. */
  readonly delivered: readonly HealthEvent[];
  /** `getManyHealth` of every possible entity id. */
  readonly states: Record<string, HealthEntityState>;
  /** `listTransitions` of every possible entity id. */
  readonly transitions: Record<string, HealthTransitionRecord[]>;
  /** Every stored slice of the topology's systems. */
  readonly slices: readonly SliceRecord[];
}

/**
 * The sequential model: `replay` of the topology and the accepted runs in acceptance order.
 * Fails when the accepted runs are not exactly the scenario's distinct runs.
 */
export function sequentialModel(scenario: Scenario, observation: Observation): ReplayResult {
  const byId = new Map(scenario.calls.flatMap((call) => call.runs.map((run) => [run.runId as string, run] as const)));
  expect([...observation.acceptedRunIds].sort(), "every distinct run id is accepted exactly once").toEqual([...byId.keys()].sort());
  const model = replay({ topology: scenario.topology, runs: observation.acceptedRunIds.map((runId) => byId.get(runId) as RunInput) });
  expect(model.rejected, "the model rejects no accepted run").toEqual([]);
  expect(model.duplicates, "the model sees no duplicate among accepted runs").toEqual([]);
  return model;
}

function bySequence(events: Iterable<HealthEvent>): Record<string, HealthEvent[]> {
  return sortedRecord(
    [...groupBy(events, (event) => event.entityId)].map(([entityId, list]) => [entityId, [...list].sort((a, b) => a.sequence - b.sequence)] as const),
  );
}

/** SPEC §8 G1 (and G6 under concurrency): outcomes, events, deliveries and transition logs against the model. */
export function expectExactlyOnce(scenario: Scenario, observation: Observation, model: ReplayResult): void {
  // G6: of all the calls that carried one run id, exactly one accepted it; the others were told it was a duplicate.
  const accepted = new Map<string, number>();
  scenario.calls.forEach((call, callIndex) => {
    const outcomes = observation.outcomes[callIndex] ?? [];
    expect(outcomes.map((outcome) => outcome.runId), `call ${callIndex}: one outcome per run, in order`).toEqual(call.runs.map((run) => run.runId));
    for (const outcome of outcomes) {
      if (outcome.duplicate) expect(outcome.events, `duplicate ${outcome.runId} produced no events`).toEqual([]);
      else accepted.set(outcome.runId, (accepted.get(outcome.runId) ?? 0) + 1);
    }
  });
  for (const [runId, count] of accepted) expect(count, `run ${runId} accepted by exactly one call`).toBe(1);

  const produced = observation.outcomes.flatMap((outcomes) => outcomes.flatMap((outcome) => outcome.events));
  const actual = bySequence(produced);
  // The law itself, independent of the model: 1..n, no gap, no repeat, chained.
  for (const [entityId, events] of Object.entries(actual)) {
    expect(events.map((event) => event.sequence), `${entityId}: sequences 1..n`).toEqual(events.map((_, index) => index + 1));
    events.slice(1).forEach((event, index) => {
      const before = events[index] as HealthEvent;
      if (event.type === "health.transition" && before.type === "health.transition") {
        expect(event.previousStatus, `${entityId}: event ${event.sequence} continues from event ${before.sequence}`).toBe(before.newStatus);
      }
    });
  }
  expect(actual, "each entity's events equal the sequential model's").toEqual(bySequence(model.transitions));

  // G4 as seen by a subscriber: every event, each entity's first deliveries in sequence order.
  const firstDeliveries = [...new Map(observation.delivered.map((event) => [event.eventId, event] as const)).values()];
  for (const [entityId, events] of groupBy(firstDeliveries, (event) => event.entityId)) {
    const sequences = events.map((event) => event.sequence);
    expect(sequences, `${entityId}: delivered in sequence order`).toEqual([...sequences].sort((a, b) => a - b));
  }
  expect(bySequence(firstDeliveries), "a subscriber receives exactly the committed events").toEqual(actual);

  // The transition log holds the same chain.
  const expectedLog = sortedRecord(
    Object.entries(actual).map(([entityId, events]) => [entityId, events.filter((event) => event.type === "health.transition").map(transitionOf)] as const),
  );
  const log = sortedRecord(
    Object.entries(observation.transitions)
      .filter(([, records]) => records.length > 0)
      .map(([entityId, records]) => [entityId, records.map(transitionOf)] as const),
  );
  expect(log, "each entity's transition log equals its events").toEqual(expectedLog);
}

function transitionOf(record: {
  readonly entityId: string;
  readonly sequence: number;
  readonly previousStatus: HealthStatus;
  readonly newStatus: HealthStatus;
  readonly occurredAt: string;
}) {
  return {
    entityId: record.entityId,
    sequence: record.sequence,
    previousStatus: record.previousStatus,
    newStatus: record.newStatus,
    occurredAt: record.occurredAt,
  };
}

/** SPEC §8 G2: every slice equals §5 over its accepted runs in acceptance order; every entity equals §6 (the model's states). */
export function expectNoLostUpdate(scenario: Scenario, observation: Observation, model: ReplayResult): void {
  const thresholds = new Map<string, Thresholds>();
  for (const system of scenario.topology.systems) {
    for (const check of system.checks) {
      thresholds.set(JSON.stringify([system.systemId, check.checkId]), validateThresholds(check.thresholds ?? DEFAULT_THRESHOLDS)._unsafeUnwrap());
    }
  }
  const runs = new Map(scenario.calls.flatMap((call) => call.runs.map((run) => [run.runId as string, run] as const)));
  const expected = new Map<string, SliceState>();
  for (const runId of observation.acceptedRunIds) {
    const run = runs.get(runId) as RunInput;
    const key = JSON.stringify([run.systemId, run.checkId, run.environmentId ?? null]);
    const before = expected.get(key) ?? INITIAL_SLICE_STATE;
    expected.set(key, stepSlice(before, run.status, thresholds.get(JSON.stringify([run.systemId, run.checkId]))));
  }
  const stored = new Map(
    observation.slices.map((slice) => [JSON.stringify([slice.systemId, slice.checkId, slice.environmentId]), slice.state] as const),
  );
  for (const [key, state] of stored) {
    // A slice without accepted runs, if stored at all, is at the baseline.
    expect(state, `slice ${key}`).toEqual(expected.get(key) ?? INITIAL_SLICE_STATE);
  }
  for (const [key, state] of expected) expect(stored.get(key), `slice ${key} is stored`).toEqual(state);
  expect(sortedRecord(Object.entries(observation.states)), "entity states equal §6 over the slices (replay)").toEqual(
    sortedRecord(Object.entries(model.states)),
  );
}
