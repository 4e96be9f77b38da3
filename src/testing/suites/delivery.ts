import type { HealthEngine, HealthEvent } from "healthstate";
import { describe, expect, it } from "vitest";
import { eventsOf, flips, idsOf, runsOf, topologyOf } from "../fixtures";
import { HANG_GUARD_MS } from "../harness";
import { deferred, groupBy, ok, within } from "../support";
import type { SuiteContext } from "./context";

interface Delivery {
  readonly event: HealthEvent;
  readonly acknowledged: boolean;
}

function flushed(engine: HealthEngine): Promise<void> {
  return within(engine.flush(), HANG_GUARD_MS, () => "flush() did not resolve: an event is neither acknowledged nor dead-lettered");
}

/** Events deduplicated by `eventId` and sorted by it: what a deduplicating subscriber holds. */
function byId(events: readonly HealthEvent[]): HealthEvent[] {
  return [...new Map(events.map((event) => [event.eventId, event] as const)).values()].sort((a, b) =>
    a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0,
  );
}

/** Each entity's events in the order a handler first received them must be in sequence order. */
function expectPerEntityOrder(events: readonly HealthEvent[]): void {
  for (const [entityId, list] of groupBy(events, (event) => event.entityId)) {
    const sequences = list.map((event) => event.sequence);
    expect(sequences, `${entityId}: deliveries in sequence order`).toEqual([...sequences].sort((a, b) => a - b));
  }
}

async function recordAll(engine: HealthEngine, runs: Parameters<HealthEngine["recordRuns"]>[0]): Promise<HealthEvent[]> {
  return eventsOf(await ok(engine.recordRuns(runs), "recordRuns"));
}

