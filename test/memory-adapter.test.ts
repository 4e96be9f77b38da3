import fc from "fast-check";
import {
  ClosedError,
  DEFAULT_THRESHOLDS,
  INITIAL_SLICE_STATE,
  addRuns,
  emptyBucket,
  eventIdOf,
  type AssignmentRecord,
  type BucketGranularity,
  type BucketKey,
  type EntityRecord,
  type HealthTransitionEvent,
  type HealthTransitionRecord,
  type MaintenanceRecord,
  type RunBucket,
  type SliceRecord,
  type StoredRun,
  type StoreTransaction,
  type SystemRecord,
} from "healthstate";
import { KeyedMutex, createMemoryAdapter, type MemoryAdapter, type MemoryTransaction } from "healthstate/adapters/memory";
import { afterEach, describe, expect, it } from "vitest";

// Adapter-specific behaviour of the in-memory adapter. The generic port contract is covered by
// the conformance kit; these tests pin what only this implementation decides: copy-on-write
// transactions, the keyed mutex and the outbox index. Times are explicit Dates, never sleeps.

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (ms: number): Date => new Date(T0 + ms);
const iso = (ms: number): string => at(ms).toISOString();

const system = (systemId: string, environmentIds: string[] = []): SystemRecord => ({ systemId, environmentIds });
const assignment = (systemId: string, checkId: string): AssignmentRecord => ({
  systemId,
  checkId,
  thresholds: DEFAULT_THRESHOLDS,
  environmentIds: null,
  enabled: true,
  paused: false,
});
const slice = (systemId: string, checkId: string, environmentId: string | null): SliceRecord => ({
  systemId,
  checkId,
  environmentId,
  state: INITIAL_SLICE_STATE,
});
const entity = (systemId: string, environmentId: string | null, sequence = 0): EntityRecord => ({
  entityId: environmentId === null ? systemId : `${systemId}::${environmentId}`,
  systemId,
  environmentId,
  state: { status: "healthy", healthyChecks: 1, totalChecks: 1 },
  sequence,
});
const storedRun = (runId: string, systemId = "s1", timestampMs = 0): StoredRun => ({
  runId,
  systemId,
  checkId: "c1",
  environmentId: null,
  status: "healthy",
  latencyMs: 12,
  timestamp: iso(timestampMs),
  message: null,
  recordedAt: iso(0),
});
const transition = (entityId: string, sequence: number, occurredAtMs = sequence * 1000): HealthTransitionRecord => ({
  entityId,
  systemId: entityId.split("::")[0] ?? entityId,
  environmentId: null,
  sequence,
  previousStatus: sequence % 2 === 1 ? "healthy" : "unhealthy",
  newStatus: sequence % 2 === 1 ? "unhealthy" : "healthy",
  occurredAt: iso(occurredAtMs),
});
const event = (entityId: string, sequence: number): HealthTransitionEvent => ({
  type: "health.transition",
  eventId: eventIdOf(entityId, sequence),
  entityId,
  systemId: entityId,
  environmentId: null,
  sequence,
  previousStatus: sequence % 2 === 1 ? "healthy" : "unhealthy",
  newStatus: sequence % 2 === 1 ? "unhealthy" : "healthy",
  healthyChecks: sequence % 2 === 1 ? 0 : 1,
  totalChecks: 1,
  classification: sequence % 2 === 1 ? "escalation" : "recovery",
  triggers: ["healthcheck.system_health_changed"],
  occurredAt: iso(sequence * 1000),
  cause: {},
});

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const maintenance = (
  maintenanceId: string,
  systemId: string,
  startMs: number,
  endMs: number,
  patch: Partial<MaintenanceRecord> = {},
): MaintenanceRecord => ({
  maintenanceId,
  entityId: systemId,
  systemId,
  environmentId: null,
  start: iso(startMs),
  end: iso(endMs),
  reason: null,
  startedEntities: null,
  ended: false,
  createdAt: iso(0),
  ...patch,
});
const bucketKey = (
  systemId: string,
  checkId: string,
  environmentId: string | null,
  granularity: BucketGranularity,
  startMs: number,
): BucketKey => ({ systemId, checkId, environmentId, granularity, start: iso(startMs) });
/** A bucket with `runs` healthy runs of latency 10, 20, … ms (so it carries a sketch). */
const bucket = (key: BucketKey, runs = 1): RunBucket =>
  addRuns(
    emptyBucket(key),
    Array.from({ length: runs }, (_, index) => ({ status: "healthy" as const, latencyMs: 10 * (index + 1) })),
  );
const slot = (b: Pick<RunBucket, "systemId" | "checkId" | "environmentId" | "start">): string =>
  `${b.systemId}/${b.checkId}/${b.environmentId ?? "-"}@${(Date.parse(b.start) - T0) / HOUR}h`;

interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Lets every queued microtask and promise continuation run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const adapters: MemoryAdapter[] = [];
function newAdapter(clock?: () => Date): MemoryAdapter {
  const adapter = createMemoryAdapter(clock === undefined ? {} : { clock });
  adapters.push(adapter);
  return adapter;
}
afterEach(async () => {
  for (const adapter of adapters.splice(0)) {
    await adapter.close();
    expect(adapter.lock.size).toBe(0);
  }
});

function read<T>(adapter: MemoryAdapter, fn: (tx: MemoryTransaction) => Promise<T>): Promise<T> {
  return adapter.store.transaction({ lockKeys: [] }, fn);
}
async function enqueue(adapter: MemoryAdapter, ...events: HealthTransitionEvent[]): Promise<void> {
  await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.enqueueEvents(events));
}
const ids = (claimed: readonly { readonly event: { readonly eventId: string } }[]): string[] =>
  claimed.map((c) => c.event.eventId);

/** What the store holds for systems s1 and s2, read in one transaction. */
async function snapshot(adapter: MemoryAdapter) {
  return read(adapter, async (tx) => ({
    systemIds: (await tx.listSystemIds()).sort(),
    systems: await tx.getSystems(["s1", "s2"]),
    assignments: await tx.getAssignments(["s1", "s2"]),
    slices: await tx.getSlices(["s1", "s2"]),
    entities: await tx.getEntities(["s1", "s2"]),
    runIds: await tx.findRunIds(["r1", "r2"]),
  }));
}

async function seed(adapter: MemoryAdapter): Promise<void> {
  await adapter.store.transaction({ lockKeys: ["s1"] }, async (tx) => {
    await tx.putSystem(system("s1", ["prod"]));
    await tx.putAssignments([assignment("s1", "c1"), assignment("s1", "c2")]);
    await tx.putSlices([slice("s1", "c1", "prod"), slice("s1", "c2", "prod")]);
    await tx.putEntities([entity("s1", null, 1), entity("s1", "prod")]);
    await tx.insertRuns([storedRun("r1")]);
    await tx.appendTransitions([transition("s1", 1)]);
    await tx.enqueueEvents([event("s1", 1)]);
  });
}

