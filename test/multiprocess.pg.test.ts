// Three processes, each with its own pool and engine, write to one schema concurrently; the
// outbox and transition tables are then checked directly in SQL (test/fixtures/invariants.ts).
// A negative control runs the same fleet through a write path with no locks and expects the
// checker to find violations, so a passing check means something.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHealthEngine, type Thresholds, type TopologyDoc } from "healthstate";
import { createPostgresAdapter, migrate } from "healthstate/adapters/postgres";
import { forkWriter, type ForkedWriter } from "./fixtures/fork";
import { checkInvariants, loadInvariantRows, snapshotInvariantRows, type InvariantRows } from "./fixtures/invariants";
import { DATABASE_URL, dropSchema, openPool, schemaNameFor } from "./helpers/pg";

describe("invariant checker (synthetic rows; runs without a server)", () => {
  const clean: InvariantRows = {
    outbox: [
      { entityId: "a", sequence: 1, eventId: "a#1", type: "health.transition" },
      { entityId: "a", sequence: 2, eventId: "a#2", type: "health.transition" },
      { entityId: "b", sequence: 1, eventId: "b#1", type: "health.transition" },
    ],
    transitions: [
      { entityId: "a", sequence: 1, previousStatus: "healthy", newStatus: "degraded" },
      { entityId: "a", sequence: 2, previousStatus: "degraded", newStatus: "unhealthy" },
      { entityId: "b", sequence: 1, previousStatus: "healthy", newStatus: "unhealthy" },
    ],
    entities: [
      { entityId: "a", sequence: 2, status: "unhealthy" },
      { entityId: "b", sequence: 1, status: "unhealthy" },
      { entityId: "c", sequence: 0, status: "healthy" },
    ],
  };
  const delivered = new Map([["g", ["a#1", "a#2", "a#1", "b#1"]]]);

  it("accepts consistent rows (duplicate deliveries are fine)", () => {
    expect(checkInvariants(clean, delivered)).toEqual([]);
  });

  it("flags a gap in the outbox and a transition without its event", () => {
    const gap: InvariantRows = {
      outbox: clean.outbox.filter((row) => !(row.entityId === "a" && row.sequence === 1)),
      transitions: clean.transitions.filter((row) => !(row.entityId === "a" && row.sequence === 1)),
      entities: clean.entities,
    };
    expect(checkInvariants(gap)).toContain("outbox a: expected sequence 1, found 2 (gap or duplicate)");
    // A transition whose event is missing from the outbox (its sequence then looks skipped).
    const lost = { ...clean, outbox: clean.outbox.filter((row) => row.eventId !== "a#1") };
    expect(checkInvariants(lost)).toContain("transitions: a#1 has no outbox event");
  });

  it("flags a broken chain", () => {
    const broken = { ...clean, transitions: clean.transitions.map((row) => (row.entityId === "a" && row.sequence === 2 ? { ...row, previousStatus: "healthy" } : row)) };
    expect(checkInvariants(broken)).toEqual(["transitions a: chain broken at 2: previous_status healthy ≠ degraded"]);
  });

  it("flags a duplicate sequence, a transition without event and an event without transition", () => {
    const duplicate: InvariantRows = {
      ...clean,
      outbox: [...clean.outbox, { entityId: "b", sequence: 1, eventId: "b#1'", type: "health.transition" }],
      transitions: [...clean.transitions, { entityId: "c", sequence: 1, previousStatus: "healthy", newStatus: "degraded" }],
    };
    const violations = checkInvariants(duplicate);
    expect(violations).toContain("outbox b: expected sequence 2, found 1 (gap or duplicate)");
    expect(violations).toContain("outbox: two transition events at b#1");
    const twice = { ...clean, transitions: [...clean.transitions, clean.transitions[2]!] };
    expect(checkInvariants(twice)).toContain("transitions b: duplicate sequence 1");
    expect(violations).toContain("transitions: c#1 has no outbox event");
    const orphan = { ...clean, transitions: clean.transitions.slice(0, 2) };
    expect(checkInvariants(orphan)).toContain("outbox: event at b#1 has no transition");
  });

  it("flags an entity whose sequence or status disagrees with its log", () => {
    const stale = { ...clean, entities: [{ entityId: "a", sequence: 1, status: "degraded" }, ...clean.entities.slice(1)] };
    expect(checkInvariants(stale)).toEqual([
      "entities a: sequence 1 ≠ max outbox sequence 2",
      "entities a: status degraded ≠ last transition's unhealthy",
    ]);
  });

  it("flags an event a group never received and one that is not in the outbox", () => {
    const violations = checkInvariants(clean, new Map([["g", ["a#1", "b#1", "zz#9"]]]));
    expect(violations).toHaveLength(2);
    expect(violations[0]).toMatch(/^group g: 1 events never delivered \(a#2/u);
    expect(violations[1]).toMatch(/^group g: 1 delivered events not in the outbox \(zz#9/u);
  });
});

/** Quick to change in both directions, so random runs transition often. */
const TOUCHY: Thresholds = {
  mode: "consecutive",
  healthy: { minSuccessCount: 1 },
  degraded: { minFailureCount: 1 },
  unhealthy: { minFailureCount: 2 },
};

// PGlite has a single connection (and lives in one process): these tests exist only on a real
// server, registered when DATABASE_URL is set and absent otherwise.
const describeServer = DATABASE_URL === undefined ? () => undefined : describe;

describeServer("multi-process writers on a real server (PGlite has one connection: server only)", () => {
  let pool: pg.Pool;
  const children: ForkedWriter[] = [];
  const schemas: string[] = [];

  beforeAll(() => {
    pool = openPool({ max: 4 });
  });

  afterAll(async () => {
    await Promise.all(children.map((child) => child.kill()));
    for (const schema of schemas) await dropSchema(pool, schema);
    await pool.end();
  });

  interface Fleet {
    readonly name: string;
    readonly hot: readonly string[];
    readonly cold: readonly string[];
    readonly hotShare: number;
    readonly durationMs: number;
    readonly maxRuns: number;
    readonly unserialized?: boolean;
    readonly deliver: boolean;
  }

  async function runFleet(fleet: Fleet): Promise<{ violations: string[]; snapshots: number; ok: number; failed: number; rows: InvariantRows; errors: string[] }> {
    const schema = schemaNameFor(fleet.name);
    schemas.push(schema);
    await migrate(pool, { schema });
    const adapter = createPostgresAdapter({ client: pool, schema });
    const engine = createHealthEngine({
      ...adapter,
      timers: false,
      delivery: { pollIntervalMs: 20 },
      onBackgroundError: () => undefined,
    });
    try {
      const topology: TopologyDoc = {
        systems: [...fleet.hot, ...fleet.cold].map((systemId) => ({ systemId, environmentIds: [], checks: [{ checkId: "c", thresholds: TOUCHY }] })),
      };
      (await engine.applyTopology(topology))._unsafeUnwrap();
      const parentDelivered: string[] = [];
      if (fleet.deliver) {
        engine.subscribe((event) => {
          parentDelivered.push(event.eventId);
        }, { group: "parent" });
      }
      const forked = [0, 1, 2].map((index) => {
        const child = forkWriter({
          mode: "write",
          databaseUrl: DATABASE_URL!,
          schema,
          index,
          writers: 8,
          durationMs: fleet.durationMs,
          maxRuns: fleet.maxRuns,
          hotSystems: fleet.hot,
          coldSystems: fleet.cold,
          hotShare: fleet.hotShare,
          unserialized: fleet.unserialized,
          ...(fleet.deliver && index === 0 ? { group: "child" } : {}),
        });
        children.push(child);
        return child;
      });
      await Promise.all(forked.map((child) => child.next("ready")));
      for (const child of forked) child.send({ type: "start" });
      // While they write, every committed state must satisfy the invariants: check snapshots.
      let writing = true;
      const midRun = new Set<string>();
      let snapshots = 0;
      const sampler = (async () => {
        while (writing) {
          for (const violation of checkInvariants(await snapshotInvariantRows(pool, schema))) midRun.add(`mid-run: ${violation}`);
          snapshots += 1;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      const written = await Promise.all(forked.map((child) => child.next("written"))).finally(() => {
        writing = false;
      });
      await sampler;
      const delivered = new Map<string, readonly string[]>();
      if (fleet.deliver) {
        forked[0]!.send({ type: "drain" });
        const [childDelivered] = await Promise.all([forked[0]!.next("delivered"), engine.flush()]);
        delivered.set("parent", parentDelivered);
        delivered.set("child", childDelivered.eventIds);
      }
      await Promise.all(forked.map((child) => child.kill()));
      const rows = await loadInvariantRows(pool, schema);
      return {
        violations: [...checkInvariants(rows, delivered), ...midRun],
        snapshots,
        ok: written.reduce((total, w) => total + w.ok, 0),
        failed: written.reduce((total, w) => total + w.failed, 0),
        errors: written.flatMap((w) => w.errors),
        rows,
      };
    } finally {
      await engine.close();
      await adapter.close();
    }
  }

  it("3 processes × 8 writers on 2 hot and 50 cold systems: gapless chained outbox, every event delivered to both groups", async () => {
    const result = await runFleet({
      name: "mp fleet",
      hot: ["hot-0", "hot-1"],
      cold: Array.from({ length: 50 }, (_, i) => `cold-${i}`),
      hotShare: 0.5,
      durationMs: 3_000,
      maxRuns: 400,
      deliver: true,
    });
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(100);
    expect(result.violations).toEqual([]);
    expect(result.snapshots).toBeGreaterThan(5);
    const hotTransitions = result.rows.transitions.filter((row) => row.entityId.startsWith("hot-")).length;
    expect(hotTransitions).toBeGreaterThan(20);
    const runs = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schemas.at(-1)!}".runs`);
    expect(runs.rows[0]?.n).toBe(result.ok);
  }, 40_000);

  it("negative control: the same fleet with no locks on ONE hot entity makes the checker fail", async () => {
    const result = await runFleet({
      name: "mp unserialized",
      hot: ["hot-0"],
      cold: [],
      hotShare: 1,
      durationMs: 1_500,
      maxRuns: 200,
      unserialized: true,
      deliver: false,
    });
    // The unique keys of outbox and transitions reject most racing writes (as failed calls); what
    // gets through is the lost update of the entity row (a stale sequence and status written over
    // a newer one), which the checker reports, mid-run or at the end.
    expect(result.violations.length, `${result.ok} ok, ${result.failed} failed`).toBeGreaterThan(0);
    expect(result.violations.some((v) => v.includes("entities hot-0"))).toBe(true);
  }, 40_000);
});
