import { describe, expect, it } from "vitest";
import {
  ClosedError,
  StoreError,
  ValidationError,
  createHealthEngine,
  encodeHealthEntityId,
  type HealthAdapter,
  type HealthEngine,
  type HealthEvent,
  type HealthEngineOptions,
  type HealthTransitionEvent,
  type StoredRun,
  type Thresholds,
} from "healthstate";
import {
  MIGRATIONS,
  MigrationChecksumError,
  advisoryLockKey,
  createPostgresAdapter,
  migrate,
  migrationChecksum,
  type PostgresAdapter,
  type PostgresClient,
  type PostgresStoreTransaction,
} from "healthstate/adapters/postgres";
import { BACKENDS, DATABASE_URL, dropSchema, schemaNameFor, usePgBackend, type PgFixture } from "./helpers/pg";

const T0 = Date.parse("2026-11-30T10:00:00Z");
const at = (second: number) => new Date(T0 + second * 1000);

/** Any failure changes the status at once, so every run of alternating statuses is a transition. */
const TWITCHY: Thresholds = {
  mode: "consecutive",
  healthy: { minSuccessCount: 1 },
  degraded: { minFailureCount: 1 },
  unhealthy: { minFailureCount: 1 },
};

const TABLES = [
  "systems",
  "assignments",
  "slices",
  "entities",
  "runs",
  "transitions",
  "outbox",
  "deliveries",
  "delivery_groups",
  "dead_letters",
] as const;

function engineOver(ports: HealthAdapter, fixture: PgFixture, extras: Partial<HealthEngineOptions> = {}): HealthEngine {
  const engine = createHealthEngine({
    store: ports.store,
    lock: ports.lock,
    emitter: ports.emitter,
    timers: false,
    retry: { initialDelayMs: 1, maxDelayMs: 5 },
    delivery: { pollIntervalMs: 10 },
    onBackgroundError: () => undefined,
    ...extras,
  });
  fixture.defer(() => engine.close());
  return engine;
}

async function count(fixture: PgFixture, table: string): Promise<number> {
  const [row] = await fixture.query<{ n: unknown }>(`SELECT count(*) AS n FROM "${fixture.schema}".${table}`);
  return Number(row?.n);
}

async function setupSystem(engine: HealthEngine, systemId = "checkout", environmentIds = ["prod", "staging"]): Promise<void> {
  (await engine.upsertSystem({ systemId, environmentIds }))._unsafeUnwrap();
  (await engine.assignCheck({ systemId, checkId: "http", thresholds: TWITCHY }))._unsafeUnwrap();
}

/** A minimal transition event for direct store/emitter tests. */
function transitionEvent(entityId: string, sequence: number, overrides: Partial<HealthTransitionEvent> = {}): HealthTransitionEvent {
  const odd = sequence % 2 === 1;
  return {
    type: "health.transition",
    eventId: `${entityId}#${sequence}`,
    entityId,
    systemId: entityId.split("::")[0] ?? entityId,
    environmentId: entityId.includes("::") ? (entityId.split("::")[1] ?? null) : null,
    sequence,
    previousStatus: odd ? "healthy" : "unhealthy",
    newStatus: odd ? "unhealthy" : "healthy",
    healthyChecks: odd ? 0 : 1,
    totalChecks: 1,
    classification: odd ? "escalation" : "recovery",
    triggers: odd ? ["healthcheck.system_degraded", "healthcheck.system_health_changed"] : ["healthcheck.system_healthy", "healthcheck.system_health_changed"],
    occurredAt: at(sequence).toISOString(),
    cause: { runId: `run-${sequence}` },
    ...overrides,
  };
}

async function enqueue(adapter: PostgresAdapter, events: HealthEvent[]): Promise<void> {
  await adapter.store.transaction({ lockKeys: [...new Set(events.map((event) => `health:${event.entityId}`))] }, (tx) =>
    tx.enqueueEvents(events),
  );
}

/** Checks the transition chain of every entity in the schema: 1..n without gap, each from = previous to. */
async function expectGaplessChains(fixture: PgFixture): Promise<Map<string, number>> {
  const rows = await fixture.query<{ entity_id: string; sequence: unknown; previous_status: string; new_status: string }>(
    `SELECT entity_id, sequence, previous_status, new_status FROM "${fixture.schema}".transitions ORDER BY entity_id, sequence`,
  );
  const byEntity = new Map<string, typeof rows>();
  for (const row of rows) byEntity.set(row.entity_id, [...(byEntity.get(row.entity_id) ?? []), row]);
  const lengths = new Map<string, number>();
  for (const [entityId, chain] of byEntity) {
    chain.forEach((row, index) => {
      expect(Number(row.sequence), `${entityId} sequence`).toBe(index + 1);
      if (index > 0) expect(row.previous_status, `${entityId} #${index + 1} chains`).toBe(chain[index - 1]?.new_status);
    });
    lengths.set(entityId, chain.length);
  }
  const outbox = await fixture.query<{ entity_id: string; n: unknown; max: unknown }>(
    `SELECT entity_id, count(*) AS n, max(sequence) AS max FROM "${fixture.schema}".outbox GROUP BY entity_id`,
  );
  for (const row of outbox) {
    expect(Number(row.n)).toBe(lengths.get(row.entity_id));
    expect(Number(row.max)).toBe(lengths.get(row.entity_id));
  }
  return lengths;
}

const HOSTILE_IDS = [
  `it's "quoted"`,
  "back\\slash\\\\",
  "$1",
  "$1::text); DROP TABLE systems; --",
  "'; DROP SCHEMA public CASCADE; --",
  "colon:and%percent::double",
  "unicode ✓ 🚀 ẞ",
  "{braces,\"comma\"}",
  "NULL",
  " leading and trailing ",
];