describe("memory store transactions", () => {
  it("commits every table together and resolves with fn's value", async () => {
    const adapter = newAdapter();
    await seed(adapter);
    const s = await snapshot(adapter);
    expect(s.systemIds).toEqual(["s1"]);
    expect(s.systems).toEqual([system("s1", ["prod"])]);
    expect(s.assignments.map((a) => a.checkId)).toEqual(["c1", "c2"]);
    expect(s.slices).toHaveLength(2);
    expect(s.entities.map((e) => e.entityId)).toEqual(["s1", "s1::prod"]);
    expect(s.runIds).toEqual(["r1"]);
    expect(await adapter.store.getEntitiesById(["s1::prod", "nope", "s1"])).toEqual([entity("s1", "prod"), entity("s1", null, 1)]);
    expect(await adapter.store.listTransitions({ entityId: "s1" })).toEqual([transition("s1", 1)]);
    expect(await adapter.emitter.highWatermark()).toBe("1");
    await expect(adapter.store.transaction({ lockKeys: [] }, () => Promise.resolve(42))).resolves.toBe(42);
  });

  it("discards every staged write of every table when fn rejects, rethrowing the same reason", async () => {
    const adapter = newAdapter();
    await seed(adapter);
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    const before = await snapshot(adapter);
    const boom = new Error("boom");
    const outcome = adapter.store.transaction({ lockKeys: ["s1", "s2"] }, async (tx) => {
      await tx.putSystem(system("s2"));
      await tx.putSystem(system("s1", ["prod", "staging"]));
      await tx.putAssignments([assignment("s2", "c1"), { ...assignment("s1", "c1"), paused: true }]);
      await tx.deleteAssignments([{ systemId: "s1", checkId: "c2" }]);
      await tx.putSlices([slice("s2", "c1", null)]);
      await tx.deleteSlices([{ systemId: "s1", checkId: "c1", environmentId: "prod" }]);
      await tx.putEntities([entity("s2", null), entity("s1", null, 2)]);
      await tx.insertRuns([storedRun("r2")]);
      await tx.appendTransitions([transition("s1", 2), transition("s2", 1)]);
      await tx.enqueueEvents([event("s1", 2), event("s2", 1)]);
      // Read-your-writes held until the very end: the stage really was populated.
      expect((await tx.getEntities(["s2"])).length).toBe(1);
      throw boom;
    });
    await expect(outcome).rejects.toBe(boom);

    expect(await snapshot(adapter)).toEqual(before);
    expect(await adapter.store.getEntitiesById(["s1", "s2"])).toEqual([entity("s1", null, 1)]);
    expect(await adapter.store.listTransitions({ entityId: "s1" })).toEqual([transition("s1", 1)]);
    expect(await adapter.store.listTransitions({ entityId: "s2" })).toEqual([]);
    expect(await adapter.emitter.highWatermark()).toBe("1");
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: "100" })).toBe(1);

    // A second rollback of a delete: the committed system stays.
    const reason = { not: "an Error" };
    await expect(
      adapter.store.transaction({ lockKeys: [] }, async (tx) => {
        await tx.deleteSystem("s1");
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- any reason must pass through verbatim
        return Promise.reject(reason);
      }),
    ).rejects.toBe(reason);
    expect((await snapshot(adapter)).systems).toEqual([system("s1", ["prod"])]);
  });

  it("reads its own writes: puts, replacements and deletes hide or show rows inside the transaction", async () => {
    const adapter = newAdapter();
    await seed(adapter);
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putSystem(system("s2", ["eu"]));
      await tx.deleteSystem("s1");
      expect(await tx.listSystemIds()).toEqual(["s2"]);
      expect(await tx.getSystems(["s1", "s2"])).toEqual([system("s2", ["eu"])]);
      await tx.putSystem(system("s1", ["prod", "dev"]));
      expect(await tx.getSystems(["s1"])).toEqual([system("s1", ["prod", "dev"])]);

      await tx.deleteAssignments([{ systemId: "s1", checkId: "c1" }]);
      await tx.putAssignments([{ ...assignment("s1", "c2"), enabled: false }, assignment("s1", "c3")]);
      expect(await tx.getAssignments(["s1"])).toEqual([{ ...assignment("s1", "c2"), enabled: false }, assignment("s1", "c3")]);

      await tx.deleteSlices([{ systemId: "s1", checkId: "c2", environmentId: "prod" }]);
      await tx.putSlices([slice("s1", "c1", null)]);
      expect((await tx.getSlices(["s1"])).map((s) => [s.checkId, s.environmentId])).toEqual([
        ["c1", "prod"],
        ["c1", null],
      ]);

      await tx.putEntities([{ ...entity("s1", "prod", 3), state: null }]);
      expect(await tx.getEntities(["s1"])).toEqual([entity("s1", null, 1), { ...entity("s1", "prod", 3), state: null }]);

      await tx.insertRuns([storedRun("r2")]);
      expect(await tx.findRunIds(["r1", "r2", "r3"])).toEqual(["r1", "r2"]);
    });
    // …and all of it committed.
    const s = await snapshot(adapter);
    expect(s.systemIds).toEqual(["s1", "s2"]);
    expect(s.assignments.map((a) => a.checkId)).toEqual(["c2", "c3"]);
    expect(s.runIds).toEqual(["r1", "r2"]);
  });

  it("keeps staged writes invisible to a concurrent transaction until commit", async () => {
    const adapter = newAdapter();
    await seed(adapter);
    const staged = deferred();
    const release = deferred();
    const writer = adapter.store.transaction({ lockKeys: ["s1"] }, async (tx) => {
      await tx.putSystem(system("s2"));
      await tx.deleteAssignments([{ systemId: "s1", checkId: "c1" }]);
      await tx.putEntities([entity("s1", null, 2)]);
      await tx.insertRuns([storedRun("r2")]);
      await tx.appendTransitions([transition("s1", 2)]);
      await tx.enqueueEvents([event("s1", 2)]);
      staged.resolve();
      await release.promise;
    });
    await staged.promise;
    const reader = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      expect(await tx.listSystemIds()).toEqual(["s1"]);
      expect((await tx.getAssignments(["s1"])).map((a) => a.checkId)).toEqual(["c1", "c2"]);
      expect(await tx.findRunIds(["r2"])).toEqual([]);
      expect(await adapter.store.getEntitiesById(["s1"])).toEqual([entity("s1", null, 1)]);
      expect(await adapter.store.listTransitions({ entityId: "s1" })).toHaveLength(1);
      expect(await adapter.emitter.highWatermark()).toBe("1");
      release.resolve();
      await writer;
      // Committed now: a running transaction reads the newly committed state (read committed).
      expect((await tx.listSystemIds()).sort()).toEqual(["s1", "s2"]);
      expect((await tx.getAssignments(["s1"])).map((a) => a.checkId)).toEqual(["c2"]);
      expect(await tx.findRunIds(["r2"])).toEqual(["r2"]);
    });
    await reader;
    expect(await adapter.store.getEntitiesById(["s1"])).toEqual([entity("s1", null, 2)]);
    expect(await adapter.emitter.highWatermark()).toBe("2");
  });

  it("rejects a duplicate (entityId, sequence) in the transition log and the outbox, staging nothing of the batch", async () => {
    const adapter = newAdapter();
    await seed(adapter);
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      // Against committed rows.
      await expect(tx.appendTransitions([transition("s1", 2), transition("s1", 1)])).rejects.toThrow(/duplicate transition/);
      await expect(tx.enqueueEvents([event("s1", 2), event("s1", 1)])).rejects.toThrow(/duplicate outbox event/);
      // Within one batch.
      await expect(tx.appendTransitions([transition("s9", 1), transition("s9", 1)])).rejects.toThrow(/duplicate transition/);
      await expect(tx.enqueueEvents([event("s9", 1), event("s9", 1)])).rejects.toThrow(/duplicate outbox event/);
      // Against this transaction's staged rows.
      await tx.appendTransitions([transition("s1", 2)]);
      await tx.enqueueEvents([event("s1", 2)]);
      await expect(tx.appendTransitions([transition("s1", 2)])).rejects.toThrow(/duplicate transition/);
      await expect(tx.enqueueEvents([event("s1", 2)])).rejects.toThrow(/duplicate outbox event/);
      // Same eventId under another (entityId, sequence).
      await expect(tx.enqueueEvents([{ ...event("s1", 3), eventId: eventIdOf("s1", 1) }])).rejects.toThrow(/duplicate outbox eventId/);
      // Runs are unique by runId as well.
      await expect(tx.insertRuns([storedRun("r1")])).rejects.toThrow(/duplicate runId/);
      await expect(tx.insertRuns([storedRun("r7"), storedRun("r7")])).rejects.toThrow(/duplicate runId/);
    });
    // The rejected batches left nothing behind; the accepted ones committed.
    expect((await adapter.store.listTransitions({ entityId: "s1" })).map((t) => t.sequence)).toEqual([1, 2]);
    expect(await adapter.store.listTransitions({ entityId: "s9" })).toEqual([]);
    expect(await adapter.emitter.highWatermark()).toBe("2");
    expect(await read(adapter, (tx) => tx.findRunIds(["r7"]))).toEqual([]);
  });

  it("fails the later of two concurrent commits that claim the same (entityId, sequence), keeping none of its writes", async () => {
    const adapter = newAdapter();
    const bothStaged = [deferred(), deferred()] as const;
    const write = (index: 0 | 1, systemId: string) =>
      adapter.store.transaction({ lockKeys: [] }, async (tx) => {
        await tx.putSystem(system(systemId));
        await tx.appendTransitions([transition("e", 1)]);
        await tx.enqueueEvents([event("e", 1)]);
        bothStaged[index].resolve();
        await Promise.all(bothStaged.map((d) => d.promise));
        return systemId;
      });
    const results = await Promise.allSettled([write(0, "first"), write(1, "second")]);
    expect(results[0]).toEqual({ status: "fulfilled", value: "first" });
    expect(results[1]?.status).toBe("rejected");
    expect(await read(adapter, (tx) => tx.listSystemIds())).toEqual(["first"]);
    expect(await adapter.store.listTransitions({ entityId: "e" })).toHaveLength(1);
    expect(await adapter.emitter.highWatermark()).toBe("1");
  });

  it("makes the transaction object unusable once it committed or rolled back", async () => {
    const adapter = newAdapter();
    let committed: StoreTransaction | undefined;
    await adapter.store.transaction({ lockKeys: [] }, (tx) => {
      committed = tx;
      return Promise.resolve();
    });
    let rolledBack: StoreTransaction | undefined;
    await expect(
      adapter.store.transaction({ lockKeys: [] }, (tx) => {
        rolledBack = tx;
        return Promise.reject(new Error("no"));
      }),
    ).rejects.toThrow("no");
    for (const tx of [committed, rolledBack]) {
      if (tx === undefined) throw new Error("transaction not captured");
      await expect(tx.putSystem(system("late"))).rejects.toThrow(/after the transaction (committed|rolled back)/);
      await expect(tx.enqueueEvents([event("late", 1)])).rejects.toThrow(/after the transaction/);
      await expect(tx.listSystemIds()).rejects.toThrow(/after the transaction/);
    }
    // A write fired without await after fn resolved cannot sneak in either.
    let late: Promise<unknown> | undefined;
    await adapter.store.transaction({ lockKeys: [] }, (tx) => {
      setImmediate(() => {
        late = tx.putSystem(system("sneaky")).then(
          () => "written",
          (reason: unknown) => reason,
        );
      });
      return Promise.resolve();
    });
    await settle();
    expect(await late).toEqual(expect.objectContaining({ message: expect.stringMatching(/after the transaction committed/) as unknown }));
    expect(await read(adapter, (tx) => tx.listSystemIds())).toEqual([]);
    expect(await adapter.emitter.highWatermark()).toBe("0");
  });

  it("copies records on the way in and hands out frozen ones that no caller can change", async () => {
    const adapter = newAdapter();
    const input = { systemId: "s1", environmentIds: ["prod"] };
    const inputEvent = event("s1", 1);
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putSystem(input);
      await tx.putEntities([entity("s1", null, 1)]);
      await tx.appendTransitions([transition("s1", 1)]);
      await tx.enqueueEvents([inputEvent]);
    });
    input.environmentIds.push("mutated");
    (inputEvent as { newStatus: string }).newStatus = "degraded";

    // Results are the stored records, frozen: changing one throws (test files are strict mode).
    const systems = await read(adapter, (tx) => tx.getSystems(["s1"]));
    expect(() => (systems[0]?.environmentIds as string[]).push("mutated")).toThrow(TypeError);
    expect(() => ((systems[0] as { systemId: string }).systemId = "mutated")).toThrow(TypeError);
    const [stored] = await adapter.store.getEntitiesById(["s1"]);
    expect(() => ((stored as { sequence: number }).sequence = 99)).toThrow(TypeError);
    expect(() => ((stored?.state as { status: string }).status = "unhealthy")).toThrow(TypeError);
    const [logged] = await adapter.store.listTransitions({ entityId: "s1" });
    expect(() => ((logged as { newStatus: string }).newStatus = "degraded")).toThrow(TypeError);
    // Writing a record read from the store back, changed, stores the change, and only it.
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      const [current] = await tx.getSystems(["s1"]);
      await tx.putSystem({ ...(current as SystemRecord), environmentIds: [...(current as SystemRecord).environmentIds, "dev"] });
    });
    expect(await read(adapter, (tx) => tx.getSystems(["s1"]))).toEqual([system("s1", ["prod", "dev"])]);
    expect(systems).toEqual([system("s1", ["prod"])]);
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putSystem(systems[0] as SystemRecord);
    });

    expect(await read(adapter, (tx) => tx.getSystems(["s1"]))).toEqual([system("s1", ["prod"])]);
    expect(await adapter.store.getEntitiesById(["s1"])).toEqual([entity("s1", null, 1)]);
    expect(await adapter.store.listTransitions({ entityId: "s1" })).toEqual([transition("s1", 1)]);
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    const [claimed] = await adapter.emitter.claim({ group: "g", consumerId: "c", limit: 1, leaseMs: 10, now: at(0) });
    expect(claimed?.event).toEqual(event("s1", 1));
  });

  it("copies the mutable parts of a frozen record on the way in", async () => {
    const adapter = newAdapter();
    const environmentIds = ["prod"];
    const input = Object.freeze({ systemId: "s1", environmentIds });
    const sparse = ["prod"];
    sparse[2] = "dev";
    const holey = Object.freeze({ systemId: "s2", environmentIds: Object.freeze(sparse) });
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putSystem(input);
      await tx.putSystem(holey);
    });
    environmentIds.push("mutated");
    const [s1, s2] = await read(adapter, (tx) => tx.getSystems(["s1", "s2"]));
    expect(s1).toEqual(system("s1", ["prod"]));
    expect(Object.isFrozen(s1?.environmentIds)).toBe(true);
    // Fully frozen data is immutable already: stored as given.
    expect(s2).toBe(holey);
  });

  it("copies an assignment's flap override on the way in, hands it out frozen, and keeps an absent one absent", async () => {
    const adapter = newAdapter();
    const override = { enabled: true, high: 15 };
    const input: AssignmentRecord = { ...assignment("s1", "c1"), flapping: override };
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.putAssignments([input, assignment("s1", "c2")]));
    (override as { high: number }).high = 99;
    const [read1] = await read(adapter, (tx) => tx.getAssignments(["s1"]));
    expect(() => ((read1?.flapping as { high: number }).high = 98)).toThrow(TypeError);
    const stored = await read(adapter, (tx) => tx.getAssignments(["s1"]));
    expect(stored).toEqual([{ ...assignment("s1", "c1"), flapping: { enabled: true, high: 15 } }, assignment("s1", "c2")]);
    expect("flapping" in (stored[1] ?? {})).toBe(false);
  });

  it("keys slices collision-free: an env-less slice, an environment named \"null\" and separator-bearing ids stay apart", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putSlices([slice("s", "c", null), slice("s", "c", "null"), slice("s", "c:x", null), slice("s", "c", "x")]);
      await tx.putSlices([slice("s:c", "x", null), slice("s", "c:x", "y")]);
      await tx.deleteSlices([{ systemId: "s", checkId: "c", environmentId: "null" }]);
    });
    const slices = await read(adapter, (tx) => tx.getSlices(["s", "s:c"]));
    expect(slices.map((s) => [s.systemId, s.checkId, s.environmentId])).toEqual([
      ["s", "c", null],
      ["s", "c:x", null],
      ["s", "c", "x"],
      ["s", "c:x", "y"],
      ["s:c", "x", null],
    ]);
  });

  it("lists transitions in sequence order, from inclusive, to exclusive, limit keeping the highest sequences", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, (tx) =>
      // Out of order on purpose; sequence 4 happened before sequence 3 (runs out of timestamp order).
      tx.appendTransitions([transition("e", 2, 2000), transition("e", 4, 2500), transition("e", 1, 1000), transition("e", 3, 3000)]),
    );
    const seqs = async (query: { from?: Date; to?: Date; limit?: number }) =>
      (await adapter.store.listTransitions({ entityId: "e", ...query })).map((t) => t.sequence);
    expect(await seqs({})).toEqual([1, 2, 3, 4]);
    expect(await seqs({ from: at(2000) })).toEqual([2, 3, 4]);
    expect(await seqs({ to: at(2500) })).toEqual([1, 2]);
    expect(await seqs({ from: at(2000), to: at(3000) })).toEqual([2, 4]);
    expect(await seqs({ limit: 2 })).toEqual([3, 4]);
    expect(await seqs({ to: at(3000), limit: 2 })).toEqual([2, 4]);
    expect(await seqs({ limit: 0 })).toEqual([]);
    expect(await seqs({ limit: 10 })).toEqual([1, 2, 3, 4]);
    expect(await adapter.store.listTransitions({ entityId: "unknown" })).toEqual([]);
  });
});