/** SPEC §8 G4: at least once, per-entity order, stable ids, failures and slowness isolated. */
export function describeDelivery({ config, harnesses }: SuiteContext): void {
  const timeout = config.testTimeoutMs;
  describe("G4 delivery", () => {
    it(
      "events committed before any subscriber existed, by an engine that has since closed, reach a new group from the oldest",
      async () => {
        const harness = await harnesses.open();
        const writer = harness.engine();
        await ok(writer.applyTopology(topologyOf(["past-a", "past-b"])), "applyTopology");
        const events = [
          ...(await recordAll(writer, runsOf("past-a", "past-a", flips(4)))),
          ...(await recordAll(writer, runsOf("past-b", "past-b", flips(3)))),
        ];
        await writer.close();
        const reader = harness.engine(await harness.otherProcess());
        const delivered: HealthEvent[] = [];
        reader.subscribe((event) => void delivered.push(event), { group: "latecomer" });
        await flushed(reader);
        expect(byId(delivered)).toEqual(byId(events));
        expectPerEntityOrder(delivered);
      },
      timeout,
    );

    it(
      'a group that starts from "now" skips history and receives what comes after; a later registration does not move its start',
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["now"])), "applyTopology");
        await recordAll(engine, runsOf("now-history", "now", flips(2)));
        // Registered through the port before subscribing, so "now" is a known point for every adapter.
        await harness.adapter.emitter.registerGroup({ group: "from-now", from: "now" });
        await harness.adapter.emitter.registerGroup({ group: "from-now", from: "oldest" });
        const delivered: HealthEvent[] = [];
        engine.subscribe((event) => void delivered.push(event), { group: "from-now", from: "now" });
        const fresh = await recordAll(engine, runsOf("now-fresh", "now", flips(3)));
        await flushed(engine);
        expect(idsOf(delivered)).toEqual(idsOf(fresh));
      },
      timeout,
    );

    it(
      "a handler that throws gets the same event again until it succeeds, recordRun never fails because of it, and per-entity order holds",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["retry-a", "retry-b"])), "applyTopology");
        const failuresPerEvent = 2;
        const attempts = new Map<string, number>();
        const log: Delivery[] = [];
        engine.subscribe(
          (event) => {
            const attempt = (attempts.get(event.eventId) ?? 0) + 1;
            attempts.set(event.eventId, attempt);
            log.push({ event, acknowledged: attempt > failuresPerEvent });
            if (attempt <= failuresPerEvent) throw new Error(`conformance: failing attempt ${attempt}`);
          },
          { group: "retried" },
        );
        const events = [
          ...(await recordAll(engine, runsOf("retry-a", "retry-a", flips(3)))),
          ...(await recordAll(engine, runsOf("retry-b", "retry-b", flips(2)))),
        ];
        await flushed(engine);
        for (const event of events) {
          const received = log.filter((delivery) => delivery.event.eventId === event.eventId);
          expect(received.length, `${event.eventId}: delivered until acknowledged`).toBeGreaterThanOrEqual(failuresPerEvent + 1);
          for (const delivery of received) expect(delivery.event, `${event.eventId}: the same event each time`).toEqual(event);
        }
        // No event of an entity is handed out before the previous one was acknowledged.
        for (const [entityId, deliveries] of groupBy(log, (delivery) => delivery.event.entityId)) {
          const sequences = deliveries.map((delivery) => delivery.event.sequence);
          expect(sequences, `${entityId}: attempts never run ahead of an unacknowledged event`).toEqual([...sequences].sort((a, b) => a - b));
        }
        expectPerEntityOrder(log.filter((delivery) => delivery.acknowledged).map((delivery) => delivery.event));
      },
      timeout,
    );

    it(
      "a handler stuck on one entity does not hold back another entity",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["stuck", "free"])), "applyTopology");
        const release = deferred();
        const freeHandled = deferred();
        const handled: string[] = [];
        engine.subscribe(
          async (event) => {
            if (event.entityId === "stuck") await release.promise;
            handled.push(event.eventId);
            if (event.entityId === "free") freeHandled.resolve();
          },
          { group: "isolation" },
        );
        const stuck = await recordAll(engine, runsOf("stuck", "stuck", flips(2)));
        const free = await recordAll(engine, runsOf("free", "free", flips(1)));
        await within(freeHandled.promise, HANG_GUARD_MS, () => "the free entity's event was not delivered while another entity's handler hung");
        expect(handled).not.toContain(stuck[0]?.eventId);
        release.resolve();
        await flushed(engine);
        expect([...handled].sort()).toEqual(idsOf([...stuck, ...free]));
      },
      timeout,
    );

    it(
      "emitter.fail is a no-op for a claim that no longer holds the lease: a consumer whose lease expired cannot release or dead-letter the event another consumer claimed since",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["late-fail"])), "applyTopology");
        const [event] = await recordAll(engine, runsOf("late-fail", "late-fail", flips(1)));
        const { emitter } = harness.adapter;
        await emitter.registerGroup({ group: "late-fail", from: "oldest" });
        const t0 = Date.now();
        const claim = async (consumerId: string, at: number, leaseMs = 600_000) =>
          (await emitter.claim({ group: "late-fail", consumerId, limit: 10, leaseMs, now: new Date(t0 + at) })).map((claimed) => [claimed.event.eventId, claimed.attempt]);
        expect(await claim("c1", 0, 10), "c1 claims with a short lease").toEqual([[event?.eventId, 1]]);
        expect(await claim("c2", 20), "c1's lease expired: c2 claims").toEqual([[event?.eventId, 2]]);
        const late = { group: "late-fail", eventId: event?.eventId ?? "", error: "late", retryAt: new Date(t0 + 22), now: new Date(t0 + 21) };
        await emitter.fail({ ...late, consumerId: "c1", attempt: 1, deadLetter: false });
        await emitter.fail({ ...late, consumerId: "c1", attempt: 1, deadLetter: true });
        await emitter.fail({ ...late, consumerId: "c2", attempt: 1, deadLetter: true });
        expect(await claim("c3", 30), "c2 still holds the lease").toEqual([]);
        expect(await emitter.listDeadLetters({ group: "late-fail" }), "nothing dead-lettered").toEqual([]);
        await emitter.fail({ ...late, consumerId: "c2", attempt: 2, deadLetter: false });
        expect(await claim("c3", 30), "the holder's own failure releases it").toEqual([[event?.eventId, 3]]);
      },
      timeout,
    );

    it(
      "two groups each receive every event",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["fanout-a", "fanout-b"], ["prod"])), "applyTopology");
        const first: HealthEvent[] = [];
        const second: HealthEvent[] = [];
        engine.subscribe((event) => void first.push(event), { group: "fanout-1" });
        engine.subscribe((event) => void second.push(event), { group: "fanout-2" });
        const events = [
          ...(await recordAll(engine, runsOf("fanout-a", "fanout-a", flips(3), "prod"))),
          ...(await recordAll(engine, runsOf("fanout-b", "fanout-b", flips(2), "prod"))),
        ];
        await flushed(engine);
        expect(byId(first)).toEqual(byId(events));
        expect(byId(second)).toEqual(byId(events));
        expectPerEntityOrder(first);
        expectPerEntityOrder(second);
      },
      timeout,
    );

    it(
      "two subscriptions of one group, on two engines, share the events: together they handle every event, each once",
      async () => {
        const harness = await harnesses.open();
        const [left, right] = await harness.enginePair();
        await ok(left.applyTopology(topologyOf(["shared-a", "shared-b", "shared-c"])), "applyTopology");
        const handled: HealthEvent[] = [];
        left.subscribe((event) => void handled.push(event), { group: "competing" });
        right.subscribe((event) => void handled.push(event), { group: "competing" });
        const events = [
          ...(await recordAll(left, runsOf("shared-a", "shared-a", flips(4)))),
          ...(await recordAll(right, runsOf("shared-b", "shared-b", flips(3)))),
          ...(await recordAll(left, runsOf("shared-c", "shared-c", flips(2)))),
        ];
        await flushed(left);
        await flushed(right);
        expect(byId(handled)).toEqual(byId(events));
        expect(handled.length, "no event handled twice when no handler failed").toBe(events.length);
        expectPerEntityOrder(handled);
      },
      timeout,
    );

    it(
      "an event that fails delivery.maxAttempts times becomes a dead letter, is listed, and does not block its entity's later events",
      async () => {
        const harness = await harnesses.open();
        const maxAttempts = 2;
        const engine = harness.engine(harness.adapter, { delivery: { maxAttempts } });
        await ok(engine.applyTopology(topologyOf(["doomed", "bystander"])), "applyTopology");
        const log: Delivery[] = [];
        // The entity's first event fails every time.
        const isPoison = (event: HealthEvent) => event.entityId === "doomed" && event.sequence === 1;
        engine.subscribe(
          (event) => {
            const acknowledged = !isPoison(event);
            log.push({ event, acknowledged });
            if (!acknowledged) throw new Error("conformance: poison event");
          },
          { group: "dead-letters" },
        );
        const [poisoned, ...later] = await recordAll(engine, runsOf("doomed", "doomed", flips(3)));
        const bystander = await recordAll(engine, runsOf("bystander", "bystander", flips(2)));
        await flushed(engine);

        const letters = await ok(engine.listDeadLetters({ group: "dead-letters" }), "listDeadLetters");
        expect(letters).toHaveLength(1);
        expect(poisoned && isPoison(poisoned)).toBe(true);
        expect(letters[0]).toMatchObject({ group: "dead-letters", attempts: maxAttempts, event: poisoned });
        expect(letters[0]?.lastError).toContain("poison event");
        expect(log.filter((delivery) => !delivery.acknowledged)).toHaveLength(maxAttempts);
        const acknowledged = log.filter((delivery) => delivery.acknowledged).map((delivery) => delivery.event);
        expect(idsOf(acknowledged)).toEqual(idsOf([...later, ...bystander]));
        const lastPoisonAttempt = log.map((delivery) => delivery.acknowledged).lastIndexOf(false);
        const firstLater = log.findIndex((delivery) => delivery.event.eventId === later[0]?.eventId);
        expect(firstLater, "the entity's next event comes after the dead letter").toBeGreaterThan(lastPoisonAttempt);
        expectPerEntityOrder(acknowledged);
      },
      timeout,
    );
  });
}
