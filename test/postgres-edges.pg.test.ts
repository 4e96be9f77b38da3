// Edges of the Postgres adapter that a mutation review (session 8) found no test held: each test
// here failed against a small change to the adapter (claim order, emitter retention, attempts,
// the high watermark, which errors are retried, an ambiguous COMMIT, the enqueue barrier).
import type pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import {
  CommitOutcomeUnknownError,
  TransactionRetriesExhaustedError,
  createPostgresAdapter,
  migrate,
} from "healthstate/adapters/postgres";
import { BACKENDS, DATABASE_URL, dropSchema, enqueue, interceptedPool, openPool, schemaNameFor, transitionEvent, usePgBackend } from "./helpers/pg";

const T0 = Date.parse("2026-11-30T10:00:00Z");
const at = (second: number) => new Date(T0 + second * 1000);

for (const backend of BACKENDS) {
  describe(`postgres adapter edges on ${backend}`, () => {
    const fixture = usePgBackend(backend);

    it("with a limit below what is claimable, leases the lowest outbox positions, whatever the deliveries' physical or key order", async () => {
      const adapter = fixture().adapter();
      await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
      // Positions: z#1 < y#1 < x#1, the reverse of entity-id (primary key) order.
      await enqueue(adapter, [transitionEvent("z", 1)]);
      await enqueue(adapter, [transitionEvent("y", 1)]);
      await enqueue(adapter, [transitionEvent("x", 1)]);
      // Rewrite z's and y's delivery rows so that they come last physically, too.
      await fixture().query(`UPDATE "${fixture().schema}".deliveries SET attempts = attempts WHERE entity_id = 'z'`);
      await fixture().query(`UPDATE "${fixture().schema}".deliveries SET attempts = attempts WHERE entity_id = 'y'`);
      const claimed = await adapter.emitter.claim({ group: "g", consumerId: "c", limit: 2, leaseMs: 1000, now: at(0) });
      expect(claimed.map((c) => c.event.eventId)).toEqual(["z#1", "y#1"]);
    });

    it("prune by size deletes the oldest settled events first", async () => {
      const adapter = fixture().adapter({ clock: () => at(100) });
      await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
      for (const entity of ["a", "b", "c"]) await enqueue(adapter, [transitionEvent(entity, 1)]);
      const claimed = await adapter.emitter.claim({ group: "g", consumerId: "c", limit: 10, leaseMs: 10, now: at(0) });
      await adapter.emitter.ack({ group: "g", eventIds: claimed.map((c) => c.event.eventId) });
      // Nothing is old enough: only the size bound deletes, and it must keep the newest two.
      expect(await adapter.emitter.prune({ olderThan: at(0), maxEvents: 2 })).toBe(1);
      const left = await fixture().query<{ event_id: string }>(`SELECT event_id FROM "${fixture().schema}".outbox ORDER BY position`);
      expect(left.map((r) => r.event_id)).toEqual(["b#1", "c#1"]);
    });

    it("an entity's next event starts at attempt 1 after its head was acked following redeliveries", async () => {
      const adapter = fixture().adapter();
      await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
      await enqueue(adapter, [transitionEvent("a", 1), transitionEvent("a", 2)]);
      const claim = (now: Date) => adapter.emitter.claim({ group: "g", consumerId: "c", limit: 10, leaseMs: 10, now });
      expect((await claim(at(0))).map((c) => c.attempt)).toEqual([1]);
      expect((await claim(at(1))).map((c) => c.attempt)).toEqual([2]);
      await adapter.emitter.ack({ group: "g", eventIds: ["a#1"] });
      expect((await claim(at(2))).map((c) => [c.event.eventId, c.attempt])).toEqual([["a#2", 1]]);
    });
    it("the high watermark never goes back, even when a later prune deletes only older positions", async () => {
      const adapter = fixture().adapter();
      await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
      await enqueue(adapter, [transitionEvent("a", 1)]);
      await enqueue(adapter, [transitionEvent("b", 1)]);
      const mark = await adapter.emitter.highWatermark();
      const claimed = await adapter.emitter.claim({ group: "g", consumerId: "c", limit: 10, leaseMs: 10, now: at(0) });
      // b#1 (the newest) settles first and is pruned; a#1 stays.
      await adapter.emitter.ack({ group: "g", eventIds: claimed.filter((c) => c.event.entityId === "b").map((c) => c.event.eventId) });
      expect(await adapter.emitter.prune({ olderThan: at(0), maxEvents: 0 })).toBe(1);
      expect(await adapter.emitter.highWatermark()).toBe(mark);
      await adapter.emitter.ack({ group: "g", eventIds: ["a#1"] });
      expect(await adapter.emitter.prune({ olderThan: at(0), maxEvents: 0 })).toBe(1);
      expect(await adapter.emitter.highWatermark()).toBe(mark);
    });

    it("a transaction failing with a non-transient error (unique violation) runs once and rejects with that error", async () => {
      const schema = fixture().schema;
      await fixture().query(`CREATE TABLE "${schema}".own (id int PRIMARY KEY)`);
      await fixture().query(`INSERT INTO "${schema}".own VALUES (1)`);
      const adapter = fixture().adapter();
      let calls = 0;
      const error = await adapter.store
        .transaction({ lockKeys: ["k"] }, async (tx) => {
          calls += 1;
          await tx.query(`INSERT INTO "${schema}".own VALUES (1)`);
        })
        .then(
          () => undefined,
          (reason: unknown) => reason,
        );
      expect(calls).toBe(1);
      expect(error).not.toBeInstanceOf(TransactionRetriesExhaustedError);
      expect(error).toMatchObject({ code: "23505" });
    });
  });
}