describe("memory store: the transition log inside a transaction", () => {
  it("reads its own appends merged with the committed log, with the store's filters, and nobody else sees them", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.appendTransitions([transition("e", 1, 1000), transition("e", 2, 2000)]));
    const append = (tx: StoreTransaction) =>
      // Out of order on purpose; sequence 4 happened before sequence 3.
      tx.appendTransitions([transition("e", 4, 2500), transition("e", 3, 3000), transition("f", 1, 1000)]);
    const seqs = async (tx: StoreTransaction, query: { entityId?: string; from?: Date; to?: Date; limit?: number }) =>
      (await tx.listTransitions({ entityId: "e", ...query })).map((t) => t.sequence);

    const rolledBack = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      expect(await seqs(tx, {})).toEqual([1, 2]);
      await append(tx);
      expect(await seqs(tx, {})).toEqual([1, 2, 3, 4]);
      expect(await seqs(tx, { from: at(2000), to: at(3000) })).toEqual([2, 4]);
      expect(await seqs(tx, { limit: 2 })).toEqual([3, 4]);
      expect(await seqs(tx, { to: at(3000), limit: 2 })).toEqual([2, 4]);
      expect(await seqs(tx, { limit: 0 })).toEqual([]);
      expect(await tx.listTransitions({ entityId: "f" })).toEqual([transition("f", 1, 1000)]);
      expect(await tx.listTransitions({ entityId: "unknown" })).toEqual([]);
      // Not visible outside this transaction.
      expect((await adapter.store.listTransitions({ entityId: "e" })).map((t) => t.sequence)).toEqual([1, 2]);
      expect(await read(adapter, (other) => seqs(other, {}))).toEqual([1, 2]);
      // Frozen: changing a result throws and changes nothing staged.
      const [first] = await tx.listTransitions({ entityId: "f" });
      expect(() => ((first as { newStatus: string }).newStatus = "degraded")).toThrow(TypeError);
      expect(await tx.listTransitions({ entityId: "f" })).toEqual([transition("f", 1, 1000)]);
      throw new Error("roll back");
    });
    await expect(rolledBack).rejects.toThrow("roll back");
    expect((await adapter.store.listTransitions({ entityId: "e" })).map((t) => t.sequence)).toEqual([1, 2]);
    expect(await adapter.store.listTransitions({ entityId: "f" })).toEqual([]);

    await adapter.store.transaction({ lockKeys: [] }, append);
    expect((await adapter.store.listTransitions({ entityId: "e" })).map((t) => t.sequence)).toEqual([1, 2, 3, 4]);
    await expect(read(adapter, (tx) => tx.listTransitions({ entityId: "e", from: new Date(Number.NaN) }))).rejects.toThrow(TypeError);
  });

  it("sees transitions other transactions commit meanwhile (read committed)", async () => {
    const adapter = newAdapter();
    const started = deferred();
    const committed = deferred();
    const reader = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.appendTransitions([transition("e", 2)]);
      started.resolve();
      await committed.promise;
      return (await tx.listTransitions({ entityId: "e" })).map((t) => t.sequence);
    });
    await started.promise;
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.appendTransitions([transition("e", 1)]));
    committed.resolve();
    expect(await reader).toEqual([1, 2]);
  });
});

