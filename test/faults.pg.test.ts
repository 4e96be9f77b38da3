// Fault injection on a real server: a backend killed while it holds an entity's advisory lock, a
// process SIGKILLed between commit and delivery, a consumer SIGKILLed after handling an event but
// before acknowledging it. Each ends with the invariant checker on the tables.
// (A lock timeout that exhausts the retries is covered in postgres-adapter.pg.test.ts: "retries
// on lock timeout (55P03) and gives up with a StoreError after bounded attempts, writing nothing".)
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  StoreError,
  createHealthEngine,
  type HealthAdapter,
  type HealthEngine,
  type HealthStatus,
  type RunInput,
  type StoreTransaction,
  type Thresholds,
} from "healthstate";
import { advisoryLockKey, createPostgresAdapter, migrate, type PostgresAdapter } from "healthstate/adapters/postgres";
import { forkWriter, type ForkedWriter } from "./fixtures/fork";
import { checkInvariants, loadInvariantRows } from "./fixtures/invariants";
import { DATABASE_URL, dropSchema, openPool, schemaNameFor } from "./helpers/pg";

const TWITCHY: Thresholds = {
  mode: "consecutive",
  healthy: { minSuccessCount: 1 },
  degraded: { minFailureCount: 1 },
  unhealthy: { minFailureCount: 1 },
};

describe("fault-injection helpers (runs without a server)", () => {
  it("splits an advisory key into pg_locks' classid/objid halves", () => {
    expect(lockHalves(-1n)).toEqual({ classid: "4294967295", objid: "4294967295" });
    expect(lockHalves((5n << 32n) | 7n)).toEqual({ classid: "5", objid: "7" });
  });
});

/** The two 32-bit halves under which pg_locks shows a bigint advisory key (objsubid = 1). */
function lockHalves(key: bigint): { classid: string; objid: string } {
  const unsigned = BigInt.asUintN(64, key);
  return { classid: (unsigned >> 32n).toString(), objid: (unsigned & 0xffffffffn).toString() };
}

// PGlite has a single connection in a single process: these tests need a real server and are
// registered only when DATABASE_URL is set.
const describeServer = DATABASE_URL === undefined ? () => undefined : describe;

