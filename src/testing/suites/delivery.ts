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

    it(
      'a subscriber that restarts with from "now" still receives what was committed while its group had no subscriber (only the first registration decides the start)',
      async () => {
        const harness = await harnesses.open();
        const writer = harness.engine();
        await ok(writer.applyTopology(topologyOf(["restart"])), "applyTopology");
        const delivered: HealthEvent[] = [];
        const first = harness.engine();
        first.subscribe((event) => void delivered.push(event), { group: "restarting", from: "now" });
        // Written through the subscribing engine, which commits nothing before its group is registered.
        const before = await recordAll(first, runsOf("restart-before", "restart", flips(2)));
        await flushed(first);
        await first.close();
        const whileDown = await recordAll(writer, runsOf("restart-down", "restart", flips(3)));
        const second = harness.engine(await harness.otherProcess());
        second.subscribe((event) => void delivered.push(event), { group: "restarting", from: "now" });
        await flushed(second);
        expect(idsOf(delivered)).toEqual(idsOf([...before, ...whileDown]));
        expectPerEntityOrder(delivered);
      },
      timeout,
    );

    it(
      "emitter.prune never deletes an event a registered group has not settled, and deletes it once every group has",
      async () => {
        const harness = await harnesses.open();
        const writer = harness.engine();
        await ok(writer.applyTopology(topologyOf(["kept-a", "kept-b"])), "applyTopology");
        const { emitter } = harness.adapter;
        await emitter.registerGroup({ group: "prompt", from: "oldest" });
        await emitter.registerGroup({ group: "lagging", from: "oldest" });
        const events = [
          ...(await recordAll(writer, runsOf("kept-a", "kept-a", flips(3)))),
          ...(await recordAll(writer, runsOf("kept-b", "kept-b", flips(2)))),
        ];
        const prompt = harness.engine();
        prompt.subscribe(() => undefined, { group: "prompt" });
        await flushed(prompt);
        const everything = { olderThan: new Date(Date.now() + 86_400_000), maxEvents: 0 };
        expect(await emitter.prune(everything), "an event the lagging group has not settled is kept").toBe(0);
        const delivered: HealthEvent[] = [];
        const lagging = harness.engine(await harness.otherProcess());
        lagging.subscribe((event) => void delivered.push(event), { group: "lagging" });
        await flushed(lagging);
        expect(idsOf(delivered)).toEqual(idsOf(events));
        expect(await emitter.prune(everything), "settled by every group: deleted").toBe(events.length);
      },
      timeout,
    );

    it(
      "flush() waits for the groups of its own subscriptions only: a registered group nobody consumes does not hold it",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine();
        await ok(engine.applyTopology(topologyOf(["idle-group"])), "applyTopology");
        await harness.adapter.emitter.registerGroup({ group: "nobody", from: "oldest" });
        const delivered: HealthEvent[] = [];
        engine.subscribe((event) => void delivered.push(event), { group: "somebody" });
        const events = await recordAll(engine, runsOf("idle-group", "idle-group", flips(2)));
        await flushed(engine);
        expect(idsOf(delivered)).toEqual(idsOf(events));
        expect(await harness.adapter.emitter.pendingCount({ group: "nobody", upTo: await harness.adapter.emitter.highWatermark() })).toBe(
          events.length,
        );
      },
      timeout,
    );

    it(
      "claim leases at most `limit` events, so a subscription with delivery.concurrency 1 runs one handler at a time",
      async () => {
        const harness = await harnesses.open();
        const engine = harness.engine(harness.adapter, { delivery: { concurrency: 1 } });
        const systems = ["limit-a", "limit-b", "limit-c"];
        await ok(engine.applyTopology(topologyOf(systems)), "applyTopology");
        const events: HealthEvent[] = [];
        for (const systemId of systems) events.push(...(await recordAll(engine, runsOf(systemId, systemId, ["unhealthy"]))));
        const { emitter } = harness.adapter;
        await emitter.registerGroup({ group: "one-at-a-time", from: "oldest" });
        const claimed = await emitter.claim({ group: "one-at-a-time", consumerId: "conformance", limit: 1, leaseMs: 1, now: new Date() });
        expect(claimed, "three entities have a deliverable event; limit 1").toHaveLength(1);
        let running = 0;
        let most = 0;
        const delivered: HealthEvent[] = [];
        engine.subscribe(
          async (event) => {
            running += 1;
            most = Math.max(most, running);
            // Yield a few turns, so that a second handler started meanwhile would overlap this one.
            for (let turn = 0; turn < 5; turn += 1) await new Promise((resolve) => setTimeout(resolve, 0));
            delivered.push(event);
            running -= 1;
          },
          { group: "serial" },
        );
        await flushed(engine);
        expect(idsOf(delivered)).toEqual(idsOf(events));
        expect(most, "handlers running at once").toBe(1);
      },
      timeout,
    );

    it(
      "listDeadLetters lists the most recently dead-lettered first, keeps the newest under limit, and filters by group",
      async () => {
        const harness = await harnesses.open();
        // A clock moved between the two, so that "most recently" is told by time, not by a tie.
        let now = Date.parse("2031-06-02T00:00:00.000Z");
        const engine = harness.engine(harness.adapter, { delivery: { maxAttempts: 1 }, clock: () => new Date(now) });
        await ok(engine.applyTopology(topologyOf(["letter-x", "letter-y"])), "applyTopology");
        for (const group of ["letters-a", "letters-b"]) {
          engine.subscribe(
            () => {
              throw new Error(`conformance: ${group} refuses everything`);
            },
            { group },
          );
        }
        const [x] = await recordAll(engine, runsOf("letter-x", "letter-x", ["unhealthy"]));
        await flushed(engine);
        now += 60_000;
        const [y] = await recordAll(engine, runsOf("letter-y", "letter-y", ["unhealthy"]));
        await flushed(engine);
        const listed = async (options: { group?: string; limit?: number }) =>
          (await ok(engine.listDeadLetters(options), "listDeadLetters")).map((letter) => `${letter.group} ${letter.event.eventId}`);
        expect(await listed({ group: "letters-a" })).toEqual([`letters-a ${y?.eventId}`, `letters-a ${x?.eventId}`]);
        expect(await listed({ group: "letters-b", limit: 1 })).toEqual([`letters-b ${y?.eventId}`]);
        const all = await listed({});
        expect(all, "every group").toHaveLength(4);
        expect(all.slice(2).sort(), "the older ones last").toEqual([`letters-a ${x?.eventId}`, `letters-b ${x?.eventId}`]);
      },
      timeout,
    );
  });
}