describe("memory store: maintenance windows", () => {
  const processed = { startedEntities: ["s1"], ended: true };

  it("round-trips windows by system, commits them together and rolls them back with the transaction", async () => {
    const adapter = newAdapter();
    const w1 = maintenance("m1", "s1", 0, HOUR, { reason: "upgrade" });
    const w2 = maintenance("m2", "s1", HOUR, 2 * HOUR, { entityId: "s1::prod", environmentId: "prod", startedEntities: ["s1::prod"] });
    const w3 = maintenance("m3", "s2", 0, HOUR, processed);
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putMaintenance([w1, w2, w3]);
      expect(await tx.getMaintenance(["s1", "s1", "nope"])).toEqual([w1, w2]);
    });
    expect(await read(adapter, (tx) => tx.getMaintenance(["s1", "s2"]))).toEqual([w1, w2, w3]);
    expect(await adapter.store.listMaintenance({})).toEqual([w1, w3, w2]);

    const rolledBack = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putMaintenance([maintenance("m4", "s1", 0, HOUR), { ...w2, ended: true }]);
      await tx.deleteMaintenance(["m1", "absent"]);
      expect((await tx.getMaintenance(["s1"])).map((w) => [w.maintenanceId, w.ended])).toEqual([
        ["m2", true],
        ["m4", false],
      ]);
      throw new Error("roll back");
    });
    await expect(rolledBack).rejects.toThrow("roll back");
    expect(await adapter.store.listMaintenance({})).toEqual([w1, w3, w2]);
  });

  it("reads its own writes, keeps them from other transactions until commit, and moves a window between systems", async () => {
    const adapter = newAdapter();
    const committed = [maintenance("m1", "s1", 0, HOUR), maintenance("m2", "s1", 0, HOUR)];
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.putMaintenance(committed));
    const staged = deferred();
    const release = deferred();
    const writer = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putMaintenance([maintenance("m1", "s2", 0, HOUR)]);
      await tx.deleteMaintenance(["m2"]);
      expect(await tx.getMaintenance(["s1"])).toEqual([]);
      expect(await tx.getMaintenance(["s2"])).toEqual([maintenance("m1", "s2", 0, HOUR)]);
      staged.resolve();
      await release.promise;
    });
    await staged.promise;
    expect((await adapter.store.listMaintenance({ systemId: "s1" })).map((w) => w.maintenanceId)).toEqual(["m1", "m2"]);
    expect(await read(adapter, (tx) => tx.getMaintenance(["s2"]))).toEqual([]);
    release.resolve();
    await writer;
    expect(await adapter.store.listMaintenance({ systemId: "s1" })).toEqual([]);
    expect(await adapter.store.listMaintenance({ systemId: "s2" })).toEqual([maintenance("m1", "s2", 0, HOUR)]);
  });

  it("lists committed windows by start (as an instant), then id, filtered by id and system", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, (tx) =>
      tx.putMaintenance([
        maintenance("m2", "s1", HOUR, 2 * HOUR),
        maintenance("m10", "s1", HOUR, 3 * HOUR),
        maintenance("a", "s2", 2 * HOUR, 3 * HOUR),
        // Same instant as m2's start, spelled differently: ordered as the instant it is.
        { ...maintenance("m0", "s1", 0, HOUR), start: "2026-01-01T00:30:00Z" },
      ]),
    );
    const idsOf = async (query: { maintenanceId?: string; systemId?: string }) =>
      (await adapter.store.listMaintenance(query)).map((w) => w.maintenanceId);
    expect(await idsOf({})).toEqual(["m0", "m10", "m2", "a"]);
    expect(await idsOf({ systemId: "s1" })).toEqual(["m0", "m10", "m2"]);
    expect(await idsOf({ systemId: "s3" })).toEqual([]);
    expect(await idsOf({ maintenanceId: "a" })).toEqual(["a"]);
    expect(await idsOf({ maintenanceId: "a", systemId: "s2" })).toEqual(["a"]);
    expect(await idsOf({ maintenanceId: "a", systemId: "s1" })).toEqual([]);
    expect(await idsOf({ maintenanceId: "nope" })).toEqual([]);
  });

  it("finds each system once with a boundary due and unprocessed, following replacements, deletes and commits", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, (tx) =>
      tx.putMaintenance([
        maintenance("a1", "sA", HOUR, 4 * HOUR),
        maintenance("a2", "sA", HOUR, 4 * HOUR),
        maintenance("b", "sB", 0, 3 * HOUR, { startedEntities: ["sB"] }),
        maintenance("c", "sC", 0, HOUR, processed),
        maintenance("d", "sD", 0, 5 * HOUR, { startedEntities: [] }),
      ]),
    );
    const due = (ms: number) => adapter.store.findDueMaintenance(at(ms));
    expect(await due(0)).toEqual([]);
    expect(await due(HOUR)).toEqual(["sA"]);
    expect(await due(3 * HOUR)).toEqual(["sA", "sB"]);
    expect(await due(10 * HOUR)).toEqual(["sA", "sB", "sD"]);

    // Processing sA's start boundary, then its end, then sB's end.
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putMaintenance([maintenance("a1", "sA", HOUR, 4 * HOUR, { startedEntities: ["sA"] })]);
      await tx.deleteMaintenance(["a2"]);
      // Staged, not committed: still due as committed.
      expect(await due(HOUR)).toEqual(["sA"]);
    });
    expect(await due(HOUR)).toEqual([]);
    expect(await due(4 * HOUR)).toEqual(["sA", "sB"]);
    await adapter.store.transaction({ lockKeys: [] }, (tx) =>
      tx.putMaintenance([
        maintenance("a1", "sA", HOUR, 4 * HOUR, { startedEntities: ["sA"], ended: true }),
        maintenance("b", "sB", 0, 3 * HOUR, { startedEntities: ["sB"], ended: true }),
      ]),
    );
    expect(await due(10 * HOUR)).toEqual(["sD"]);
    // A processed window made open again (its end moved later and reopened) is found again.
    const reopened = maintenance("c", "sC", 0, 2 * HOUR, { startedEntities: ["sC"] });
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.putMaintenance([reopened]));
    expect(await due(10 * HOUR)).toEqual(["sC", "sD"]);
    await expect(adapter.store.findDueMaintenance(new Date(Number.NaN))).rejects.toThrow(TypeError);
  });

  it("rejects a window whose start or end is not a time, staging nothing of the batch, copies windows in and hands them out frozen", async () => {
    const adapter = newAdapter();
    const input = maintenance("m1", "s1", 0, HOUR, { startedEntities: ["s1"] });
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      const badEnd = { ...maintenance("bad", "s1", 0, HOUR), end: "tomorrow" };
      await expect(tx.putMaintenance([maintenance("ok", "s1", 0, HOUR), badEnd])).rejects.toThrow(
        /maintenance end must be an ISO 8601 time/,
      );
      await expect(tx.putMaintenance([{ ...maintenance("bad", "s1", 0, HOUR), start: "" }])).rejects.toThrow(TypeError);
      expect(await tx.getMaintenance(["s1"])).toEqual([]);
      await tx.putMaintenance([input]);
    });
    (input.startedEntities as string[]).push("mutated");
    const [listed] = await adapter.store.listMaintenance({});
    expect(() => (listed?.startedEntities as string[]).push("mutated")).toThrow(TypeError);
    const [got] = await read(adapter, (tx) => tx.getMaintenance(["s1"]));
    expect(() => (got?.startedEntities as string[]).push("mutated")).toThrow(TypeError);
    expect(() => ((got as { ended: boolean }).ended = true)).toThrow(TypeError);
    expect(await adapter.store.listMaintenance({})).toEqual([maintenance("m1", "s1", 0, HOUR, { startedEntities: ["s1"] })]);
  });
});