describeServer("fault injection on a real server (PGlite has one connection: server only)", () => {
  let pool: pg.Pool;
  const children: ForkedWriter[] = [];
  let cleanups: (() => Promise<void>)[] = [];
  let schema = "";

  beforeAll(() => {
    pool = openPool({ max: 4 });
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((child) => child.kill()));
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
    if (schema !== "") await dropSchema(pool, schema);
    schema = "";
  });
  afterAll(async () => {
    await pool.end();
  });

  async function setup(name: string, systems: readonly string[]): Promise<void> {
    schema = schemaNameFor(name);
    await migrate(pool, { schema });
    const { engine } = open(pool);
    (await engine.applyTopology({ systems: systems.map((systemId) => ({ systemId, environmentIds: [], checks: [{ checkId: "c", thresholds: TWITCHY }] })) }))._unsafeUnwrap();
  }

  function open(client: pg.Pool, ports?: (adapter: PostgresAdapter) => HealthAdapter, extra: { retryAttempts?: number } = {}): { adapter: PostgresAdapter; engine: HealthEngine } {
    const adapter = createPostgresAdapter({ client, schema, retry: { maxAttempts: extra.retryAttempts ?? 3, initialDelayMs: 5, maxDelayMs: 20 } });
    const used = ports === undefined ? adapter : ports(adapter);
    const engine = createHealthEngine({
      store: used.store,
      lock: used.lock,
      emitter: used.emitter,
      timers: false,
      retry: { initialDelayMs: 5, maxDelayMs: 20 },
      delivery: { pollIntervalMs: 20 },
      onBackgroundError: () => undefined,
    });
    cleanups.push(async () => {
      await engine.close();
      await adapter.close();
    });
    return { adapter, engine };
  }

  function fork(config: Omit<Parameters<typeof forkWriter>[0], "databaseUrl" | "schema" | "index">): ForkedWriter {
    const child = forkWriter({ ...config, databaseUrl: DATABASE_URL!, schema, index: children.length });
    children.push(child);
    return child;
  }

  async function expectInvariants(delivered?: ReadonlyMap<string, readonly string[]>): Promise<void> {
    expect(checkInvariants(await loadInvariantRows(pool, schema), delivered)).toEqual([]);
  }

  const outboxIds = async () => (await pool.query<{ event_id: string }>(`SELECT event_id FROM "${schema}".outbox ORDER BY position`)).rows.map((row) => row.event_id);
  const runIds = async () => (await pool.query<{ run_id: string }>(`SELECT run_id FROM "${schema}".runs ORDER BY run_id`)).rows.map((row) => row.run_id);

  it("pg_terminate_backend of the connection holding an entity's advisory lock: the waiter proceeds, the killed call fails with a StoreError and wrote nothing", async () => {
    await setup("fault terminate", ["victim"]);
    const { engine: before } = open(pool);
    for (const [i, status] of (["unhealthy", "healthy", "degraded"] as HealthStatus[]).entries()) {
      (await before.recordRun({ runId: `before-${i}`, systemId: "victim", checkId: "c", status }))._unsafeUnwrap();
    }

    // A store whose transaction function stops after its first write, until `release` is called.
    let armed = true;
    let signalHeld!: () => void;
    const held = new Promise<void>((resolve) => (signalHeld = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const holding = (adapter: PostgresAdapter): HealthAdapter => {
      const store = new Proxy(adapter.store, {
        get(target, property) {
          if (property === "transaction") {
            return <T>(options: { readonly lockKeys: readonly string[] }, fn: (tx: StoreTransaction) => Promise<T>) =>
              target.transaction(options, (tx) => fn(pausingAfterFirstWrite(tx)));
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      return { store, lock: adapter.lock, emitter: adapter.emitter, close: () => adapter.close() };
    };
    function pausingAfterFirstWrite(tx: StoreTransaction): StoreTransaction {
      return new Proxy(tx, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (typeof value !== "function") return value;
          const method = (value as (...args: unknown[]) => Promise<unknown>).bind(target);
          if (typeof property !== "string" || !/^(insert|put|add|enqueue|upsert|save|write)/u.test(property)) return method;
          return async (...args: unknown[]) => {
            const result = await method(...args);
            if (armed) {
              armed = false;
              signalHeld();
              await gate;
            }
            return result;
          };
        },
      });
    }

    const victimPool = openPool({ max: 2 });
    // The adapter listens for "error" on the client it holds for the transaction: a backend
    // terminated while the transaction waits on something else must not surface as an uncaught
    // ECONNRESET / 57P01 (vitest fails the run on any unhandled error).
    cleanups.push(() => victimPool.end());
    const { engine: victim } = open(victimPool, holding, { retryAttempts: 1 });
    const waiterPool = openPool({ max: 2 });
    cleanups.push(() => waiterPool.end());
    const { engine: waiter } = open(waiterPool);

    const killed = victim.recordRun({ runId: "killed", systemId: "victim", checkId: "c", status: "unhealthy" });
    await held;
    const { classid, objid } = lockHalves(advisoryLockKey(schema, "health:victim"));
    const holders = await pool.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock' AND objsubid = 1
          AND classid::bigint = $1::bigint AND objid::bigint = $2::bigint`,
      [classid, objid],
    );
    expect(holders.rows).toHaveLength(1);
    const pid = holders.rows[0]!.pid;

    const waiting = waiter.recordRun({ runId: "waiter", systemId: "victim", checkId: "c", status: "unhealthy" });
    // The waiter is blocked on the same advisory lock.
    await expect
      .poll(async () => (await pool.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid::bigint = $1::bigint AND objid::bigint = $2::bigint`, [classid, objid])).rowCount)
      .toBe(1);
    await pool.query("SELECT pg_terminate_backend($1)", [pid]);
    release();

    const killedOutcome = await killed;
    expect(killedOutcome.isErr()).toBe(true);
    expect(killedOutcome._unsafeUnwrapErr()).toBeInstanceOf(StoreError);
    const waiterOutcome = await waiting;
    expect(waiterOutcome._unsafeUnwrap().duplicate).toBe(false);

    expect(await runIds()).toEqual(["before-0", "before-1", "before-2", "waiter"]);
    const transitions = await pool.query<{ run_id: string }>(`SELECT run_id FROM "${schema}".transitions WHERE run_id = 'killed'`);
    expect(transitions.rows).toEqual([]);
    expect((await outboxIds()).length).toBeGreaterThanOrEqual(4); // degraded→unhealthy by the waiter
    await expectInvariants();
  }, 30_000);

  it("SIGKILL between commit and delivery: a new engine delivers every committed event exactly once after dedupe", async () => {
    await setup("fault commit kill", ["a", "b"]);
    const { adapter } = open(pool);
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    const statuses: HealthStatus[] = ["unhealthy", "healthy", "degraded", "healthy", "unhealthy", "degraded"];
    const runs: RunInput[] = statuses.flatMap((status, i) => [
      { runId: `a-${i}`, systemId: "a", checkId: "c", status },
      { runId: `b-${i}`, systemId: "b", checkId: "c", status: statuses[(i + 1) % statuses.length]! },
    ]);
    const child = fork({ mode: "commit-then-hang", runs });
    await child.next("ready");
    child.send({ type: "start" });
    const committed = await child.next("committed");
    await child.kill();
    expect(committed.count).toBe(runs.length);
    expect(child.child.signalCode).toBe("SIGKILL");

    const events = await outboxIds();
    expect(events.length).toBeGreaterThanOrEqual(6);
    const { engine } = open(pool);
    const delivered: string[] = [];
    engine.subscribe((event) => {
      delivered.push(event.eventId);
    }, { group: "g" });
    await engine.flush();
    expect(new Set(delivered)).toEqual(new Set(events));
    expect(delivered).toHaveLength(events.length); // nobody else held a lease: no duplicate either
    await expectInvariants(new Map([["g", delivered]]));
  }, 30_000);

  it("a consumer SIGKILLed after handling but before acking: after the lease expires the group gets the same eventId again; dedupe gives exactly once", async () => {
    await setup("fault ack kill", ["s"]);
    const { adapter, engine: writer } = open(pool);
    await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
    for (const [i, status] of (["unhealthy", "healthy", "degraded"] as HealthStatus[]).entries()) {
      (await writer.recordRun({ runId: `r${i}`, systemId: "s", checkId: "c", status }))._unsafeUnwrap();
    }
    const events = await outboxIds();
    expect(events).toHaveLength(3);

    const leaseMs = 1_000;
    const child = fork({ mode: "handle-then-hang", group: "g", leaseMs });
    const handled = await child.next("handled");
    const killedAt = Date.now();
    await child.kill();
    expect(handled.eventId).toBe(events[0]);

    const { engine } = open(pool);
    const seen: { eventId: string; at: number }[] = [];
    engine.subscribe((event) => {
      seen.push({ eventId: event.eventId, at: Date.now() });
    }, { group: "g" });
    await expect.poll(() => seen.length, { timeout: 10_000, interval: 50 }).toBe(events.length);
    await engine.flush();
    // The same eventId again, only once the dead consumer's lease ran out (per-entity order holds).
    expect(seen.map((s) => s.eventId)).toEqual(events);
    expect(seen[0]!.at - killedAt).toBeLessThan(leaseMs + 5_000);
    const all = [handled.eventId, ...seen.map((s) => s.eventId)];
    expect(all.filter((id) => id === handled.eventId)).toHaveLength(2);
    expect(new Set(all)).toEqual(new Set(events));
    await expectInvariants(new Map([["g", all]]));
  }, 30_000);
});