describe("createPostgresAdapter and migrate: argument validation (no SQL runs)", () => {
  const hostileSchemas: unknown[] = ["x; drop", "A", "a".repeat(64), "", "1abc", 'hs"; DROP SCHEMA public; --', "ümlaut", "a-b", null, 42];

  /** A client that records every statement; a valid one structurally, so only the schema can be refused. */
  function spyClient() {
    const statements: string[] = [];
    const query = (text: string) => {
      statements.push(text);
      return Promise.resolve({ rows: [] });
    };
    const exec = (text: string) => {
      statements.push(text);
      return Promise.resolve();
    };
    const client = {
      query,
      exec,
      transaction: <T>(fn: (tx: { query: typeof query; exec: typeof exec }) => Promise<T>) => fn({ query, exec }),
      listen: () => Promise.resolve(() => Promise.resolve()),
    };
    return { client, statements };
  }

  it.each(hostileSchemas.map((schema) => [schema]))("rejects schema %j before any SQL", async (schema) => {
    const { client, statements } = spyClient();
    expect(() => createPostgresAdapter({ client, schema: schema as string })).toThrow(ValidationError);
    await expect(migrate(client, { schema: schema as string })).rejects.toBeInstanceOf(ValidationError);
    try {
      createPostgresAdapter({ client, schema: schema as string });
    } catch (error) {
      expect((error as ValidationError).issues[0]?.path).toEqual(["schema"]);
    }
    expect(statements).toEqual([]);
  });

  it("accepts the longest valid name and the default", () => {
    const { client, statements } = spyClient();
    expect(() => createPostgresAdapter({ client, schema: `_${"a".repeat(62)}` })).not.toThrow();
    expect(createPostgresAdapter({ client }).store.capabilities).toEqual({ durable: false, crossProcess: false });
    expect(statements).toEqual([]);
  });

  it("rejects a client that is neither a pg Pool nor PGlite, and invalid options", async () => {
    expect(() => createPostgresAdapter({ client: {} as PostgresClient })).toThrow(ValidationError);
    expect(() => createPostgresAdapter({ client: { query: () => Promise.resolve({ rows: [] }) } as unknown as PostgresClient })).toThrow(
      ValidationError,
    );
    await expect(migrate({} as PostgresClient)).rejects.toBeInstanceOf(ValidationError);
    const { client } = spyClient();
    expect(() => createPostgresAdapter({ client, lockTimeoutMs: -1 })).toThrow(ValidationError);
    expect(() => createPostgresAdapter({ client, retry: { maxAttempts: 0 } })).toThrow(ValidationError);
  });

  it("derives lock keys from SHA-256 of schema and key, stable across runs", () => {
    expect(advisoryLockKey("healthstate", "health:e1")).toBe(advisoryLockKey("healthstate", "health:e1"));
    expect(advisoryLockKey("healthstate", "health:e1")).not.toBe(advisoryLockKey("other", "health:e1"));
    // First 8 bytes of sha256("healthstate:health:e1"), big-endian, signed.
    expect(typeof advisoryLockKey("healthstate", "health:e1")).toBe("bigint");
  });
});