describe("memory store: buckets", () => {
  it("round-trips buckets (sketch included) by key, in the order of the keys, and rolls them back with the transaction", async () => {
    const adapter = newAdapter();
    const a = bucket(bucketKey("s1", "c1", null, "hour", 0), 3);
    const b = bucket(bucketKey("s1", "c1", "prod", "hour", 0), 2);
    const c = bucket(bucketKey("s2", "c1", null, "day", 0));
    expect(a.sketch).not.toBeNull();
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putBuckets([a, b, c]);
      expect(await tx.getBuckets([c, a])).toEqual([c, a]);
    });
    const keys = [bucketKey("s2", "c1", null, "day", 0), bucketKey("s1", "c1", "prod", "hour", 0), bucketKey("s1", "c1", null, "hour", 0)];
    const withRepeatAndAbsent = [...keys, keys[0] as BucketKey, bucketKey("s1", "c1", null, "hour", HOUR)];
    expect(await read(adapter, (tx) => tx.getBuckets(withRepeatAndAbsent))).toEqual([c, b, a]);
    expect(await read(adapter, (tx) => tx.getBuckets([]))).toEqual([]);

    const rolledBack = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putBuckets([bucket(bucketKey("s1", "c1", null, "hour", HOUR)), bucket(bucketKey("s1", "c1", null, "hour", 0), 9)]);
      await tx.deleteBuckets([c, bucketKey("s9", "c9", null, "hour", 0)]);
      expect((await tx.getBuckets(keys)).map((x) => x.runs)).toEqual([2, 9]);
      throw new Error("roll back");
    });
    await expect(rolledBack).rejects.toThrow("roll back");
    expect(await read(adapter, (tx) => tx.getBuckets(keys))).toEqual([c, b, a]);
    expect(await adapter.store.queryBuckets({ systemId: "s1", granularity: "hour", from: at(0), to: at(DAY) })).toEqual([a, b]);
  });

  it("reads its own puts and deletes, and keeps them from others until commit", async () => {
    const adapter = newAdapter();
    const old = bucket(bucketKey("s1", "c1", null, "hour", 0));
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.putBuckets([old]));
    const staged = deferred();
    const release = deferred();
    const daily = bucket(bucketKey("s1", "c1", null, "day", 0), 4);
    const writer = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      // A rollup: the hour becomes part of its day.
      await tx.deleteBuckets([old]);
      await tx.putBuckets([daily]);
      expect(await tx.getBuckets([old, daily])).toEqual([daily]);
      expect(await tx.listBucketsBefore({ systemIds: ["s1"], granularity: "hour", before: at(DAY), limit: 10 })).toEqual([]);
      expect(await tx.listBucketsBefore({ systemIds: ["s1"], granularity: "day", before: at(DAY), limit: 10 })).toEqual([daily]);
      staged.resolve();
      await release.promise;
    });
    await staged.promise;
    expect(await read(adapter, (tx) => tx.getBuckets([old, daily]))).toEqual([old]);
    expect(await adapter.store.queryBuckets({ systemId: "s1", granularity: "day", from: at(0), to: at(DAY) })).toEqual([]);
    expect(await adapter.store.listSystemsWithBucketsBefore({ granularity: "day", before: at(DAY) })).toEqual([]);
    release.resolve();
    await writer;
    expect(await read(adapter, (tx) => tx.getBuckets([old, daily]))).toEqual([daily]);
    expect(await adapter.store.queryBuckets({ systemId: "s1", granularity: "hour", from: at(0), to: at(DAY) })).toEqual([]);
  });

  it("keys buckets by slice, granularity and start instant, and rejects a bad start or granularity, staging nothing", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putBuckets([
        bucket(bucketKey("s", "c", null, "hour", 0), 1),
        bucket(bucketKey("s", "c", "null", "hour", 0), 2),
        bucket(bucketKey("s", "c", null, "day", 0), 3),
        bucket(bucketKey("s", "c:x", null, "hour", 0), 4),
      ]);
      // The same instant spelled without milliseconds replaces the first bucket, and is stored canonically.
      await tx.putBuckets([{ ...bucket(bucketKey("s", "c", null, "hour", 0), 5), start: "2026-01-01T00:00:00Z" }]);
      expect((await tx.getBuckets([{ ...bucketKey("s", "c", null, "hour", 0), start: "2026-01-01T00:00:00+00:00" }]))[0]?.runs).toBe(5);

      const badStart = { ...bucket(bucketKey("s", "c", null, "hour", 0)), start: "soon" };
      await expect(tx.putBuckets([bucket(bucketKey("s", "c", null, "hour", HOUR)), badStart])).rejects.toThrow(
        /bucket start must be an ISO 8601 time/,
      );
      await expect(
        tx.putBuckets([{ ...bucket(bucketKey("s", "c", null, "hour", 2 * HOUR)), granularity: "week" as BucketGranularity }]),
      ).rejects.toThrow(/granularity/);
      await expect(tx.deleteBuckets([bucketKey("s", "c", null, "hour", 0), badStart])).rejects.toThrow(TypeError);
      await expect(tx.getBuckets([{ ...bucketKey("s", "c", null, "hour", 0), start: "x" }])).rejects.toThrow(TypeError);
    });
    const stored = await adapter.store.queryBuckets({ systemId: "s", granularity: "hour", from: at(0), to: at(DAY) });
    expect(stored.map((b) => [b.checkId, b.environmentId, b.start, b.runs])).toEqual([
      ["c", null, iso(0), 5],
      ["c", "null", iso(0), 2],
      ["c:x", null, iso(0), 4],
    ]);
    const daily = await adapter.store.queryBuckets({ systemId: "s", granularity: "day", from: at(0), to: at(DAY) });
    expect(daily.map((b) => b.runs)).toEqual([3]);
  });

  it("queries one system's committed buckets by environment, granularity and half-open start range", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, (tx) =>
      tx.putBuckets([
        bucket(bucketKey("s1", "c1", "prod", "hour", 2 * HOUR)),
        bucket(bucketKey("s1", "c1", null, "hour", 0)),
        bucket(bucketKey("s1", "c1", "prod", "hour", 0)),
        bucket(bucketKey("s1", "c2", "prod", "hour", HOUR)),
        bucket(bucketKey("s1", "c1", "staging", "hour", HOUR)),
        bucket(bucketKey("s1", "c1", "prod", "day", 0)),
        bucket(bucketKey("s2", "c1", "prod", "hour", 0)),
      ]),
    );
    const query = async (systemId: string, granularity: BucketGranularity, fromMs: number, toMs: number, environmentId?: string) =>
      (
        await adapter.store.queryBuckets({
          systemId,
          granularity,
          from: at(fromMs),
          to: at(toMs),
          ...(environmentId === undefined ? {} : { environmentId }),
        })
      ).map(slot);
    expect(await query("s1", "hour", 0, 3 * HOUR)).toEqual([
      "s1/c1/-@0h",
      "s1/c1/prod@0h",
      "s1/c1/staging@1h",
      "s1/c2/prod@1h",
      "s1/c1/prod@2h",
    ]);
    expect(await query("s1", "hour", 0, 3 * HOUR, "prod")).toEqual(["s1/c1/prod@0h", "s1/c2/prod@1h", "s1/c1/prod@2h"]);
    expect(await query("s1", "hour", 0, 3 * HOUR, "staging")).toEqual(["s1/c1/staging@1h"]);
    expect(await query("s1", "hour", 0, 3 * HOUR, "dev")).toEqual([]);
    expect(await query("s1", "hour", HOUR, 2 * HOUR)).toEqual(["s1/c1/staging@1h", "s1/c2/prod@1h"]);
    expect(await query("s1", "hour", HOUR + 1, 2 * HOUR + 1)).toEqual(["s1/c1/prod@2h"]);
    expect(await query("s1", "hour", HOUR, HOUR)).toEqual([]);
    expect(await query("s1", "day", 0, DAY)).toEqual(["s1/c1/prod@0h"]);
    expect(await query("s1", "day", 1, DAY)).toEqual([]);
    expect(await query("s2", "hour", 0, DAY, "prod")).toEqual(["s2/c1/prod@0h"]);
    expect(await query("s3", "hour", 0, DAY)).toEqual([]);
    const invalid = adapter.store.queryBuckets({ systemId: "s1", granularity: "hour", from: new Date(Number.NaN), to: at(0) });
    await expect(invalid).rejects.toThrow(TypeError);
  });

  it("lists buckets before a time oldest first up to a limit, and the systems having any", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, (tx) =>
      tx.putBuckets([
        bucket(bucketKey("s1", "c1", null, "hour", 3 * HOUR)),
        bucket(bucketKey("s1", "c1", null, "hour", 2 * HOUR)),
        bucket(bucketKey("s2", "c1", null, "hour", HOUR)),
        bucket(bucketKey("s1", "c2", null, "hour", HOUR)),
        bucket(bucketKey("s1", "c1", "prod", "hour", HOUR)),
        bucket(bucketKey("s1", "c1", null, "hour", HOUR)),
        bucket(bucketKey("s1", "c1", null, "hour", 0)),
        bucket(bucketKey("s3", "c1", null, "hour", 0)),
        bucket(bucketKey("s1", "c1", null, "day", 0)),
      ]),
    );
    const before = async (systemIds: string[], granularity: BucketGranularity, beforeMs: number, limit: number) =>
      (await read(adapter, (tx) => tx.listBucketsBefore({ systemIds, granularity, before: at(beforeMs), limit }))).map(slot);
    expect(await before(["s1", "s2", "s1"], "hour", 3 * HOUR, 10)).toEqual([
      "s1/c1/-@0h",
      "s1/c1/-@1h",
      "s1/c1/prod@1h",
      "s1/c2/-@1h",
      "s2/c1/-@1h",
      "s1/c1/-@2h",
    ]);
    expect(await before(["s2", "s1"], "hour", 3 * HOUR, 2)).toEqual(["s1/c1/-@0h", "s1/c1/-@1h"]);
    expect(await before(["s1"], "hour", 3 * HOUR, 2.9)).toEqual(["s1/c1/-@0h", "s1/c1/-@1h"]);
    expect(await before(["s1"], "hour", 3 * HOUR, 0)).toEqual([]);
    expect(await before(["s1"], "hour", 0, 10)).toEqual([]);
    expect(await before(["s1", "s3"], "day", DAY, 10)).toEqual(["s1/c1/-@0h"]);
    expect(await before([], "hour", DAY, 10)).toEqual([]);
    await expect(before(["s1"], "hour", DAY, Number.NaN)).rejects.toThrow(TypeError);

    const systems = (granularity: BucketGranularity, beforeMs: number) =>
      adapter.store.listSystemsWithBucketsBefore({ granularity, before: at(beforeMs) });
    expect(await systems("hour", 0)).toEqual([]);
    expect(await systems("hour", 1)).toEqual(["s1", "s3"]);
    expect(await systems("hour", HOUR + 1)).toEqual(["s1", "s2", "s3"]);
    expect(await systems("day", 0)).toEqual([]);
    expect(await systems("day", 1)).toEqual(["s1"]);
  });
});

