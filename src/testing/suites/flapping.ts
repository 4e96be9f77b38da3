import fc from "fast-check";
import {
  FLAP_HISTORY_LENGTH,
  replay,
  type FlappingStartedEvent,
  type HealthEngine,
  type HealthEvent,
  type HealthStatus,
  type HealthTransitionEvent,
  type RunInput,
  type FlappingOverride,
  type TopologyDoc,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { EVERY_RUN_COUNTS, eventsOf, flips, idsOf, runsOf, topologyOf } from "../fixtures";
import { HANG_GUARD_MS, Harness } from "../harness";
import { failure, groupBy, ok, within } from "../support";
import type { SuiteContext } from "./context";

/** Topology changes are stamped with this clock, so that the engine's events equal replay's. */
const FIXED_NOW = new Date("2031-01-01T00:00:00.000Z");
const fixedClock = () => FIXED_NOW;
const STATUSES: readonly HealthStatus[] = ["healthy", "degraded", "unhealthy"];

const isTransition = (event: HealthEvent): event is HealthTransitionEvent => event.type === "health.transition";

function flushed(engine: HealthEngine): Promise<void> {
  return within(engine.flush(), HANG_GUARD_MS, () => "flush() did not resolve");
}

/** Records `runs` in batches of `size`, the engines taking turns; returns every event in the order the calls returned them. */
async function recordInTurns(engines: readonly HealthEngine[], runs: readonly RunInput[], size: number): Promise<HealthEvent[]> {
  const events: HealthEvent[] = [];
  for (let offset = 0; offset < runs.length; offset += size) {
    const engine = engines[(offset / size) % engines.length] as HealthEngine;
    events.push(...eventsOf(await ok(engine.recordRuns(runs.slice(offset, offset + size)), `recordRuns from ${offset}`)));
  }
  return events;
}

/**
 * The SPEC §10 protocol over one entity's events in sequence order: numbered 1..n; each
 * `flapping_started` right after the transition that crossed the threshold (itself unmarked, to
 * the status the event reports); transitions marked `flapping: true` exactly between started and
 * stopped; `flapping_stopped` carrying the status when flapping started and the status now.
 * Returns whether the entity is still flapping at the end.
 */
function expectFlappingProtocol(entityId: string, events: readonly HealthEvent[]): boolean {
  const sorted = [...events].sort((a, b) => a.sequence - b.sequence);
  expect(
    sorted.map((event) => event.sequence),
    `${entityId}: one gapless sequence shared by transitions and flapping events`,
  ).toEqual(sorted.map((_, index) => index + 1));
  let started: FlappingStartedEvent | undefined;
  let status: HealthStatus = "healthy";
  sorted.forEach((event, index) => {
    const where = `${entityId} #${event.sequence} (${event.type})`;
    if (event.type === "health.transition") {
      expect(event.previousStatus, `${where}: chained`).toBe(status);
      expect(event.flapping === true, `${where}: marked flapping exactly while flapping`).toBe(started !== undefined);
      status = event.newStatus;
    } else if (event.type === "health.flapping_started") {
      expect(started, `${where}: not already flapping`).toBeUndefined();
      const crossing = sorted[index - 1];
      expect(crossing?.type, `${where}: follows the transition that crossed the high threshold`).toBe("health.transition");
      expect(crossing && isTransition(crossing) && crossing.flapping === true, `${where}: the crossing transition is not marked`).toBe(false);
      expect(event.status, `${where}: the status flapping started in`).toBe(status);
      started = event;
    } else if (event.type === "health.flapping_stopped") {
      expect(started, `${where}: flapping had started`).toBeDefined();
      expect([event.statusBefore, event.statusAfter], `${where}: statusBefore is the status at the start, statusAfter the status now`).toEqual([
        started?.status,
        status,
      ]);
      started = undefined;
    }
  });
  return started !== undefined;
}

/**
 * A consumer that mutes flapping (SPEC §10): it notifies on every unmarked transition and, when a
 * flap stops, once for the net change if there is one. Returns its notifications per entity.
 */
function mutingConsumer(): { readonly handler: (event: HealthEvent) => void; readonly notified: Map<string, HealthStatus[]> } {
  const notified = new Map<string, HealthStatus[]>();
  const notify = (entityId: string, status: HealthStatus) => notified.set(entityId, [...(notified.get(entityId) ?? []), status]);
  const seen = new Set<string>();
  return {
    notified,
    handler: (event) => {
      // Deduplicated on eventId, as SPEC G4 asks of a consumer.
      if (seen.has(event.eventId)) return;
      seen.add(event.eventId);
      if (event.type === "health.transition" && event.flapping !== true) notify(event.entityId, event.newStatus);
      if (event.type === "health.flapping_stopped" && event.statusBefore !== event.statusAfter) notify(event.entityId, event.statusAfter);
    },
  };
}

/**
 * The muting-consumer law: starting from the healthy baseline, each notification is a real change
 * (never the status last notified), and the last one is the entity's final status.
 */
function expectMutingLaw(entityId: string, notifications: readonly HealthStatus[], final: HealthStatus | undefined): void {
  const chain = ["healthy", ...notifications];
  chain.slice(1).forEach((status, index) => expect(status, `${entityId}: notification ${index + 1} is a change`).not.toBe(chain[index]));
  expect(chain.at(-1), `${entityId}: the last notification is the final status`).toBe(final);
}

/** A topology check of the kit's thresholds, with an optional flap override and environment selector. */
function checkOf(checkId: string, flapping?: FlappingOverride, environmentIds?: string[]) {
  return {
    checkId,
    thresholds: EVERY_RUN_COUNTS,
    ...(flapping === undefined ? {} : { flapping }),
    ...(environmentIds === undefined ? {} : { environmentIds }),
  };
}

/** Runs of `checkId` (otherwise as `runsOf`). */
function checkRuns(prefix: string, systemId: string, checkId: string, statuses: readonly HealthStatus[], environmentId: string | null = null): RunInput[] {
  return runsOf(prefix, systemId, statuses, environmentId).map((run) => ({ ...run, checkId }));
}

const flapEventsOf = (events: readonly HealthEvent[], entityId: string) =>
  events.filter((event) => event.entityId === entityId && event.type !== "health.transition").map((event) => event.type);

const TWO_ENVIRONMENTS: TopologyDoc = topologyOf(["flux"], ["prod", "staging"]);

const flapScenarioArbitrary = fc.record({
  runs: fc.array(fc.record({ environmentId: fc.constantFrom("prod", "staging"), status: fc.constantFrom(...STATUSES) }), { minLength: 12, maxLength: 24 }),
  settle: fc.record({ prod: fc.constantFrom(...STATUSES), staging: fc.constantFrom(...STATUSES) }),
  batch: fc.integer({ min: 1, max: 7 }),
});

/** SPEC §10: flap detection, its events in the entity's sequence, and the net change for a muting consumer. */
export function describeFlapping({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("flapping", () => {
    it(
      "an alternating check makes the entity flap: flapping_started after the crossing transition, transitions marked while flapping, flapping_stopped with statusBefore/statusAfter, one gapless sequence; engines taking turns give replay's events, logged and delivered",
      async () => {
        const harness = await harnesses.open();
        const [left, right] = await harness.enginePair({ clock: fixedClock });
        const topology = topologyOf(["flap"], ["prod"]);
        await ok(left.applyTopology(topology), "applyTopology");
        const delivered: HealthEvent[] = [];
        right.subscribe((event) => void delivered.push(event), { group: "flapping-observer" });
        const statuses: HealthStatus[] = [...Array.from({ length: 12 }, (_, index): HealthStatus => (index % 2 === 0 ? "degraded" : "healthy")), ...Array<HealthStatus>(25).fill("unhealthy")];
        const runs = runsOf("flap", "flap", statuses, "prod");
        // One run per call, the engines (processes) taking turns: the flap history lives in the store.
        const events = await recordInTurns([left, right], runs, 1);
        expect(events, "the events replay gives for the same runs").toEqual(replay({ topology, runs, options: { now: FIXED_NOW } }).transitions);

        for (const entityId of ["flap::prod", "flap"]) {
          const mine = events.filter((event) => event.entityId === entityId);
          expect(expectFlappingProtocol(entityId, mine), `${entityId}: flapping has stopped`).toBe(false);
          const types = mine.map((event) => event.type);
          expect(types.filter((type) => type === "health.flapping_started"), `${entityId}: flapping started once`).toHaveLength(1);
          expect(types.filter((type) => type === "health.flapping_stopped"), `${entityId}: and stopped once`).toHaveLength(1);
          const during = mine.filter((event) => isTransition(event) && event.flapping === true);
          expect(during.length, `${entityId}: transitions while flapping are still emitted`).toBeGreaterThan(0);
          expect(mine.find((event) => event.type === "health.flapping_stopped"), `${entityId}: stopped in the final status`).toMatchObject({ statusAfter: "unhealthy" });
          const log = await ok(right.listTransitions({ entityId }), `listTransitions(${entityId})`);
          expect(
            log.map((record) => [record.sequence, record.previousStatus, record.newStatus, record.occurredAt]),
            `${entityId}: every transition logged, flapping or not, with its own sequence`,
          ).toEqual(mine.filter(isTransition).map((event) => [event.sequence, event.previousStatus, event.newStatus, event.occurredAt]));
        }
        await flushed(right);
        expect(idsOf(delivered)).toEqual(idsOf(events));
        for (const event of delivered) expect(event, `${event.eventId} delivered as returned`).toEqual(events.find((candidate) => candidate.eventId === event.eventId));
      },
      timeout,
    );

    it(
      "the muting-consumer law, under random runs then a calm tail: a subscriber (in another process) that drops flapping transitions and notifies on flapping_stopped when statusBefore ≠ statusAfter only ever notifies real changes and ends with each entity's final status; the events equal replay's",
      () =>
        fc.assert(
          fc.asyncProperty(flapScenarioArbitrary, async (scenario) => {
            const harness = await Harness.open(config);
            try {
              const [left, right] = await harness.enginePair({ clock: fixedClock });
              const consumer = harness.engine(await harness.otherProcess(), { clock: fixedClock });
              await ok(left.applyTopology(TWO_ENVIRONMENTS), "applyTopology");
              const muting = mutingConsumer();
              consumer.subscribe(muting.handler, { group: "muting-consumer" });
              // 21 evaluations in one status leave no change in any entity's history: every flap stops.
              const tail = Array.from({ length: FLAP_HISTORY_LENGTH }, () => [
                { environmentId: "prod", status: scenario.settle.prod },
                { environmentId: "staging", status: scenario.settle.staging },
              ]).flat();
              const runs: RunInput[] = [...scenario.runs, ...tail].map((input, index) => ({
                runId: `flux-${index}`,
                systemId: "flux",
                checkId: "check",
                environmentId: input.environmentId,
                status: input.status,
                timestamp: new Date(FIXED_NOW.getTime() + (index + 1) * 1000).toISOString(),
              }));
              const events = [
                ...(await recordInTurns([left, right], runs.slice(0, scenario.runs.length), scenario.batch)),
                ...(await recordInTurns([right], runs.slice(scenario.runs.length), tail.length)),
              ];
              expect(events).toEqual(replay({ topology: TWO_ENVIRONMENTS, runs, options: { now: FIXED_NOW } }).transitions);
              await flushed(consumer);
              const finals = await ok(consumer.getManyHealth(["flux", "flux::prod", "flux::staging"]), "getManyHealth");
              const byEntity = groupBy(events, (event) => event.entityId);
              for (const entityId of ["flux", "flux::prod", "flux::staging"]) {
                expect(expectFlappingProtocol(entityId, byEntity.get(entityId) ?? []), `${entityId}: the calm tail stopped any flap`).toBe(false);
                expectMutingLaw(entityId, muting.notified.get(entityId) ?? [], finals[entityId]?.status);
              }
              if (harness.backgroundErrors.length > 0) throw new Error(`background error: ${String(harness.backgroundErrors[0])}`, { cause: harness.backgroundErrors[0] });
            } finally {
              await harness.close();
            }
          }),
          // A third of the runs: each one records some seventy runs (the calm tail alone is 42), and
          // the events' equality with replay under interleavings is G1's property already.
          { numRuns: Math.ceil(config.numRuns / 3) },
        ),
      timeout,
    );

    it(
      "a flap that ends in the status it started in gives a muting consumer nothing after the crossing transition; one that ends elsewhere gives exactly one notification, the final status",
      async () => {
        const harness = await harnesses.open();
        const [writer, reader] = await harness.enginePair({ clock: fixedClock });
        await ok(writer.applyTopology(topologyOf(["same", "moved"])), "applyTopology");
        const muting = mutingConsumer();
        reader.subscribe(muting.handler, { group: "muting" });

        for (const [systemId, ending] of [
          ["same", "start"],
          ["moved", "elsewhere"],
        ] as const) {
          const events: HealthEvent[] = [];
          let index = 0;
          const record = async (status: HealthStatus) => {
            index += 1;
            const [input] = runsOf(`${systemId}-${index}`, systemId, [status]);
            events.push(...(await ok(writer.recordRun(input as RunInput), `recordRun ${systemId} #${index}`)).events);
          };
          for (const status of flips(21)) {
            await record(status);
            if (events.some((event) => event.type === "health.flapping_started")) break;
          }
          const started = events.find((event): event is FlappingStartedEvent => event.type === "health.flapping_started");
          expect(started, `${systemId}: alternating runs start a flap`).toBeDefined();
          const from = started?.status as HealthStatus;
          const other: HealthStatus = from === "healthy" ? "unhealthy" : "healthy";
          const final: HealthStatus = ending === "start" ? from : "degraded";
          // Two more round trips while flapping, then calm in the final status until the flap stops.
          for (const status of [other, from, other, from]) await record(status);
          for (let calm = 0; calm < 30 && !events.some((event) => event.type === "health.flapping_stopped"); calm += 1) await record(final);
          expect(expectFlappingProtocol(systemId, events), `${systemId}: the flap stopped`).toBe(false);
          expect(events.filter((event) => isTransition(event) && event.flapping === true).length, `${systemId}: muted transitions`).toBeGreaterThanOrEqual(4);
          await flushed(reader);
          const notifications = muting.notified.get(systemId) ?? [];
          const beforeFlap = events.slice(0, events.indexOf(started as HealthEvent)).filter(isTransition).map((event) => event.newStatus);
          const expected = ending === "start" ? beforeFlap : [...beforeFlap, final];
          expect(notifications, `${systemId}: ${ending === "start" ? "nothing sent for the flap" : "one net-change notification"}`).toEqual(expected);
          expectMutingLaw(systemId, notifications, (await ok(reader.getHealth(systemId), "getHealth"))?.status);
        }
      },
      timeout,
    );

    it(
      "with flapping disabled, alternating runs give transitions only, none marked, equal to replay with flapping disabled",
      async () => {
        const harness = await harnesses.open();
        const flapping = { enabled: false };
        const engines = await harness.enginePair({ clock: fixedClock, flapping });
        const topology = topologyOf(["steady"], ["prod"]);
        await ok(engines[0].applyTopology(topology), "applyTopology");
        const runs = runsOf("steady", "steady", flips(30), "prod");
        const events = await recordInTurns(engines, runs, 3);
        expect(events.every((event) => isTransition(event) && !("flapping" in event)), "only unmarked transitions").toBe(true);
        expect(events.filter((event) => event.entityId === "steady::prod").map((event) => event.sequence)).toEqual(runs.map((_, index) => index + 1));
        expect(events).toEqual(replay({ topology, runs, options: { now: FIXED_NOW, flapping } }).transitions);
      },
      timeout,
    );

    it(
      "per assignment (§10): a check with a lower high threshold makes its entities flap where the engine's settings would not; an entity without it does not; equal to replay",
      async () => {
        const harness = await harnesses.open();
        const [writer, reader] = await harness.enginePair({ clock: fixedClock });
        const topology: TopologyDoc = {
          systems: [
            { systemId: "watched", environmentIds: ["prod"], checks: [checkOf("check", { high: 10, low: 5 })] },
            { systemId: "plain", environmentIds: ["prod"], checks: [checkOf("check")] },
          ],
        };
        const events = [...(await ok(writer.applyTopology(topology), "applyTopology")).events];
        // Four flips reach a percent state change of about 24: above 10, below the default 30.
        const runs = [...runsOf("watched", "watched", flips(4), "prod"), ...runsOf("plain", "plain", flips(4), "prod")];
        events.push(...(await recordInTurns([writer, reader], runs, 1)));
        for (const entityId of ["watched", "watched::prod"]) {
          expect(flapEventsOf(events, entityId), `${entityId}: flaps under its check's threshold`).toEqual(["health.flapping_started"]);
          expectFlappingProtocol(entityId, events.filter((event) => event.entityId === entityId));
        }
        for (const entityId of ["plain", "plain::prod"]) expect(flapEventsOf(events, entityId), `${entityId}: the engine's settings`).toEqual([]);
        expect(events).toEqual(replay({ topology, runs, options: { now: FIXED_NOW } }).transitions);
      },
      timeout,
    );

    it(
      "per assignment (§10): the rollup flaps when any contributing check has detection on, even if the flipping check has it off; an environment's entity uses only the checks effective there",
      async () => {
        const harness = await harnesses.open();
        const [writer, reader] = await harness.enginePair({ clock: fixedClock });
        // "quiet" (detection off) runs only in prod, "loud" (the engine's settings) only in staging.
        const topology: TopologyDoc = {
          systems: [
            {
              systemId: "mixed",
              environmentIds: ["prod", "staging"],
              checks: [checkOf("quiet", { enabled: false }, ["prod"]), checkOf("loud", undefined, ["staging"])],
            },
          ],
        };
        const events = [...(await ok(writer.applyTopology(topology), "applyTopology")).events];
        const runs = [...checkRuns("quiet", "mixed", "quiet", flips(12), "prod"), ...checkRuns("loud", "mixed", "loud", ["healthy"], "staging")];
        events.push(...(await recordInTurns([writer, reader], runs, 2)));
        expect(flapEventsOf(events, "mixed"), "the rollup: loud contributes with detection on").toEqual(["health.flapping_started"]);
        expectFlappingProtocol("mixed", events.filter((event) => event.entityId === "mixed"));
        const prod = events.filter((event) => event.entityId === "mixed::prod");
        expect(prod.length, "mixed::prod flips on every run").toBe(12);
        expect(prod.every((event) => isTransition(event) && !("flapping" in event)), "mixed::prod: only quiet is effective there, so no flap").toBe(true);
        expect(events.filter((event) => event.entityId === "mixed::staging"), "mixed::staging never changed").toEqual([]);
        expect(events).toEqual(replay({ topology, runs, options: { now: FIXED_NOW } }).transitions);
      },
      timeout,
    );

    it(
      "per assignment (§10): with every contributing check's detection off there are no flapping events; a check that turns it on under a disabled engine brings it back",
      async () => {
        const harness = await harnesses.open();
        const topology: TopologyDoc = {
          systems: [{ systemId: "off", environmentIds: [], checks: [checkOf("check", { enabled: false }), checkOf("other", { enabled: false, high: 90 })] }],
        };
        const engines = await harness.enginePair({ clock: fixedClock });
        const events = [...(await ok(engines[0].applyTopology(topology), "applyTopology")).events];
        const runs = runsOf("off", "off", flips(30));
        events.push(...(await recordInTurns(engines, runs, 3)));
        expect(events.every((event) => isTransition(event) && !("flapping" in event)), "only unmarked transitions").toBe(true);
        expect(events).toHaveLength(30);
        expect(events).toEqual(replay({ topology, runs, options: { now: FIXED_NOW } }).transitions);

        const flapping = { enabled: false };
        const disabled = harness.engine(harness.adapter, { clock: fixedClock, flapping });
        const on: TopologyDoc = { systems: [{ systemId: "on", environmentIds: [], checks: [checkOf("check", { enabled: true })] }] };
        await ok(disabled.applyTopology(on), "applyTopology");
        const onRuns = runsOf("on", "on", flips(8));
        const onEvents = eventsOf(await ok(disabled.recordRuns(onRuns), "recordRuns"));
        expect(flapEventsOf(onEvents, "on")).toEqual(["health.flapping_started"]);
        expect(onEvents).toEqual(replay({ topology: on, runs: onRuns, options: { now: FIXED_NOW, flapping } }).transitions);
      },
      timeout,
    );

    it(
      "per assignment (§10): changing only the override is a topology change, the same one twice is not, an omitted one is kept and null clears it; another engine on the same store reads it back",
      async () => {
        const harness = await harnesses.open();
        const [writer, reader] = await harness.enginePair({ clock: fixedClock });
        const storedOverride = async () => {
          const [assignment] = await harness.adapter.store.transaction({ lockKeys: [] }, (tx) => tx.getAssignments(["tuned"]));
          return assignment?.flapping;
        };
        const doc = (flapping?: FlappingOverride): TopologyDoc => ({ systems: [{ systemId: "tuned", environmentIds: [], checks: [checkOf("check", flapping)] }] });
        expect((await ok(writer.applyTopology(doc()), "applyTopology")).changed).toBe(true);
        expect((await ok(writer.applyTopology(doc({ low: 5, high: 12 })), "applyTopology with an override")).changed, "only the override changed").toBe(true);
        expect((await ok(reader.applyTopology(doc({ low: 5, high: 12 })), "the same document again")).changed, "the same document twice").toBe(false);
        expect(await storedOverride()).toEqual({ low: 5, high: 12 });
        const assign = (input: { flapping?: FlappingOverride | null; enabled?: boolean }) =>
          ok(writer.assignCheck({ systemId: "tuned", checkId: "check", ...input }), `assignCheck ${JSON.stringify(input)}`);
        expect((await assign({ flapping: { high: 12, low: 5 } })).changed, "the same override, keys in another order").toBe(false);
        expect((await assign({ enabled: true })).changed, "flapping omitted: kept").toBe(false);
        expect(await storedOverride()).toEqual({ low: 5, high: 12 });
        expect((await assign({ flapping: { high: 10, low: 5 } })).changed, "a new override").toBe(true);
        expect(await storedOverride()).toEqual({ high: 10, low: 5 });

        // The other engine (process) evaluates with the stored override: two flips reach 12.4 (the default high is 30).
        const runs = runsOf("tuned", "tuned", flips(2));
        const events = eventsOf(await ok(reader.recordRuns(runs), "recordRuns"));
        expect(flapEventsOf(events, "tuned"), "flaps under the stored override").toEqual(["health.flapping_started"]);

        expect((await assign({ flapping: null })).changed, "null clears the override").toBe(true);
        expect(await storedOverride()).toBeUndefined();
        expect((await assign({ flapping: null })).changed).toBe(false);
        expect((await ok(reader.applyTopology(doc()), "the plain document")).changed, "the document without override matches").toBe(false);
      },
      timeout,
    );

    it(
      "per assignment (§10, §13): an override that is out of range, has unknown keys or does not resolve to low < high with the engine's settings is a ValidationError with its path, and nothing is written",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine(harness.adapter, { clock: fixedClock });
        const delivered: HealthEvent[] = [];
        engine.subscribe((event) => void delivered.push(event), { group: "override-validation" });
        await ok(engine.applyTopology({ systems: [{ systemId: "strict", environmentIds: [], checks: [checkOf("check", { high: 50 })] }] }), "applyTopology");
        const pathsOf = async (pending: Parameters<typeof failure>[0], what: string) => {
          const error = await failure(pending, what);
          expect(error.type, what).toBe("validation");
          return ("issues" in error ? error.issues : []).map((issue) => issue.path);
        };
        expect(await pathsOf(engine.assignCheck({ systemId: "strict", checkId: "check", flapping: { low: 40 } }), "low above the engine's high")).toEqual([["flapping", "low"]]);
        expect(await pathsOf(engine.assignCheck({ systemId: "strict", checkId: "check", flapping: { high: 15 } }), "high below the engine's low")).toEqual([["flapping", "high"]]);
        expect(
          await pathsOf(engine.assignCheck({ systemId: "strict", checkId: "check", flapping: { low: 101, high: -1, noise: 1 } as FlappingOverride }), "out of range, unknown key"),
        ).toEqual([
          ["flapping", "low"],
          ["flapping", "high"],
          ["flapping", "noise"],
        ]);
        expect(
          await pathsOf(
            engine.applyTopology({
              systems: [
                { systemId: "strict", environmentIds: [], checks: [checkOf("check", { low: 35 })] },
                { systemId: "new", environmentIds: [], checks: [checkOf("a"), checkOf("b", { high: 20 })] },
              ],
            }),
            "applyTopology",
          ),
        ).toEqual([
          ["systems", 0, "checks", 0, "flapping", "low"],
          ["systems", 1, "checks", 1, "flapping", "high"],
        ]);
        const stored = await harness.adapter.store.transaction({ lockKeys: [] }, async (tx) => ({
          systemIds: await tx.listSystemIds(),
          overrides: (await tx.getAssignments(["strict"])).map((assignment) => assignment.flapping),
        }));
        expect(stored, "nothing written").toEqual({ systemIds: ["strict"], overrides: [{ high: 50 }] });
        await flushed(engine);
        expect(delivered, "no event").toEqual([]);
      },
      timeout,
    );
  });
}