for (const backend of BACKENDS) {
  describe(`postgres adapter on ${backend}`, () => {
    const fixture = usePgBackend(backend);

    describe("migrations", () => {
      it("are applied once: a second migrate applies nothing", async () => {
        const { client, schema } = fixture();
        expect(await migrate(client, { schema })).toEqual({ applied: [] });
        const recorded = await fixture().query<{ id: string; checksum: string }>(`SELECT id, checksum FROM "${schema}".migrations ORDER BY id`);
        expect(recorded).toEqual(MIGRATIONS.map((migration) => ({ id: migration.id, checksum: migrationChecksum(migration) })));
        const tables = await fixture().query<{ table_name: string }>(
          "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
          [schema],
        );
        expect(tables.map((row) => row.table_name)).toEqual([...TABLES, "migrations", "outbox_state"].sort());
      });

      it("applies every migration to a fresh schema and reports it", async () => {
        const { client } = fixture();
        const schema = schemaNameFor("fresh schema");
        fixture().defer(() => dropSchema(client, schema));
        expect(await migrate(client, { schema })).toEqual({ applied: MIGRATIONS.map((migration) => migration.id) });
        expect(await migrate(client, { schema })).toEqual({ applied: [] });
      });

      it("rejects when an applied migration's checksum changed, and applies nothing", async () => {
        const { client, schema } = fixture();
        const [first] = MIGRATIONS;
        const edited = [{ id: first!.id, sql: `${first!.sql}\n-- edited` }, { id: "0999_extra", sql: "CREATE TABLE extra (id int);" }];
        const rejection = migrate(client, { schema, migrations: edited });
        await expect(rejection).rejects.toBeInstanceOf(MigrationChecksumError);
        await expect(rejection).rejects.toThrow(/0001_initial.*checksum/u);
        expect(await fixture().query(`SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'extra'`, [schema])).toEqual([]);
        await fixture().query(`UPDATE "${schema}".migrations SET checksum = 'tampered'`);
        await expect(migrate(client, { schema })).rejects.toBeInstanceOf(MigrationChecksumError);
      });

      it("applies a new migration after the shipped ones and leaves unknown recorded ones alone", async () => {
        const { client, schema } = fixture();
        const next = [...MIGRATIONS, { id: "0999_extra", sql: "CREATE TABLE extra (id int);" }];
        expect(await migrate(client, { schema, migrations: next })).toEqual({ applied: ["0999_extra"] });
        expect(await count(fixture(), "extra")).toBe(0);
        // An older version (without 0999) still starts against the newer schema.
        expect(await migrate(client, { schema })).toEqual({ applied: [] });
      });

      it("names migrate in the error when the schema was never migrated", async () => {
        const { client } = fixture();
        const adapter = createPostgresAdapter({ client, schema: schemaNameFor("never migrated") });
        fixture().defer(() => adapter.close());
        await expect(adapter.store.getEntitiesById(["x"])).rejects.toThrow(/call migrate\(client, \{ schema: "t_never_migrated_/u);
        await expect(adapter.emitter.highWatermark()).rejects.toThrow(/migrate/u);
      });
    });

    describe("transactions", () => {
      it("run at READ COMMITTED with lock_timeout set, even when the session default differs", async () => {
        const { client, schema, backend: name } = fixture();
        let target = client;
        if (name === "postgres") {
          target = fixture().extraPool({ max: 1, options: "-c default_transaction_isolation=serializable" });
        } else {
          const f = fixture();
          await f.query("SET default_transaction_isolation TO 'serializable'");
          f.defer(async () => {
            await f.query("SET default_transaction_isolation TO 'read committed'");
          });
        }
        expect(await target.query("SHOW default_transaction_isolation").then((r) => r.rows)).toEqual([
          { default_transaction_isolation: "serializable" },
        ]);
        const adapter = createPostgresAdapter({ client: target, schema, lockTimeoutMs: 1234 });
        fixture().defer(() => adapter.close());
        const seen = await adapter.store.transaction({ lockKeys: ["health:a"] }, async (tx) => {
          const [isolation] = await tx.query<{ transaction_isolation: string }>("SHOW transaction_isolation");
          const [timeout] = await tx.query<{ lock_timeout: string }>("SHOW lock_timeout");
          return { isolation: isolation?.transaction_isolation, timeout: timeout?.lock_timeout };
        });
        expect(seen).toEqual({ isolation: "read committed", timeout: "1234ms" });
      });

      it("take one advisory lock per key plus the shared barrier, and only the exclusive barrier for huge key sets", async () => {
        const adapter = fixture().adapter({ maxLockKeys: 3 });
        const locks = (tx: PostgresStoreTransaction) =>
          tx.query<{ mode: string; n: unknown }>(
            "SELECT mode, count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() GROUP BY mode ORDER BY mode",
          );
        const few = await adapter.store.transaction({ lockKeys: ["health:b", "health:a", "health:a", "health:c"] }, locks);
        expect(few.map((row) => [row.mode, Number(row.n)])).toEqual([
          ["ExclusiveLock", 3],
          ["ShareLock", 1],
        ]);
        const many = await adapter.store.transaction({ lockKeys: ["health:a", "health:b", "health:c", "health:d"] }, locks);
        expect(many.map((row) => [row.mode, Number(row.n)])).toEqual([["ExclusiveLock", 1]]);
        const none = await adapter.store.transaction({ lockKeys: [] }, locks);
        expect(none).toEqual([]);
        // Released at COMMIT.
        expect(await fixture().query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")).toEqual([]);
      });

      it("roll back every table when fn rejects, with the same reason", async () => {
        const adapter = fixture().adapter();
        const reason = new Error("boom");
        const run: StoredRun = {
          runId: "r1",
          systemId: "s",
          checkId: "c",
          environmentId: "prod",
          status: "unhealthy",
          latencyMs: 12.5,
          timestamp: at(0).toISOString(),
          message: "down",
          recordedAt: at(1).toISOString(),
        };
        await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
        const deliveriesBefore = await count(fixture(), "deliveries");
        const attempt = adapter.store.transaction({ lockKeys: ["health:s", "health:s::prod"] }, async (tx) => {
          await tx.putSystem({ systemId: "s", environmentIds: ["prod"] });
          await tx.putAssignments([{ systemId: "s", checkId: "c", thresholds: TWITCHY, environmentIds: null, enabled: true, paused: false }]);
          await tx.putSlices([{ systemId: "s", checkId: "c", environmentId: "prod", state: { status: "unhealthy", successStreak: 0, failureStreak: 1, streakHasUnhealthy: true, recent: "u" } }]);
          await tx.putEntities([{ entityId: "s::prod", systemId: "s", environmentId: "prod", state: { status: "unhealthy", healthyChecks: 0, totalChecks: 1 }, sequence: 1 }]);
          await tx.insertRuns([run]);
          await tx.appendTransitions([{ entityId: "s::prod", systemId: "s", environmentId: "prod", sequence: 1, previousStatus: "healthy", newStatus: "unhealthy", occurredAt: run.timestamp, runId: "r1", checkId: "c" }]);
          await tx.enqueueEvents([transitionEvent("s::prod", 1)]);
          await tx.query(`INSERT INTO "${fixture().schema}".dead_letters (group_name, entity_id, sequence, event_id, event, attempts, last_error, dead_at_ms) VALUES ('g', 'x', 1, 'x#1', '{}', 1, 'e', 0)`);
          throw reason;
        });
        await expect(attempt).rejects.toBe(reason);
        for (const table of TABLES) {
          const expected = table === "delivery_groups" ? 1 : table === "deliveries" ? deliveriesBefore : 0;
          expect(await count(fixture(), table), table).toBe(expected);
        }
        expect(await adapter.emitter.highWatermark()).toBe("0");
      });

      it("commit every table together", async () => {
        const adapter = fixture().adapter();
        await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
        await adapter.store.transaction({ lockKeys: ["health:s"] }, async (tx) => {
          await tx.putSystem({ systemId: "s", environmentIds: [] });
          await tx.enqueueEvents([transitionEvent("s", 1), transitionEvent("s", 2)]);
        });
        expect(await count(fixture(), "outbox")).toBe(2);
        expect(await fixture().query(`SELECT group_name, entity_id, enqueued_through::int AS through FROM "${fixture().schema}".deliveries`)).toEqual([
          { group_name: "g", entity_id: "s", through: 2 },
        ]);
      });

      it("reject a duplicate (entityId, sequence) in the transition log and the outbox", async () => {
        const adapter = fixture().adapter();
        const transition = { entityId: "e", systemId: "e", environmentId: null, sequence: 1, previousStatus: "healthy", newStatus: "degraded", occurredAt: at(0).toISOString() } as const;
        await adapter.store.transaction({ lockKeys: ["health:e"] }, (tx) => tx.appendTransitions([transition]));
        await expect(adapter.store.transaction({ lockKeys: ["health:e"] }, (tx) => tx.appendTransitions([transition]))).rejects.toMatchObject({ code: "23505" });
        await enqueue(adapter, [transitionEvent("e", 1)]);
        await expect(enqueue(adapter, [transitionEvent("e", 1, { eventId: "other" })])).rejects.toMatchObject({ code: "23505" });
        expect(await count(fixture(), "outbox")).toBe(1);
      });

      it("normalize int8: sequences and positions beyond 2^31 and 2^53", async () => {
        const adapter = fixture().adapter();
        const big = Number.MAX_SAFE_INTEGER;
        await adapter.store.transaction({ lockKeys: ["health:e"] }, async (tx) => {
          await tx.putEntities([{ entityId: "e", systemId: "e", environmentId: null, state: null, sequence: big }]);
          await tx.putEntities([{ entityId: "f", systemId: "f", environmentId: null, state: { status: "healthy", healthyChecks: 1, totalChecks: 1 }, sequence: 3_000_000_000 }]);
        });
        const records = await adapter.store.getEntitiesById(["e", "f"]);
        expect(records.map((record) => [record.entityId, record.sequence, typeof record.sequence]).sort()).toEqual([
          ["e", big, "number"],
          ["f", 3_000_000_000, "number"],
        ]);
        await fixture().query(`ALTER TABLE "${fixture().schema}".outbox ALTER COLUMN position RESTART WITH 9007199254740993`);
        await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
        await enqueue(adapter, [transitionEvent("e", 1)]);
        expect(await adapter.emitter.highWatermark()).toBe("9007199254740993");
        expect(await adapter.emitter.pendingCount({ group: "g", upTo: "9007199254740993" })).toBe(1);
        expect(await adapter.emitter.pendingCount({ group: "g", upTo: "9007199254740992" })).toBe(0);
        const [claimed] = await adapter.emitter.claim({ group: "g", consumerId: "c", limit: 10, leaseMs: 1000, now: at(0) });
        expect(claimed).toEqual({ event: transitionEvent("e", 1), attempt: 1 });
      });

      it("keep every instant a Date can hold: years 0000-0099, before 1970, far future", async () => {
        const adapter = fixture().adapter();
        const engine = engineOver(adapter, fixture());
        await setupSystem(engine, "old", []);
        const times = ["0000-03-01T12:00:00.000Z", "0050-06-01T00:00:00.001Z", "1969-12-31T23:59:59.999Z"];
        for (const [index, timestamp] of times.entries()) {
          (await engine.recordRun({ systemId: "old", checkId: "http", status: index % 2 === 0 ? "unhealthy" : "healthy", timestamp }))._unsafeUnwrap();
        }
        const last = new Date(8.64e15); // the last instant a Date can hold
        (await engine.recordRun({ systemId: "old", checkId: "http", status: "healthy", timestamp: last }))._unsafeUnwrap();
        times.push(last.toISOString());
        const transitions = (await engine.listTransitions({ entityId: "old" }))._unsafeUnwrap();
        expect(transitions.map((t) => t.occurredAt)).toEqual(times);
        const window = (await engine.listTransitions({ entityId: "old", from: "0000-01-01T00:00:00Z", to: "1970-01-01T00:00:00Z" }))._unsafeUnwrap();
        expect(window.map((t) => t.sequence)).toEqual([1, 2, 3]);
        expect(times[3]).toBe("+275760-09-13T00:00:00.000Z");
      });

      it("store ids verbatim: a round trip of every table keeps hostile strings equal", async () => {
        const adapter = fixture().adapter();
        for (const id of HOSTILE_IDS) {
          await adapter.store.transaction({ lockKeys: [`health:${id}`] }, async (tx) => {
            await tx.putSystem({ systemId: id, environmentIds: [id, `${id}2`] });
            await tx.putAssignments([{ systemId: id, checkId: id, thresholds: TWITCHY, environmentIds: [id], enabled: true, paused: false }]);
            await tx.putSlices([
              { systemId: id, checkId: id, environmentId: id, state: { status: "healthy", successStreak: 1, failureStreak: 0, streakHasUnhealthy: false, recent: "h" } },
              { systemId: id, checkId: id, environmentId: null, state: { status: "degraded", successStreak: 0, failureStreak: 1, streakHasUnhealthy: false, recent: "d" } },
            ]);
          });
          const read = await adapter.store.transaction({ lockKeys: [] }, async (tx) => ({
            systems: await tx.getSystems([id]),
            assignments: await tx.getAssignments([id]),
            slices: await tx.getSlices([id]),
            runs: await tx.findRunIds([id]),
          }));
          expect(read.systems).toEqual([{ systemId: id, environmentIds: [id, `${id}2`] }]);
          expect(read.assignments).toEqual([{ systemId: id, checkId: id, thresholds: TWITCHY, environmentIds: [id], enabled: true, paused: false }]);
          expect(read.slices.map((slice) => [slice.environmentId, slice.state.status]).sort()).toEqual([
            [id, "healthy"],
            [null, "degraded"],
          ].sort());
          // The env-less slice and an environment literally named "" or ":" never collide.
          await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.deleteSlices([{ systemId: id, checkId: id, environmentId: null }]));
          expect((await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.getSlices([id]))).map((slice) => slice.environmentId)).toEqual([id]);
        }
        expect(await count(fixture(), "systems")).toBe(HOSTILE_IDS.length);
      });

      it("keep the env-less slice apart from environments named '' and ':'", async () => {
        const adapter = fixture().adapter();
        const state = (recent: string) => ({ status: "healthy" as const, successStreak: 1, failureStreak: 0, streakHasUnhealthy: false, recent });
        await adapter.store.transaction({ lockKeys: [] }, (tx) =>
          tx.putSlices([
            { systemId: "s", checkId: "c", environmentId: null, state: state("null") },
            { systemId: "s", checkId: "c", environmentId: "", state: state("empty") },
            { systemId: "s", checkId: "c", environmentId: ":", state: state("colon") },
          ]),
        );
        const slices = await adapter.store.transaction({ lockKeys: [] }, (tx) => tx.getSlices(["s"]));
        expect(slices.map((slice) => [slice.environmentId, slice.state.recent]).sort()).toEqual([
          ["", "empty"],
          [":", "colon"],
          [null, "null"],
        ].sort());
      });
    });

    describe("the engine over the adapter", () => {
      it("records topology and runs, answers health and transitions, and delivers events in order", async () => {
        const adapter = fixture().adapter();
        const engine = engineOver(adapter, fixture());
        await setupSystem(engine);
        const received: HealthEvent[] = [];
        engine.subscribe((event) => {
          received.push(event);
        }, { group: "log" });
        const statuses = ["unhealthy", "healthy", "degraded", "degraded", "unhealthy", "healthy"] as const;
        for (const [index, status] of statuses.entries()) {
          (await engine.recordRun({ runId: `r${index}`, systemId: "checkout", checkId: "http", environmentId: "prod", status, timestamp: at(index) }))._unsafeUnwrap();
        }
        const duplicate = (await engine.recordRun({ runId: "r0", systemId: "checkout", checkId: "http", environmentId: "prod", status: "healthy" }))._unsafeUnwrap();
        expect(duplicate).toEqual({ runId: "r0", duplicate: true, events: [] });
        expect((await engine.getHealth("checkout::prod"))._unsafeUnwrap()).toEqual({ status: "healthy", healthyChecks: 1, totalChecks: 1 });
        expect((await engine.getManyHealth(["checkout", "checkout::staging", "nope"]))._unsafeUnwrap()).toEqual({
          checkout: { status: "healthy", healthyChecks: 1, totalChecks: 1 },
          "checkout::staging": { status: "healthy", healthyChecks: 1, totalChecks: 1 },
        });
        const transitions = (await engine.listTransitions({ entityId: "checkout::prod" }))._unsafeUnwrap();
        expect(transitions.map((t) => [t.sequence, t.previousStatus, t.newStatus])).toEqual([
          [1, "healthy", "unhealthy"],
          [2, "unhealthy", "healthy"],
          [3, "healthy", "degraded"],
          [4, "degraded", "unhealthy"],
          [5, "unhealthy", "healthy"],
        ]);
        expect(transitions[0]).toEqual({
          entityId: "checkout::prod",
          systemId: "checkout",
          environmentId: "prod",
          sequence: 1,
          previousStatus: "healthy",
          newStatus: "unhealthy",
          occurredAt: at(0).toISOString(),
          runId: "r0",
          checkId: "http",
        });
        const limited = (await engine.listTransitions({ entityId: "checkout::prod", limit: 2, from: at(0), to: at(5) }))._unsafeUnwrap();
        expect(limited.map((t) => t.sequence)).toEqual([3, 4]);
        expect((await engine.inStatusSince("checkout::prod"))._unsafeUnwrap()).toBe(at(5).toISOString());
        await engine.flush();
        const prod = received.filter((event) => event.entityId === "checkout::prod");
        expect(prod.map((event) => event.sequence)).toEqual([1, 2, 3, 4, 5]);
        expect(received.filter((event) => event.entityId === "checkout").map((event) => event.sequence)).toEqual([1, 2, 3, 4, 5]);
        expect(prod[0]).toMatchObject({ type: "health.transition", eventId: "checkout::prod#1", cause: { runId: "r0", checkId: "http" } });
        expect(await adapter.emitter.pendingCount({ group: "log", upTo: await adapter.emitter.highWatermark() })).toBe(0);
        await expectGaplessChains(fixture());
      });

      it("applies topology changes: unassigning the failing check recovers, removing the system tombstones", async () => {
        const adapter = fixture().adapter();
        const engine = engineOver(adapter, fixture());
        await setupSystem(engine);
        (await engine.assignCheck({ systemId: "checkout", checkId: "db", environmentIds: ["prod"], thresholds: TWITCHY }))._unsafeUnwrap();
        (await engine.recordRun({ systemId: "checkout", checkId: "db", environmentId: "prod", status: "unhealthy" }))._unsafeUnwrap();
        expect((await engine.getHealth("checkout::prod"))._unsafeUnwrap()).toEqual({ status: "unhealthy", healthyChecks: 1, totalChecks: 2 });
        const unassigned = (await engine.unassignCheck({ systemId: "checkout", checkId: "db" }))._unsafeUnwrap();
        expect(unassigned.events.map((event) => [event.entityId, event.sequence, (event as HealthTransitionEvent).newStatus]).sort()).toEqual([
          ["checkout", 2, "healthy"],
          ["checkout::prod", 2, "healthy"],
        ]);
        expect(await count(fixture(), "slices")).toBe(0);
        const pruned = (await engine.applyTopology({ systems: [] }, { prune: true }))._unsafeUnwrap();
        expect(pruned.changed).toBe(true);
        expect((await engine.getHealth("checkout"))._unsafeUnwrap()).toBeUndefined();
        const tombstones = await adapter.store.getEntitiesById(["checkout", "checkout::prod"]);
        expect(tombstones.map((record) => [record.entityId, record.state, record.sequence]).sort()).toEqual([
          ["checkout", null, 2],
          ["checkout::prod", null, 2],
        ]);
        expect(await count(fixture(), "systems")).toBe(0);
        expect(await count(fixture(), "assignments")).toBe(0);
      });

      it("records a batch in one transaction; an invalid run in it writes nothing", async () => {
        const adapter = fixture().adapter();
        const engine = engineOver(adapter, fixture());
        await setupSystem(engine);
        const bad = await engine.recordRuns([
          { systemId: "checkout", checkId: "http", environmentId: "prod", status: "unhealthy" },
          { systemId: "checkout", checkId: "http", environmentId: "qa", status: "unhealthy" },
        ]);
        expect(bad._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
        expect(await count(fixture(), "runs")).toBe(0);
        const outcomes = (
          await engine.recordRuns(Array.from({ length: 30 }, (_, index) => ({ systemId: "checkout", checkId: "http", environmentId: index % 2 === 0 ? "prod" : "staging", status: index % 4 < 2 ? ("unhealthy" as const) : ("healthy" as const) })))
        )._unsafeUnwrap();
        expect(outcomes).toHaveLength(30);
        expect(await count(fixture(), "runs")).toBe(30);
        await expectGaplessChains(fixture());
      });

      it("redelivers after a handler failure, in order, with the same eventId, and dead-letters after maxAttempts", async () => {
        const adapter = fixture().adapter();
        const engine = engineOver(adapter, fixture(), { delivery: { pollIntervalMs: 10, maxAttempts: 3 } });
        await setupSystem(engine, "checkout", []);
        const seen: string[] = [];
        let failures = 0;
        engine.subscribe((event) => {
          seen.push(`${event.eventId}`);
          if (event.sequence === 1 && failures < 2) {
            failures += 1;
            throw new Error(`flaky ${failures}`);
          }
        }, { group: "flaky" });
        const poison: HealthEvent[] = [];
        engine.subscribe((event) => {
          poison.push(event);
          throw new Error("always\u0000fails");
        }, { group: "poison" });
        for (const status of ["unhealthy", "healthy", "unhealthy"] as const) {
          (await engine.recordRun({ systemId: "checkout", checkId: "http", status }))._unsafeUnwrap();
        }
        await engine.flush();
        expect(seen).toEqual(["checkout#1", "checkout#1", "checkout#1", "checkout#2", "checkout#3"]);
        expect(poison.map((event) => event.sequence)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3]);
        const dead = (await engine.listDeadLetters({ group: "poison" }))._unsafeUnwrap();
        expect(dead.map((letter) => [letter.event.sequence, letter.attempts, letter.lastError])).toEqual([
          [3, 3, "always\uFFFDfails"],
          [2, 3, "always\uFFFDfails"],
          [1, 3, "always\uFFFDfails"],
        ]);
        expect((await engine.listDeadLetters({ group: "flaky" }))._unsafeUnwrap()).toEqual([]);
        expect((await engine.listDeadLetters({ limit: 1 }))._unsafeUnwrap()).toHaveLength(1);
      });

      it("delivers events committed before the first subscriber; from: 'now' skips them", async () => {
        const adapter = fixture().adapter();
        const writer = engineOver(adapter, fixture());
        await setupSystem(writer, "checkout", []);
        (await writer.recordRun({ systemId: "checkout", checkId: "http", status: "unhealthy" }))._unsafeUnwrap();
        const reader = engineOver(adapter, fixture());
        const old: number[] = [];
        const fresh: number[] = [];
        reader.subscribe((event) => {
          old.push(event.sequence);
        }, { group: "late" });
        reader.subscribe((event) => {
          fresh.push(event.sequence);
        }, { group: "fresh", from: "now" });
        await reader.flush();
        (await writer.recordRun({ systemId: "checkout", checkId: "http", status: "healthy" }))._unsafeUnwrap();
        await reader.flush();
        expect(old).toEqual([1, 2]);
        expect(fresh).toEqual([2]);
      });

      it("stores hostile ids verbatim through the engine, and rejects what no database can store", async () => {
        const adapter = fixture().adapter();
        const engine = engineOver(adapter, fixture());
        const received: HealthEvent[] = [];
        engine.subscribe((event) => {
          received.push(event);
        }, { group: "g" });
        for (const id of HOSTILE_IDS) {
          (await engine.upsertSystem({ systemId: id, environmentIds: [id] }))._unsafeUnwrap();
          (await engine.assignCheck({ systemId: id, checkId: id, thresholds: TWITCHY }))._unsafeUnwrap();
          (await engine.recordRun({ runId: id, systemId: id, checkId: id, environmentId: id, status: "degraded", message: id }))._unsafeUnwrap();
          const entityId = encodeHealthEntityId({ systemId: id, environmentId: id })._unsafeUnwrap();
          expect((await engine.getHealth(entityId))._unsafeUnwrap()).toEqual({ status: "degraded", healthyChecks: 0, totalChecks: 1 });
          const [transition] = (await engine.listTransitions({ entityId }))._unsafeUnwrap();
          expect(transition).toMatchObject({ entityId, systemId: id, environmentId: id, runId: id, checkId: id });
        }
        const runs = await fixture().query<{ run_id: string; message: string }>(`SELECT run_id, message FROM "${fixture().schema}".runs`);
        expect(runs.map((row) => row.run_id).sort()).toEqual([...HOSTILE_IDS].sort());
        expect(runs.every((row) => row.run_id === row.message)).toBe(true);
        await engine.flush();
        expect(new Set(received.map((event) => event.systemId))).toEqual(new Set(HOSTILE_IDS));

        const long = "x".repeat(10_000);
        const tooLong = await engine.upsertSystem({ systemId: long, environmentIds: [] });
        expect(tooLong._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
        const nul = await engine.upsertSystem({ systemId: "nul\u0000byte", environmentIds: [] });
        expect(nul._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
        const nulMessage = await engine.recordRun({ systemId: HOSTILE_IDS[0]!, checkId: HOSTILE_IDS[0]!, environmentId: HOSTILE_IDS[0]!, status: "healthy", message: "a\u0000b" });
        expect(nulMessage._unsafeUnwrapErr()).toBeInstanceOf(ValidationError);
        // A 10 kB message is stored verbatim.
        const message = `'"\\$1; DROP TABLE runs; --${"é".repeat(10_000)}`;
        (await engine.recordRun({ runId: "long", systemId: HOSTILE_IDS[0]!, checkId: HOSTILE_IDS[0]!, environmentId: HOSTILE_IDS[0]!, status: "healthy", message }))._unsafeUnwrap();
        expect(await fixture().query(`SELECT message FROM "${fixture().schema}".runs WHERE run_id = 'long'`)).toEqual([{ message }]);
        expect(await count(fixture(), "systems")).toBe(HOSTILE_IDS.length);
      });
    });

    describe("emitter", () => {
      it("claims only each entity's head, leases it, and settles heads only", async () => {
        const adapter = fixture().adapter();
        await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
        await enqueue(adapter, [transitionEvent("a", 1), transitionEvent("a", 2), transitionEvent("b", 1)]);
        const claim = (now: Date, consumerId = "c1") => adapter.emitter.claim({ group: "g", consumerId, limit: 10, leaseMs: 1000, now });
        const first = await claim(at(0));
        expect(first.map((c) => [c.event.eventId, c.attempt])).toEqual([
          ["a#1", 1],
          ["b#1", 1],
        ]);
        expect(await claim(at(0.5), "c2")).toEqual([]);
        // Acking a#2 (not yet the head) changes nothing.
        await adapter.emitter.ack({ group: "g", eventIds: ["a#2", "unknown"] });
        expect(await adapter.emitter.pendingCount({ group: "g", upTo: await adapter.emitter.highWatermark() })).toBe(3);
        // The lease expired: redelivered, attempt 2.
        const again = await claim(at(1), "c2");
        expect(again.map((c) => [c.event.eventId, c.attempt])).toEqual([
          ["a#1", 2],
          ["b#1", 2],
        ]);
        await adapter.emitter.ack({ group: "g", eventIds: ["a#1", "a#2"] });
        await adapter.emitter.ack({ group: "g", eventIds: ["a#1"] });
        expect(await adapter.emitter.pendingCount({ group: "g", upTo: await adapter.emitter.highWatermark() })).toBe(1);
        await adapter.emitter.fail({ group: "g", eventId: "b#1", error: "later", retryAt: at(10), deadLetter: false, now: at(1) });
        expect(await claim(at(9))).toEqual([]);
        expect((await claim(at(10))).map((c) => [c.event.eventId, c.attempt])).toEqual([["b#1", 3]]);
        await adapter.emitter.fail({ group: "g", eventId: "b#1", error: "dead", retryAt: at(11), deadLetter: true, now: at(10) });
        expect(await adapter.emitter.pendingCount({ group: "g", upTo: await adapter.emitter.highWatermark() })).toBe(0);
        const [dead] = await adapter.emitter.listDeadLetters({});
        expect(dead).toEqual({ group: "g", event: transitionEvent("b", 1), attempts: 3, lastError: "dead", deadAt: at(10).toISOString() });
        await expect(adapter.emitter.claim({ group: "unknown", consumerId: "c", limit: 1, leaseMs: 1, now: at(0) })).rejects.toThrow(/registerGroup/u);
      });

      it("registers groups idempotently: the first registration decides the start", async () => {
        const adapter = fixture().adapter();
        await enqueue(adapter, [transitionEvent("a", 1)]);
        await adapter.emitter.registerGroup({ group: "now", from: "now" });
        await adapter.emitter.registerGroup({ group: "now", from: "oldest" });
        await adapter.emitter.registerGroup({ group: "old", from: "oldest" });
        await enqueue(adapter, [transitionEvent("a", 2)]);
        const upTo = await adapter.emitter.highWatermark();
        expect(await adapter.emitter.pendingCount({ group: "now", upTo })).toBe(1);
        expect(await adapter.emitter.pendingCount({ group: "old", upTo })).toBe(2);
        const claimed = await adapter.emitter.claim({ group: "now", consumerId: "c", limit: 5, leaseMs: 10, now: at(0) });
        expect(claimed.map((c) => c.event.eventId)).toEqual(["a#2"]);
      });

      it("prunes only events every group settled, and the high watermark never goes back", async () => {
        const clockAt = { value: at(0) };
        const adapter = fixture().adapter({ clock: () => clockAt.value });
        await adapter.emitter.registerGroup({ group: "g1", from: "oldest" });
        await adapter.emitter.registerGroup({ group: "g2", from: "oldest" });
        await enqueue(adapter, [transitionEvent("a", 1), transitionEvent("b", 1)]);
        clockAt.value = at(100);
        await enqueue(adapter, [transitionEvent("a", 2)]);
        const mark = await adapter.emitter.highWatermark();
        for (const group of ["g1", "g2"]) {
          const claimed = await adapter.emitter.claim({ group, consumerId: "c", limit: 10, leaseMs: 10, now: at(0) });
          await adapter.emitter.ack({ group, eventIds: claimed.filter((c) => c.event.entityId === "a").map((c) => c.event.eventId) });
        }
        // a#1 is settled by both groups; b#1 by none; a#2 is not old enough.
        expect(await adapter.emitter.prune({ olderThan: at(50), maxEvents: 100 })).toBe(1);
        expect(await count(fixture(), "outbox")).toBe(2);
        expect(await adapter.emitter.prune({ olderThan: at(50), maxEvents: 0 })).toBe(0);
        const a2 = await adapter.emitter.claim({ group: "g1", consumerId: "c", limit: 10, leaseMs: 10, now: at(1) });
        await adapter.emitter.ack({ group: "g1", eventIds: a2.map((c) => c.event.eventId) });
        expect(await adapter.emitter.prune({ olderThan: at(0), maxEvents: 0 })).toBe(0);
        const a2g2 = await adapter.emitter.claim({ group: "g2", consumerId: "c", limit: 10, leaseMs: 10, now: at(1) });
        await adapter.emitter.ack({ group: "g2", eventIds: a2g2.filter((c) => c.event.eventId === "a#2").map((c) => c.event.eventId) });
        expect(await adapter.emitter.prune({ olderThan: at(0), maxEvents: 0 })).toBe(1);
        expect(await adapter.emitter.highWatermark()).toBe(mark);
        expect((await fixture().query<{ event_id: string }>(`SELECT event_id FROM "${fixture().schema}".outbox`)).map((r) => r.event_id)).toEqual(["b#1"]);
      });

      it("wakes onAvailable listeners after a commit that enqueued events", async () => {
        const adapter = fixture().adapter();
        let woken = 0;
        const remove = adapter.emitter.onAvailable(() => {
          woken += 1;
        });
        await new Promise((resolve) => setTimeout(resolve, 50));
        const before = woken;
        await enqueue(adapter, [transitionEvent("a", 1)]);
        await expect.poll(() => woken).toBeGreaterThan(before);
        remove();
      });

      it("rejects every call after close(), and leaves the caller's client open", async () => {
        const adapter = fixture().adapter();
        adapter.emitter.onAvailable(() => undefined);
        await adapter.close();
        await adapter.close();
        await expect(adapter.store.getEntitiesById(["a"])).rejects.toBeInstanceOf(ClosedError);
        await expect(adapter.store.transaction({ lockKeys: [] }, () => Promise.resolve())).rejects.toBeInstanceOf(ClosedError);
        await expect(adapter.emitter.highWatermark()).rejects.toBeInstanceOf(ClosedError);
        expect(await fixture().query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
        const engine = engineOver(adapter, fixture());
        expect((await engine.getHealth("a"))._unsafeUnwrapErr()).toBeInstanceOf(ClosedError);
      });
    });

    describe(`capabilities on ${backend}`, () => {
      it("declares what the backend can do", () => {
        const adapter = fixture().adapter();
        const expected = backend === "postgres" ? { durable: true, crossProcess: true } : { durable: false, crossProcess: false };
        expect(adapter.store.capabilities).toEqual(expected);
        expect(adapter.emitter.capabilities).toEqual(expected);
      });
    });
  });
}

// PGlite has a single connection, so these tests exist only on the real server: they are
// registered when DATABASE_URL is set, and absent (not skipped) otherwise.
const describeMultiConnection = DATABASE_URL === undefined ? () => undefined : describe;

describeMultiConnection("postgres adapter on a real server: multi-connection (two pools = two processes)", () => {
  const fixture = usePgBackend("postgres", { migrate: false });

  it("migrates once when 5 processes migrate concurrently", async () => {
    const { schema } = fixture();
    const pools = Array.from({ length: 5 }, () => fixture().extraPool({ max: 1 }));
    const results = await Promise.all(pools.map((pool) => migrate(pool, { schema })));
    expect(results.filter((result) => result.applied.length > 0)).toEqual([{ applied: MIGRATIONS.map((m) => m.id) }]);
    expect(results.filter((result) => result.applied.length === 0)).toHaveLength(4);
    expect(await count(fixture(), "migrations")).toBe(MIGRATIONS.length);
  });

  it("keeps every entity's chain gapless when two pools (two processes) record runs on one system concurrently", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const pools = [fixture().extraPool({ max: 3 }), fixture().extraPool({ max: 3 })];
    const adapters = pools.map((pool) => createPostgresAdapter({ client: pool, schema }));
    for (const adapter of adapters) fixture().defer(() => adapter.close());
    const engines = adapters.map((adapter) => engineOver(adapter, fixture()));
    await setupSystem(engines[0]!, "shared", ["prod", "staging"]);
    const statuses = ["healthy", "degraded", "unhealthy"] as const;
    const perEngine = 40;
    await Promise.all(
      engines.map((engine, e) =>
        Promise.all(
          Array.from({ length: perEngine }, (_, i) =>
            engine
              .recordRun({
                runId: `e${e}-r${i}`,
                systemId: "shared",
                checkId: "http",
                environmentId: i % 3 === 0 ? "staging" : "prod",
                status: statuses[(i * 7 + e) % 3]!,
              })
              .then((result) => result._unsafeUnwrap()),
          ),
        ),
      ),
    );
    expect(await count(fixture(), "runs")).toBe(perEngine * 2);
    const lengths = await expectGaplessChains(fixture());
    expect(lengths.get("shared::prod")).toBeGreaterThan(5);
    // G2: the stored entity states equal the chain's last status.
    const records = await adapters[0]!.store.getEntitiesById(["shared", "shared::prod", "shared::staging"]);
    const last = await fixture().query<{ entity_id: string; new_status: string }>(
      `SELECT DISTINCT ON (entity_id) entity_id, new_status FROM "${schema}".transitions ORDER BY entity_id, sequence DESC`,
    );
    for (const record of records) {
      expect(record.state?.status).toBe(last.find((row) => row.entity_id === record.entityId)?.new_status ?? "healthy");
      expect(record.sequence).toBe(lengths.get(record.entityId) ?? 0);
    }
  });

  it("never leases one event to two consumers claiming concurrently from two pools", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const pools = [fixture().extraPool({ max: 4 }), fixture().extraPool({ max: 4 })];
    const adapters = pools.map((pool) => createPostgresAdapter({ client: pool, schema }));
    for (const adapter of adapters) fixture().defer(() => adapter.close());
    await adapters[0]!.emitter.registerGroup({ group: "g", from: "oldest" });
    const events = Array.from({ length: 60 }, (_, i) => transitionEvent(`e${i}`, 1));
    await enqueue(adapters[0]!, events);
    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, i) => adapters[i % 2]!.emitter.claim({ group: "g", consumerId: `c${i}`, limit: 10, leaseMs: 60_000, now: at(0) })),
    );
    const ids = claims.flat().map((claimed) => claimed.event.eventId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("wakes a listener of one pool when another pool commits (LISTEN/NOTIFY), and releases the LISTEN connection on close", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const listenerPool = fixture().extraPool({ max: 2 });
    const listener = createPostgresAdapter({ client: listenerPool, schema });
    const writer = createPostgresAdapter({ client: fixture().extraPool({ max: 1 }), schema });
    fixture().defer(() => writer.close());
    let woken = 0;
    listener.emitter.onAvailable(() => {
      woken += 1;
    });
    await expect.poll(() => listenerPool.totalCount).toBe(1);
    await expect.poll(() => woken).toBeGreaterThan(0); // the (re)connect hint
    const before = woken;
    await enqueue(writer, [transitionEvent("a", 1)]);
    await expect.poll(() => woken).toBeGreaterThan(before);
    await listener.close();
    expect(listenerPool.totalCount - listenerPool.idleCount).toBe(0);
  });

  it("does not LISTEN on a pool of one connection (it would starve every query) and still works by polling", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const single = fixture().extraPool({ max: 1 });
    const adapter = createPostgresAdapter({ client: single, schema });
    fixture().defer(() => adapter.close());
    const engine = engineOver(adapter, fixture());
    await setupSystem(engine, "solo", []);
    const received: number[] = [];
    engine.subscribe((event) => {
      received.push(event.sequence);
    }, { group: "g" });
    (await engine.recordRun({ systemId: "solo", checkId: "http", status: "unhealthy" }))._unsafeUnwrap();
    await engine.flush();
    expect(received).toEqual([1]);
    expect(await fixture().query("SELECT 1 FROM pg_stat_activity WHERE query = $1", [`LISTEN "${schema}_outbox"`])).toEqual([]);
  });

  it("reconnects the LISTEN connection after its backend is terminated", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const listenerPool = fixture().extraPool({ max: 2 });
    const errors: unknown[] = [];
    const listener = createPostgresAdapter({ client: listenerPool, schema, onBackgroundError: (error) => errors.push(error) });
    fixture().defer(() => listener.close());
    const writer = createPostgresAdapter({ client: fixture().extraPool({ max: 1 }), schema });
    fixture().defer(() => writer.close());
    let woken = 0;
    listener.emitter.onAvailable(() => {
      woken += 1;
    });
    const channel = `${schema}_outbox`;
    const listening = async () =>
      (await fixture().query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = $1 AND datname = current_database()", [`LISTEN "${channel}"`])).map((row) => row.pid);
    await expect.poll(listening).toHaveLength(1);
    const [pid] = await listening();
    await fixture().query("SELECT pg_terminate_backend($1)", [pid]);
    await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThan(0);
    await expect.poll(async () => (await listening()).filter((p) => p !== pid), { timeout: 5000 }).toHaveLength(1);
    const before = woken;
    await enqueue(writer, [transitionEvent("a", 1)]);
    await expect.poll(() => woken, { timeout: 5000 }).toBeGreaterThan(before);
  });

  it("retries on lock timeout (55P03) and gives up with a StoreError after bounded attempts, writing nothing", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const adapter = fixture().adapter();
    const engine = engineOver(adapter, fixture());
    await setupSystem(engine, "locked", []);
    const timid = createPostgresAdapter({ client: fixture().client, schema, lockTimeoutMs: 50, retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 } });
    fixture().defer(() => timid.close());
    const timidEngine = engineOver(timid, fixture());
    const holder = await fixture().extraPool({ max: 1 }).connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1::bigint)", [advisoryLockKey(schema, "health:locked").toString()]);
      const started = Date.now();
      const result = await timidEngine.recordRun({ systemId: "locked", checkId: "http", status: "unhealthy" });
      const error = result._unsafeUnwrapErr();
      expect(error).toBeInstanceOf(StoreError);
      expect(error.message).toMatch(/3 times.*lock timeout/u);
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      expect(await count(fixture(), "runs")).toBe(0);
      // The same call succeeds once the holder lets go during the retries.
      const pending = timidEngine.recordRun({ runId: "late", systemId: "locked", checkId: "http", status: "unhealthy" });
      await new Promise((resolve) => setTimeout(resolve, 60));
      await holder.query("COMMIT");
      expect((await pending)._unsafeUnwrap().duplicate).toBe(false);
      expect(await count(fixture(), "runs")).toBe(1);
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      holder.release();
    }
  });

  it("retries a deadlock victim (40P01) and then commits", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const adapter = fixture().adapter({ retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 } });
    const other = await fixture().extraPool({ max: 1 }).connect();
    let attempts = 0;
    let otherDone: Promise<unknown> = Promise.resolve();
    try {
      await fixture().query(`INSERT INTO "${schema}".systems VALUES ('x', '[]'), ('y', '[]')`);
      await other.query("BEGIN");
      await other.query(`UPDATE "${schema}".systems SET environment_ids = '["other"]' WHERE system_id = 'x'`);
      await adapter.store.transaction({ lockKeys: ["health:y"] }, async (tx) => {
        attempts += 1;
        await tx.putSystem({ systemId: "y", environmentIds: ["ours"] });
        if (attempts === 1) {
          // We wait for x first, so our backend's deadlock check fires first and we are the victim.
          otherDone = new Promise((resolve) => setTimeout(resolve, 100)).then(async () => {
            await other.query(`UPDATE "${schema}".systems SET environment_ids = '["other"]' WHERE system_id = 'y'`);
            await other.query("ROLLBACK");
          });
        }
        await tx.putSystem({ systemId: "x", environmentIds: ["ours"] });
      });
      await otherDone;
      expect(attempts).toBe(2);
      expect(await fixture().query(`SELECT system_id, environment_ids FROM "${schema}".systems ORDER BY system_id`)).toEqual([
        { system_id: "x", environment_ids: ["ours"] },
        { system_id: "y", environment_ids: ["ours"] },
      ]);
    } finally {
      await otherDone.catch(() => undefined);
      await other.query("ROLLBACK").catch(() => undefined);
      other.release();
    }
  });
});