describe("memory store: prune", () => {
  const done = { startedEntities: ["s1"], ended: true };

  async function seedHistory(adapter: MemoryAdapter): Promise<void> {
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.insertRuns([storedRun("r1", "s1", 0), storedRun("r2", "s1", HOUR), storedRun("r3", "s2", 2 * HOUR)]);
      await tx.putBuckets([
        bucket(bucketKey("s1", "c1", null, "day", 0)),
        bucket(bucketKey("s1", "c1", null, "day", DAY)),
        bucket(bucketKey("s2", "c1", "prod", "day", 0)),
        bucket(bucketKey("s1", "c1", null, "hour", 0)),
      ]);
      await tx.appendTransitions([
        transition("e", 1, 1000),
        transition("e", 2, 2000),
        transition("e", 3, 3000),
        // f's only transition is old: it is the newest, so it stays.
        transition("f", 1, 1000),
        // g's newest (highest sequence) occurred before its predecessor: g#1 holds the time it took effect, so both stay.
        transition("g", 1, 1000),
        transition("g", 2, 500),
        // h's first transition is recent; the later, older ones take effect at its time: all stay.
        transition("h", 1, 3000),
        transition("h", 2, 1000),
        transition("h", 3, 2000),
        // k is all old, its newest late: k#1 holds the time k#2 took effect, so both stay.
        transition("k", 1, 2000),
        transition("k", 2, 1000),
      ]);
      await tx.putMaintenance([
        maintenance("done", "s1", 0, 2000, done),
        maintenance("done-at-horizon", "s1", 0, 2500, done),
        maintenance("never-started", "s1", 0, 1000),
        maintenance("never-ended", "s1", 0, 1000, { startedEntities: ["s1"] }),
        maintenance("ended-flag-only", "s1", 0, 1000, { ended: true }),
      ]);
    });
  }
  const horizons = { runsBefore: at(HOUR), dailyBefore: at(DAY), transitionsBefore: at(2500) };

  it("deletes old runs, daily buckets, transitions (all but the one in effect at the horizon and those after it) and processed windows, once", async () => {
    const adapter = newAdapter();
    await seedHistory(adapter);
    expect(await adapter.store.prune(horizons)).toEqual({ runs: 1, daily: 2, transitions: 1, maintenance: 1 });

    expect(await read(adapter, (tx) => tx.findRunIds(["r1", "r2", "r3"]))).toEqual(["r2", "r3"]);
    expect((await adapter.store.queryBuckets({ systemId: "s1", granularity: "day", from: at(-DAY), to: at(9 * DAY) })).map(slot)).toEqual([
      "s1/c1/-@24h",
    ]);
    expect(await adapter.store.queryBuckets({ systemId: "s2", granularity: "day", from: at(-DAY), to: at(9 * DAY) })).toEqual([]);
    // Hourly buckets are the rollup's business.
    expect(await adapter.store.queryBuckets({ systemId: "s1", granularity: "hour", from: at(0), to: at(DAY) })).toHaveLength(1);
    const seqs = async (entityId: string) => (await adapter.store.listTransitions({ entityId })).map((t) => t.sequence);
    // e's sequence 2 (at 2000) is the status at the horizon (2500): it stays with 3.
    expect(await seqs("e")).toEqual([2, 3]);
    expect(await seqs("f")).toEqual([1]);
    expect(await seqs("g")).toEqual([1, 2]);
    expect(await seqs("h")).toEqual([1, 2, 3]);
    expect(await seqs("k")).toEqual([1, 2]);
    expect((await adapter.store.listMaintenance({})).map((w) => w.maintenanceId).sort()).toEqual([
      "done-at-horizon",
      "ended-flag-only",
      "never-ended",
      "never-started",
    ]);

    // Idempotent.
    expect(await adapter.store.prune(horizons)).toEqual({ runs: 0, daily: 0, transitions: 0, maintenance: 0 });
    // A later horizon moves the kept part on: at 3500, e's sequence 3 (3000) is in effect; all of
    // h took effect before it, but h#1 holds the time (3000) its later entries took effect: all stay.
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.appendTransitions([transition("e", 4, 4000)]));
    expect(await adapter.store.prune({ ...horizons, transitionsBefore: at(3500) })).toEqual({
      runs: 0,
      daily: 0,
      transitions: 1,
      maintenance: 1,
    });
    expect(await seqs("e")).toEqual([3, 4]);
    expect(await seqs("h")).toEqual([1, 2, 3]);
    expect(await seqs("k")).toEqual([1, 2]);
  });

  it("frees the ids of pruned runs: a run carrying one is accepted again", async () => {
    const adapter = newAdapter();
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.insertRuns([storedRun("r1", "s1", 0)]));
    const insertAgain = adapter.store.transaction({ lockKeys: [] }, (tx) => tx.insertRuns([storedRun("r1", "s1", 0)]));
    await expect(insertAgain).rejects.toThrow(/duplicate runId/);
    expect((await adapter.store.prune({ runsBefore: at(1), dailyBefore: at(0), transitionsBefore: at(0) })).runs).toBe(1);
    expect(await read(adapter, (tx) => tx.findRunIds(["r1"]))).toEqual([]);
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.insertRuns([storedRun("r1", "s1", 2 * HOUR)]));
    expect(await read(adapter, (tx) => tx.findRunIds(["r1"]))).toEqual(["r1"]);
    expect((await adapter.store.prune({ runsBefore: at(1), dailyBefore: at(0), transitionsBefore: at(0) })).runs).toBe(0);
  });

  it("leaves running transactions' staged writes alone, while they read the pruned state (read committed)", async () => {
    const adapter = newAdapter();
    await seedHistory(adapter);
    const staged = deferred();
    const pruned = deferred();
    const writer = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.insertRuns([storedRun("r-staged", "s1", 0)]);
      await tx.putBuckets([bucket(bucketKey("s3", "c1", null, "day", 0))]);
      await tx.appendTransitions([transition("e", 4, 100)]);
      staged.resolve();
      await pruned.promise;
      expect(await tx.findRunIds(["r1", "r-staged"])).toEqual(["r-staged"]);
      expect((await tx.listTransitions({ entityId: "e" })).map((t) => t.sequence)).toEqual([2, 3, 4]);
    });
    await staged.promise;
    expect(await adapter.store.prune(horizons)).toEqual({ runs: 1, daily: 2, transitions: 1, maintenance: 1 });
    pruned.resolve();
    await writer;
    expect(await read(adapter, (tx) => tx.findRunIds(["r-staged"]))).toEqual(["r-staged"]);
    expect(await adapter.store.listSystemsWithBucketsBefore({ granularity: "day", before: at(1) })).toEqual(["s3"]);
    // Now committed and old, the staged run and bucket go with the next prune; e keeps sequence 2
    // (in effect at the horizon), 3 (recent) and 4 (old, but it takes effect at 3's time).
    expect(await adapter.store.prune(horizons)).toEqual({ runs: 1, daily: 1, transitions: 0, maintenance: 0 });
    expect((await adapter.store.listTransitions({ entityId: "e" })).map((t) => t.sequence)).toEqual([2, 3, 4]);
  });

  it("rejects an invalid horizon, deleting nothing", async () => {
    const adapter = newAdapter();
    await seedHistory(adapter);
    await expect(adapter.store.prune({ ...horizons, transitionsBefore: new Date(Number.NaN) })).rejects.toThrow(TypeError);
    expect(await adapter.store.prune(horizons)).toEqual({ runs: 1, daily: 2, transitions: 1, maintenance: 1 });
  });
});

describe("memory store: entity records", () => {
  it("round-trips history and flappingFrom, and leaves them absent when they were", async () => {
    const adapter = newAdapter();
    const flapping: EntityRecord = { ...entity("s1", null, 7), history: "hhuhuhuhuhuhuhuhuhuhu", flappingFrom: "healthy" };
    const calm: EntityRecord = { ...entity("s1", "prod", 2), history: "hu", flappingFrom: null };
    const bare = entity("s1", "dev");
    await adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      await tx.putEntities([flapping, calm, bare]);
      expect(await tx.getEntities(["s1"])).toEqual([flapping, calm, bare]);
    });
    const stored = await read(adapter, (tx) => tx.getEntities(["s1"]));
    expect(stored).toEqual([flapping, calm, bare]);
    expect(stored[2] !== undefined && "history" in stored[2]).toBe(false);
    expect(stored[2] !== undefined && "flappingFrom" in stored[2]).toBe(false);
    expect(await adapter.store.getEntitiesById(["s1", "s1::prod"])).toEqual([flapping, calm]);
    // Replacing the record ends flapping and extends the history.
    const calmed: EntityRecord = { ...flapping, history: "huhuhuhuhuhuhuhuhuhuu", flappingFrom: null };
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.putEntities([calmed]));
    const [after] = await adapter.store.getEntitiesById(["s1"]);
    expect(after?.history).toBe("huhuhuhuhuhuhuhuhuhuu");
    expect(after?.flappingFrom).toBeNull();
  });
});