// Two connections of a real server: PGlite has one.
(DATABASE_URL === undefined ? describe.skip : describe)("postgres adapter edges on the server", () => {
  const fixture = usePgBackend("postgres");
  let pool: pg.Pool | undefined;
  afterAll(async () => {
    await pool?.end();
  });

  it("a group registered (from oldest) while a transaction without lock keys enqueues still gets the event", async () => {
    const adapter = fixture().adapter();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const enqueuing = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.enqueueEvents([transitionEvent("a", 1)]);
      await tx.query("SELECT 1"); // the deferred enqueue has run on the server
      entered();
      await gate;
    });
    await inside;
    const registering = adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await new Promise((resolve) => setTimeout(resolve, 300));
    open();
    await Promise.all([enqueuing, registering]);
    const claimed = await adapter.emitter.claim({ group: "g", consumerId: "c", limit: 10, leaseMs: 1000, now: at(0) });
    expect(claimed.map((c) => c.event.eventId)).toEqual(["a#1"]);
  });

  it("COMMIT that commits but loses the connection before its answer: the callback ran once, the caller gets CommitOutcomeUnknownError", async () => {
    pool = openPool({ max: 2 });
    const real = pool;
    const schema = schemaNameFor("ambiguous commit");
    await migrate(real, { schema });
    await real.query(`CREATE TABLE "${schema}".side_effects (n int)`);
    let commitsToBreak = 1;
    // A pool whose first COMMIT reaches the server (and commits) but whose answer is "lost".
    const flaky = interceptedPool(
      real,
      async (statement, _values, send) => {
        const result = await send();
        if (statement === "COMMIT" && commitsToBreak > 0) {
          commitsToBreak -= 1;
          throw new Error("Connection terminated unexpectedly");
        }
        return result;
      },
      { max: 2 },
    );
    const adapter = createPostgresAdapter({ client: flaky, schema, listen: false });
    try {
      let calls = 0;
      const outcome = adapter.store.transaction({ lockKeys: ["k"] }, async (tx) => {
        calls += 1;
        await tx.query(`INSERT INTO "${schema}".side_effects VALUES (1)`);
      });
      await expect(outcome).rejects.toBeInstanceOf(CommitOutcomeUnknownError);
      expect(calls).toBe(1);
      const [row] = (await real.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".side_effects`)).rows;
      expect(Number(row?.n)).toBe(1);
    } finally {
      await adapter.close();
      await dropSchema(real, schema);
    }
  });
});