describe("keyed mutex", () => {
  it("never runs overlapping key sets at the same time", async () => {
    const lock = new KeyedMutex();
    const inside = new Set<number>();
    const log: string[] = [];
    const gates = [deferred(), deferred(), deferred()];
    // Pairwise overlapping, so they must run strictly one after another.
    const sets = [["a", "b"], ["b", "c"], ["a", "c"]];
    const calls = sets.map((keys, i) =>
      lock.withLock(keys, async () => {
        for (const other of inside) {
          expect(sets[other]?.some((k) => keys.includes(k))).toBe(false);
        }
        inside.add(i);
        log.push(`enter ${i}`);
        await gates[i]?.promise;
        log.push(`exit ${i}`);
        inside.delete(i);
      }),
    );
    await settle();
    expect(log).toEqual(["enter 0"]);
    gates.forEach((g) => g.resolve());
    await Promise.all(calls);
    expect(log).toEqual(["enter 0", "exit 0", "enter 1", "exit 1", "enter 2", "exit 2"]);
    expect(lock.size).toBe(0);
  });

  it("lets disjoint key sets run concurrently", async () => {
    const lock = new KeyedMutex();
    const gate = deferred();
    let aInside = false;
    const a = lock.withLock(["a", "b"], async () => {
      aInside = true;
      await gate.promise;
      aInside = false;
    });
    await settle();
    const b = await lock.withLock(["c", "d"], () => Promise.resolve(aInside));
    expect(b).toBe(true);
    gate.resolve();
    await a;
    expect(lock.size).toBe(0);
  });

  it("hands a key over in FIFO order", async () => {
    const lock = new KeyedMutex();
    const gate = deferred();
    const order: number[] = [];
    const first = lock.withLock(["k"], () => gate.promise);
    const rest = [1, 2, 3, 4].map((i) =>
      lock.withLock(["k"], () => {
        order.push(i);
        return Promise.resolve();
      }),
    );
    await settle();
    expect(order).toEqual([]);
    gate.resolve();
    await Promise.all([first, ...rest]);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it("releases every key when fn rejects or throws synchronously, passing the reason through", async () => {
    const lock = new KeyedMutex();
    const boom = new Error("boom");
    await expect(lock.withLock(["a", "b"], () => Promise.reject(boom))).rejects.toBe(boom);
    await expect(
      lock.withLock(["b", "c"], () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(lock.size).toBe(0);
    await expect(lock.withLock(["a", "b", "c"], () => Promise.resolve("free"))).resolves.toBe("free");
    expect(lock.size).toBe(0);
  });

  it("takes a repeated key once and runs fn with no keys at all", async () => {
    const lock = new KeyedMutex();
    await expect(lock.withLock(["a", "a", "b", "a"], () => Promise.resolve(1))).resolves.toBe(1);
    await expect(lock.withLock([], () => Promise.resolve(2))).resolves.toBe(2);
    expect(lock.size).toBe(0);
  });

  it("never deadlocks nor overlaps for random overlapping key sets taken in sorted order (property)", async () => {
    const keySet = fc.uniqueArray(fc.constantFrom("a", "b", "c", "d", "e"), { minLength: 1, maxLength: 4 }).map((keys) => keys.sort());
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(keySet, { minLength: 1, maxLength: 10 }), async (s, sets) => {
        const lock = new KeyedMutex();
        const holders = new Map<string, number>();
        const violations: string[] = [];
        const done = sets.map(() => false);
        const calls = sets.map((keys, i) =>
          s.schedule(Promise.resolve(), `start ${i}`).then(() =>
            lock.withLock(keys, async () => {
              for (const key of keys) {
                const holder = holders.get(key);
                if (holder !== undefined) violations.push(`${i} entered ${key} held by ${holder}`);
                holders.set(key, i);
              }
              await s.schedule(Promise.resolve(), `work ${i}`);
              for (const key of keys) holders.delete(key);
              done[i] = true;
            }),
          ),
        );
        // A key handed over schedules its holder's work a few microtasks later, after `waitAll`
        // may have returned; keep releasing until everything finished or nothing moves any more
        // (a deadlock), which bounds the test instead of hanging it.
        for (let round = 0; round < 1000 && !done.every(Boolean); round += 1) {
          await s.waitAll();
          await settle();
        }
        expect(violations).toEqual([]);
        expect(done.every(Boolean)).toBe(true);
        await Promise.all(calls);
        expect(lock.size).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

describe("memory emitter", () => {
  it("hands out one head per entity, in per-entity sequence order, lowest position first", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await enqueue(adapter, event("a", 1), event("a", 2), event("b", 1));
    await enqueue(adapter, event("a", 3), event("c", 1));
    const claim = (limit: number, now = at(0)) => adapter.emitter.claim({ group: "g", consumerId: "w", limit, leaseMs: 1000, now });

    const first = await claim(10);
    expect(ids(first)).toEqual(["a#1", "b#1", "c#1"]);
    expect(first.map((c) => c.attempt)).toEqual([1, 1, 1]);
    expect(await claim(10)).toEqual([]);
    await adapter.emitter.ack({ group: "g", eventIds: ["a#1", "c#1"] });
    expect(ids(await claim(10))).toEqual(["a#2"]);
    // Acking a later event before its head is a no-op: it could skip an undelivered event.
    await adapter.emitter.ack({ group: "g", eventIds: ["a#3"] });
    await adapter.emitter.ack({ group: "g", eventIds: ["a#2", "b#1"] });
    expect(ids(await claim(10))).toEqual(["a#3"]);
    // Idempotent, and unknown ids are ignored.
    await adapter.emitter.ack({ group: "g", eventIds: ["a#3", "a#3", "nope#1", "a#1"] });
    expect(await claim(10, at(5000))).toEqual([]);
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: await adapter.emitter.highWatermark() })).toBe(0);
  });

  it("respects the claim limit, lowest positions first", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await enqueue(adapter, event("z", 1), event("y", 1), event("x", 1), event("w", 1));
    const claimed = await adapter.emitter.claim({ group: "g", consumerId: "w", limit: 2, leaseMs: 1000, now: at(0) });
    expect(ids(claimed)).toEqual(["z#1", "y#1"]);
    expect(await adapter.emitter.claim({ group: "g", consumerId: "w", limit: 0, leaseMs: 1000, now: at(0) })).toEqual([]);
  });

  it("acks a head and its successors given in one call, in any order", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await enqueue(adapter, event("a", 1), event("a", 2), event("a", 3));
    await adapter.emitter.claim({ group: "g", consumerId: "w", limit: 1, leaseMs: 1000, now: at(0) });
    await adapter.emitter.ack({ group: "g", eventIds: ["a#2", "a#1"] });
    expect(ids(await adapter.emitter.claim({ group: "g", consumerId: "w", limit: 5, leaseMs: 1000, now: at(0) }))).toEqual(["a#3"]);
  });

  it("blocks a leased event for other consumers until the lease expires, counting attempts", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await enqueue(adapter, event("a", 1), event("a", 2));
    const claim = (consumerId: string, ms: number) => adapter.emitter.claim({ group: "g", consumerId, limit: 10, leaseMs: 1000, now: at(ms) });
    expect(await claim("c1", 0)).toEqual([{ event: event("a", 1), attempt: 1 }]);
    expect(await claim("c2", 999)).toEqual([]);
    expect(await claim("c1", 999)).toEqual([]);
    expect(await claim("c2", 1000)).toEqual([{ event: event("a", 1), attempt: 2 }]);
    // A late ack of the first consumer still settles it: the event was delivered.
    await adapter.emitter.ack({ group: "g", eventIds: ["a#1"] });
    expect(await claim("c3", 1000)).toEqual([{ event: event("a", 2), attempt: 1 }]);
  });

  it("retries a failed event at retryAt, keeping its attempt count", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await enqueue(adapter, event("a", 1), event("b", 1));
    const claim = (ms: number) => adapter.emitter.claim({ group: "g", consumerId: "w", limit: 10, leaseMs: 60_000, now: at(ms) });
    expect(ids(await claim(0))).toEqual(["a#1", "b#1"]);
    await adapter.emitter.fail({ group: "g", eventId: "a#1", consumerId: "w", attempt: 1, error: "down", retryAt: at(5000), deadLetter: false, now: at(10) });
    // The lease is released, but the retry time has not come; b is still leased.
    expect(await claim(4999)).toEqual([]);
    expect(await claim(5000)).toEqual([{ event: event("a", 1), attempt: 2 }]);
    // Failing an event that is not a head (unknown, or not yet delivered) changes nothing.
    await adapter.emitter.fail({ group: "g", eventId: "a#7", consumerId: "w", attempt: 1, error: "x", retryAt: at(0), deadLetter: true, now: at(0) });
    expect(await adapter.emitter.listDeadLetters({})).toEqual([]);
  });

  it("ignores a failure from a claim that no longer holds the lease (expired and claimed again)", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await enqueue(adapter, event("a", 1));
    const claim = (consumerId: string, ms: number, leaseMs = 60_000) => adapter.emitter.claim({ group: "g", consumerId, limit: 10, leaseMs, now: at(ms) });
    expect(await claim("c1", 0, 10)).toEqual([{ event: event("a", 1), attempt: 1 }]);
    // c1's lease expired: c2 holds a#1 now.
    expect(await claim("c2", 20)).toEqual([{ event: event("a", 1), attempt: 2 }]);
    const late = { group: "g", eventId: "a#1", error: "late", retryAt: at(22), now: at(21) };
    await adapter.emitter.fail({ ...late, consumerId: "c1", attempt: 1, deadLetter: false });
    await adapter.emitter.fail({ ...late, consumerId: "c1", attempt: 1, deadLetter: true });
    // The same consumer's earlier claim is not the current one either.
    await adapter.emitter.fail({ ...late, consumerId: "c2", attempt: 1, deadLetter: true });
    expect(await claim("c3", 30)).toEqual([]);
    expect(await adapter.emitter.listDeadLetters({})).toEqual([]);
    // The holder's own failure applies.
    await adapter.emitter.fail({ ...late, consumerId: "c2", attempt: 2, deadLetter: false });
    expect(await claim("c3", 30)).toEqual([{ event: event("a", 1), attempt: 3 }]);
    await expect(adapter.emitter.fail({ ...late, consumerId: "c3", attempt: 1.5, deadLetter: false })).rejects.toThrow(TypeError);
  });

  it("settles a dead-lettered event, delivers the next one, and lists dead letters newest first", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await adapter.emitter.registerGroup({ group: "h", from: "oldest" });
    await enqueue(adapter, event("a", 1), event("a", 2), event("b", 1));
    const claim = (group: string, ms: number) => adapter.emitter.claim({ group, consumerId: "w", limit: 10, leaseMs: 10, now: at(ms) });
    await claim("g", 0);
    await claim("g", 100);
    await adapter.emitter.fail({ group: "g", eventId: "a#1", consumerId: "w", attempt: 2, error: "first", retryAt: at(200), deadLetter: false, now: at(101) });
    await claim("g", 200);
    await adapter.emitter.fail({ group: "g", eventId: "a#1", consumerId: "w", attempt: 3, error: "gave up", retryAt: at(9999), deadLetter: true, now: at(201) });
    expect(ids(await claim("g", 201))).toEqual(["a#2"]);
    await claim("h", 0);
    await adapter.emitter.fail({ group: "h", eventId: "b#1", consumerId: "w", attempt: 1, error: "nope", retryAt: at(0), deadLetter: true, now: at(300) });

    const gLetter = { group: "g", event: event("a", 1), attempts: 3, lastError: "gave up", deadAt: iso(201) };
    const hLetter = { group: "h", event: event("b", 1), attempts: 1, lastError: "nope", deadAt: iso(300) };
    expect(await adapter.emitter.listDeadLetters({})).toEqual([hLetter, gLetter]);
    expect(await adapter.emitter.listDeadLetters({ group: "g" })).toEqual([gLetter]);
    expect(await adapter.emitter.listDeadLetters({ limit: 1 })).toEqual([hLetter]);
    // Dead letters count as settled.
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: "3" })).toBe(2);
    expect(await adapter.emitter.pendingCount({ group: "h", upTo: "3" })).toBe(2);
  });

  it("keeps groups independent", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await adapter.emitter.registerGroup({ group: "h", from: "oldest" });
    await enqueue(adapter, event("a", 1), event("a", 2));
    const claim = (group: string) => adapter.emitter.claim({ group, consumerId: "w", limit: 10, leaseMs: 1000, now: at(0) });
    expect(ids(await claim("g"))).toEqual(["a#1"]);
    expect(ids(await claim("h"))).toEqual(["a#1"]);
    await adapter.emitter.ack({ group: "g", eventIds: ["a#1"] });
    expect(ids(await claim("g"))).toEqual(["a#2"]);
    expect(await claim("h")).toEqual([]);
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: "2" })).toBe(1);
    expect(await adapter.emitter.pendingCount({ group: "h", upTo: "2" })).toBe(2);
  });

  it("starts a group registered from \"now\" after the history, and the first registration wins", async () => {
    const adapter = newAdapter();
    await enqueue(adapter, event("a", 1), event("b", 1));
    await adapter.emitter.registerGroup({ group: "late", from: "now" });
    await adapter.emitter.registerGroup({ group: "late", from: "oldest" });
    await adapter.emitter.registerGroup({ group: "all", from: "oldest" });
    await adapter.emitter.registerGroup({ group: "all", from: "now" });
    await enqueue(adapter, event("a", 2), event("c", 1));
    const claim = (group: string) => adapter.emitter.claim({ group, consumerId: "w", limit: 10, leaseMs: 1000, now: at(0) });
    expect(ids(await claim("late"))).toEqual(["a#2", "c#1"]);
    expect(ids(await claim("all"))).toEqual(["a#1", "b#1", "c#1"]);
    expect(await adapter.emitter.pendingCount({ group: "late", upTo: "4" })).toBe(2);
    expect(await adapter.emitter.pendingCount({ group: "late", upTo: "2" })).toBe(0);
  });

  it("reports the high watermark and pending counts, comparing positions as numbers", async () => {
    const adapter = newAdapter();
    expect(await adapter.emitter.highWatermark()).toBe("0");
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    for (let sequence = 1; sequence <= 12; sequence += 1) await enqueue(adapter, event("a", sequence));
    expect(await adapter.emitter.highWatermark()).toBe("12");
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: "9" })).toBe(9);
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: "10" })).toBe(10);
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: "0" })).toBe(0);
    await adapter.emitter.claim({ group: "g", consumerId: "w", limit: 1, leaseMs: 1, now: at(0) });
    await adapter.emitter.ack({ group: "g", eventIds: ["a#1"] });
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: "10" })).toBe(9);
    await expect(adapter.emitter.pendingCount({ group: "g", upTo: "ten" })).rejects.toThrow(/position/);
    // A transaction without events moves nothing.
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.putSystem(system("s")));
    expect(await adapter.emitter.highWatermark()).toBe("12");
  });

  it("rejects claims, acks, fails and pending counts of an unregistered group", async () => {
    const adapter = newAdapter();
    await expect(adapter.emitter.claim({ group: "x", consumerId: "w", limit: 1, leaseMs: 1, now: at(0) })).rejects.toThrow(/unknown group/);
    await expect(adapter.emitter.ack({ group: "x", eventIds: [] })).rejects.toThrow(/unknown group/);
    await expect(
      adapter.emitter.fail({ group: "x", eventId: "a#1", consumerId: "w", attempt: 1, error: "e", retryAt: at(0), deadLetter: false, now: at(0) }),
    ).rejects.toThrow(/unknown group/);
    await expect(adapter.emitter.pendingCount({ group: "x", upTo: "0" })).rejects.toThrow(/unknown group/);
  });

  it("prunes only events every group settled: old ones first, then the oldest beyond maxEvents", async () => {
    let now = at(0);
    const adapter = newAdapter(() => now);
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    await adapter.emitter.registerGroup({ group: "h", from: "oldest" });
    await enqueue(adapter, event("a", 1), event("a", 2), event("b", 1)); // enqueued at 0
    now = at(10_000);
    await enqueue(adapter, event("a", 3), event("b", 2), event("c", 1)); // enqueued at 10 s
    let claimAt = 0;
    /** Claims repeatedly (each time after the previous leases expired), acking only `acked`. */
    const deliver = async (group: string, acked: readonly string[]) => {
      for (;;) {
        claimAt += 100;
        const claimed = await adapter.emitter.claim({ group, consumerId: "w", limit: 10, leaseMs: 1, now: at(claimAt) });
        const due = ids(claimed).filter((id) => acked.includes(id));
        if (due.length === 0) return;
        await adapter.emitter.ack({ group, eventIds: due });
      }
    };
    const all = ["a#1", "a#2", "b#1", "a#3", "b#2", "c#1"]; // positions 1 … 6
    await deliver("g", all);
    await deliver("h", ["a#1", "a#2"]);
    // Old and settled by both: a#1, a#2. b#1 is old but unsettled for h.
    expect(await adapter.emitter.prune({ olderThan: at(5000), maxEvents: 100 })).toBe(2);
    expect(await adapter.emitter.pendingCount({ group: "h", upTo: "6" })).toBe(4);
    // Count cap: nothing more is settled by both, so nothing goes, even with maxEvents 0.
    expect(await adapter.emitter.prune({ olderThan: at(0), maxEvents: 0 })).toBe(0);
    await deliver("h", all);
    // Now all four are settled and recent: the cap alone removes the oldest ones.
    expect(await adapter.emitter.prune({ olderThan: at(0), maxEvents: 1 })).toBe(3);
    expect(ids(await adapter.emitter.claim({ group: "g", consumerId: "w", limit: 10, leaseMs: 1, now: at(claimAt + 100) }))).toEqual([]);
    // The survivor is the newest; the watermark never goes back.
    expect(await adapter.emitter.prune({ olderThan: at(20_000), maxEvents: 100 })).toBe(1);
    expect(await adapter.emitter.highWatermark()).toBe("6");
    // Later events of a pruned entity continue from its sequence, pending again.
    await enqueue(adapter, event("a", 4));
    expect(ids(await adapter.emitter.claim({ group: "h", consumerId: "w", limit: 10, leaseMs: 1, now: at(claimAt + 100) }))).toEqual(["a#4"]);
  });

  it("prunes everything old when no group is registered", async () => {
    let now = at(0);
    const adapter = newAdapter(() => now);
    await enqueue(adapter, event("a", 1), event("a", 2));
    now = at(10_000);
    await enqueue(adapter, event("a", 3));
    expect(await adapter.emitter.prune({ olderThan: at(10_000), maxEvents: 100 })).toBe(2);
    expect(await adapter.emitter.prune({ olderThan: at(0), maxEvents: 0 })).toBe(1);
    // A group registered now from "oldest" starts with what is still retained: nothing.
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    expect(await adapter.emitter.pendingCount({ group: "g", upTo: "3" })).toBe(0);
  });

  it("signals availability after commits with events, retries and uncovered heads, coalesced, until unsubscribed", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    let calls = 0;
    const unsubscribe = adapter.emitter.onAvailable(() => {
      calls += 1;
    });
    adapter.emitter.onAvailable(() => {
      throw new Error("a broken listener is ignored");
    });
    await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.putSystem(system("s")));
    await settle();
    expect(calls).toBe(0);
    await Promise.all([enqueue(adapter, event("a", 1), event("a", 2)), enqueue(adapter, event("b", 1))]);
    await settle();
    expect(calls).toBe(1);
    await adapter.emitter.claim({ group: "g", consumerId: "w", limit: 10, leaseMs: 1000, now: at(0) });
    await adapter.emitter.fail({ group: "g", eventId: "b#1", consumerId: "w", attempt: 1, error: "e", retryAt: at(10), deadLetter: false, now: at(0) });
    await settle();
    expect(calls).toBe(2);
    await adapter.emitter.ack({ group: "g", eventIds: ["a#1"] }); // uncovers a#2
    await settle();
    expect(calls).toBe(3);
    unsubscribe();
    await enqueue(adapter, event("c", 1));
    await settle();
    expect(calls).toBe(3);
  });
});

describe("closing the memory adapter", () => {
  it("rejects every later store and emitter call, fails a running commit, and is idempotent", async () => {
    const adapter = newAdapter();
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    let calls = 0;
    adapter.emitter.onAvailable(() => {
      calls += 1;
    });
    const staged = deferred();
    const proceed = deferred();
    let captured: StoreTransaction | undefined;
    const running = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
      captured = tx;
      await tx.enqueueEvents([event("a", 1)]);
      staged.resolve();
      await proceed.promise;
    });
    await staged.promise;
    await adapter.close();
    await adapter.close();
    proceed.resolve();
    await expect(running).rejects.toBeInstanceOf(ClosedError);
    await expect(captured?.listSystemIds()).rejects.toThrow(/close/);
    await expect(captured?.getMaintenance(["a"])).rejects.toBeInstanceOf(ClosedError);
    await expect(captured?.deleteBuckets([])).rejects.toBeInstanceOf(ClosedError);
    await expect(captured?.listTransitions({ entityId: "a" })).rejects.toBeInstanceOf(ClosedError);

    const closedCalls: Promise<unknown>[] = [
      adapter.store.transaction({ lockKeys: [] }, () => Promise.resolve()),
      adapter.store.getEntitiesById(["a"]),
      adapter.store.listTransitions({ entityId: "a" }),
      adapter.store.listMaintenance({}),
      adapter.store.findDueMaintenance(at(0)),
      adapter.store.queryBuckets({ systemId: "a", granularity: "hour", from: at(0), to: at(1) }),
      adapter.store.listSystemsWithBucketsBefore({ granularity: "hour", before: at(0) }),
      adapter.store.prune({ runsBefore: at(0), dailyBefore: at(0), transitionsBefore: at(0) }),
      adapter.emitter.registerGroup({ group: "h", from: "now" }),
      adapter.emitter.claim({ group: "g", consumerId: "w", limit: 1, leaseMs: 1, now: at(0) }),
      adapter.emitter.ack({ group: "g", eventIds: [] }),
      adapter.emitter.fail({ group: "g", eventId: "a#1", consumerId: "w", attempt: 1, error: "e", retryAt: at(0), deadLetter: false, now: at(0) }),
      adapter.emitter.pendingCount({ group: "g", upTo: "0" }),
      adapter.emitter.highWatermark(),
      adapter.emitter.listDeadLetters({}),
      adapter.emitter.prune({ olderThan: at(0), maxEvents: 0 }),
    ];
    for (const call of closedCalls) {
      await expect(call).rejects.toBeInstanceOf(ClosedError);
      await expect(call).rejects.toThrow(/called after close\(\)/);
    }
    await settle();
    expect(calls).toBe(0);
    expect(adapter.emitter.onAvailable(() => undefined)).toBeTypeOf("function");
    expect(adapter.store.capabilities).toEqual({ durable: false, crossProcess: false });
    expect(adapter.emitter.capabilities).toEqual({ durable: false, crossProcess: false });
  });
});

describe("addToBuckets atomicity", () => {
  it("keeps both deltas when two transactions add to one bucket in any interleaving", async () => {
    const adapter = createMemoryAdapter();
    const key: BucketKey = { systemId: "s", checkId: "c", environmentId: null, granularity: "hour", start: "2031-01-01T00:00:00.000Z" };
    const delta = addRuns(emptyBucket(key), [{ status: "healthy", latencyMs: 5 }]);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = adapter.store.transaction({ lockKeys: ["health:a"] }, async (tx) => {
      await tx.addToBuckets([delta]);
      expect((await tx.getBuckets([key]))[0]?.runs).toBe(1);
      await gate;
    });
    await adapter.store.transaction({ lockKeys: ["health:b"] }, (tx) => tx.addToBuckets([delta]));
    release();
    await first;
    const [bucket] = await adapter.store.queryBuckets({ systemId: "s", granularity: "hour", from: new Date(0), to: new Date("2040-01-01") });
    expect(bucket?.runs).toBe(2);
    expect(bucket?.sketch.bins).toEqual({ [Object.keys(delta.sketch.bins)[0] as string]: 2 });
    await adapter.close();
  });
});
