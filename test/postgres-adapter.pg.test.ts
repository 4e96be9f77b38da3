import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ClosedError,
  StoreError,
  ValidationError,
  addRuns,
  createHealthEngine,
  emptyBucket,
  encodeHealthEntityId,
  mergeBuckets,
  replay,
  sketchCount,
  type AssignmentRecord,
  type BucketGranularity,
  type BucketKey,
  type EntityRecord,
  type HealthAdapter,
  type HealthEngine,
  type HealthEvent,
  type HealthEngineOptions,
  type HealthStatus,
  type HealthTransitionEvent,
  type HealthTransitionRecord,
  type MaintenanceRecord,
  type RetentionOutcome,
  type RunBucket,
  type RunInput,
  type StoreTransaction,
  type StoredRun,
  type Thresholds,
  type TopologyDoc,
} from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";
import {
  MIGRATIONS,
  MigrationChecksumError,
  advisoryLockKey,
  createPostgresAdapter,
  migrate,
  migrationChecksum,
  type PGliteLike,
  type PostgresClient,
  type PostgresStoreTransaction,
} from "healthstate/adapters/postgres";
import { EAGER_WRITE_ROWS } from "../adapters/postgres/postgres-store";
import { BACKENDS, DATABASE_URL, dropSchema, enqueue, interceptedPool, schemaNameFor, transitionEvent, usePgBackend, type PgFixture } from "./helpers/pg";

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
  "buckets",
  "bucket_deltas",
  "maintenance",
  "assignments",
  "slices",
  "entities",
  "runs",
  "transitions",
  "outbox",
  "deliveries",
  "delivery_groups",
  "dead_letters",
  "state_versions",
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


/**
 * Checks every entity's chain in the schema: its events (outbox) carry sequences 1..n without gap;
 * its transitions (a subset of those sequences: flapping events take sequences too) are each a
 * `health.transition` event, and each starts from the status the previous one ended in. Returns
 * the number of events of each entity (its current sequence).
 */
async function expectGaplessChains(fixture: PgFixture): Promise<Map<string, number>> {
  const events = await fixture.query<{ entity_id: string; sequence: unknown; type: string }>(
    `SELECT entity_id, sequence, event->>'type' AS type FROM "${fixture.schema}".outbox ORDER BY entity_id, sequence`,
  );
  const typeOf = new Map<string, string>();
  const lengths = new Map<string, number>();
  for (const row of events) {
    const expected = (lengths.get(row.entity_id) ?? 0) + 1;
    expect(Number(row.sequence), `${row.entity_id} event sequence`).toBe(expected);
    lengths.set(row.entity_id, expected);
    typeOf.set(`${row.entity_id}#${expected}`, row.type);
  }
  const transitions = await fixture.query<{ entity_id: string; sequence: unknown; previous_status: string; new_status: string }>(
    `SELECT entity_id, sequence, previous_status, new_status FROM "${fixture.schema}".transitions ORDER BY entity_id, sequence`,
  );
  const lastStatus = new Map<string, string>();
  for (const row of transitions) {
    expect(typeOf.get(`${row.entity_id}#${Number(row.sequence)}`), `${row.entity_id} #${Number(row.sequence)} is a transition event`).toBe(
      "health.transition",
    );
    const previous = lastStatus.get(row.entity_id);
    if (previous !== undefined) expect(row.previous_status, `${row.entity_id} #${Number(row.sequence)} chains`).toBe(previous);
    lastStatus.set(row.entity_id, row.new_status);
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
    expect(() => createPostgresAdapter({ client, preparedStatements: "yes" as unknown as boolean })).toThrow(
      expect.objectContaining({ issues: [{ path: ["preparedStatements"], message: "must be a boolean" }] }),
    );
  });

  it("derives lock keys from SHA-256 of schema and key, stable across runs", () => {
    expect(advisoryLockKey("healthstate", "health:e1")).toBe(advisoryLockKey("healthstate", "health:e1"));
    expect(advisoryLockKey("healthstate", "health:e1")).not.toBe(advisoryLockKey("other", "health:e1"));
    // First 8 bytes of sha256("healthstate:health:e1"), big-endian, signed.
    expect(typeof advisoryLockKey("healthstate", "health:e1")).toBe("bigint");
  });
});

// ---------------------------------------------------------------------------------------------
// Migration 0002: entity flap state, buckets, maintenance windows, retention. The memory adapter
// is the reference: its semantics (filters, order, prune rules) are asserted here literally and,
// in the differential property, compared result for result.
// ---------------------------------------------------------------------------------------------

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const B0 = Date.parse("2026-01-01T00:00:00.000Z");
const bat = (ms: number): Date => new Date(B0 + ms);
const biso = (ms: number): string => bat(ms).toISOString();

/** The 0001 migration as released: its text must never change (applied schemas record this checksum). */
const RELEASED_0001_CHECKSUM = "cf755b1ff186a7aa3a938a7370716a4746d8874219a0426340e30964f6bd653b";
const RELEASED_0002_CHECKSUM = "ebd9b7dd4fab79ac646bf70bd6ddf86d023afb14bd7792de414e30451faafccf";

type RunSample = { readonly status: HealthStatus; readonly latencyMs: number | null };

const bucketKeyOf = (systemId: string, checkId: string, environmentId: string | null, granularity: BucketGranularity, startMs: number): BucketKey => ({
  systemId,
  checkId,
  environmentId,
  granularity,
  start: biso(startMs),
});
const bucketOf = (key: BucketKey, runs: readonly RunSample[] = [{ status: "healthy", latencyMs: 10 }]): RunBucket => addRuns(emptyBucket(key), runs);
const slot = (b: Pick<RunBucket, "systemId" | "checkId" | "environmentId" | "start">): string =>
  `${b.systemId}/${b.checkId}/${b.environmentId ?? "-"}@${(Date.parse(b.start) - B0) / HOUR}h`;
const windowOf = (maintenanceId: string, systemId: string, startMs: number, endMs: number, extra: Partial<MaintenanceRecord> = {}): MaintenanceRecord => ({
  maintenanceId,
  entityId: systemId,
  systemId,
  environmentId: null,
  start: biso(startMs),
  end: biso(endMs),
  reason: null,
  startedEntities: null,
  ended: false,
  createdAt: biso(0),
  ...extra,
});
const transitionOf = (entityId: string, sequence: number, occurredAtMs = sequence * 1000): HealthTransitionRecord => ({
  entityId,
  systemId: entityId,
  environmentId: null,
  sequence,
  previousStatus: sequence % 2 === 1 ? "healthy" : "unhealthy",
  newStatus: sequence % 2 === 1 ? "unhealthy" : "healthy",
  occurredAt: biso(occurredAtMs),
});
const storedRunOf = (runId: string, systemId: string, timestampMs: number): StoredRun => ({
  runId,
  systemId,
  checkId: "c1",
  environmentId: null,
  status: "healthy",
  latencyMs: null,
  timestamp: biso(timestampMs),
  message: null,
  recordedAt: biso(timestampMs),
});
const entityOf = (systemId: string, environmentId: string | null, sequence = 0): EntityRecord => ({
  entityId: environmentId === null ? systemId : `${systemId}::${environmentId}`,
  systemId,
  environmentId,
  state: { status: "healthy", healthyChecks: 1, totalChecks: 1 },
  sequence,
});

function inTx<T>(adapter: HealthAdapter, fn: (tx: StoreTransaction) => Promise<T>): Promise<T> {
  return adapter.store.transaction({ lockKeys: [] }, fn);
}

/** An engine with a settable clock and deterministic maintenance ids, closed after the test. */
function clockedEngine(adapter: HealthAdapter, fixture: PgFixture | undefined, startMs: number, extras: Partial<HealthEngineOptions> = {}) {
  let now = startMs;
  let ids = 0;
  const engine = createHealthEngine({
    store: adapter.store,
    lock: adapter.lock,
    emitter: adapter.emitter,
    timers: false,
    clock: () => new Date(now),
    generateId: () => `id-${(ids += 1)}`,
    retry: { initialDelayMs: 1, maxDelayMs: 5 },
    delivery: { pollIntervalMs: 10 },
    onBackgroundError: () => undefined,
    ...extras,
  });
  fixture?.defer(() => engine.close());
  return { engine, setNow: (ms: number) => (now = ms) };
}

const HISTORY_TOPOLOGY: TopologyDoc = {
  systems: [{ systemId: "api", environmentIds: ["prod", "staging"], checks: [{ checkId: "http", thresholds: TWITCHY }] }],
};

/**
 * Availability, latency and retention through the engine (SPEC §9): returns everything the engine
 * answered, so two adapters can be compared answer for answer.
 */
async function historyScenario(adapter: HealthAdapter, fixture: PgFixture | undefined): Promise<unknown[]> {
  const T = Date.parse("2026-11-01T00:00:00Z");
  const { engine, setNow } = clockedEngine(adapter, fixture, T, {
    flapping: { enabled: false },
    retention: { rawRetentionDays: 7, hourlyRetentionDays: 30, dailyRetentionDays: 365 },
  });
  const answers: unknown[] = [];
  (await engine.applyTopology(HISTORY_TOPOLOGY))._unsafeUnwrap();
  const runs: RunInput[] = [];
  for (let hour = 0; hour < 48; hour += 1) {
    for (let k = 0; k < 3; k += 1) {
      const down = hour >= 10 && hour < 13;
      runs.push({
        systemId: "api",
        checkId: "http",
        environmentId: k === 1 ? "staging" : "prod",
        status: down && k !== 1 ? "unhealthy" : k === 2 && hour % 5 === 0 ? "degraded" : "healthy",
        timestamp: new Date(T + hour * HOUR + k * 60_000).toISOString(),
        ...(k === 2 && hour % 7 === 0 ? {} : { latencyMs: 5 + ((hour * 7919 + k * 104_729) % 1000) / 3 }),
      });
    }
  }
  // In chunks, as several calls (each adds into the same hourly buckets).
  for (let index = 0; index < runs.length; index += 25) (await engine.recordRuns(runs.slice(index, index + 25)))._unsafeUnwrap();
  const window = { from: new Date(T).toISOString(), to: new Date(T + 2 * DAY).toISOString() };
  const ask = async () => {
    for (const entityId of ["api", "api::prod", "api::staging"]) {
      answers.push(entityId, (await engine.availability({ entityId, ...window }))._unsafeUnwrap(), (await engine.latency({ entityId, ...window }))._unsafeUnwrap());
    }
  };
  setNow(T + 2 * DAY + HOUR);
  await ask();
  setNow(T + 31 * DAY + 12 * HOUR);
  answers.push((await engine.runRetention())._unsafeUnwrap());
  await ask();
  answers.push((await engine.runRetention())._unsafeUnwrap());
  answers.push((await engine.runRetention({ now: new Date(T + 400 * DAY).toISOString() }))._unsafeUnwrap());
  answers.push((await engine.listTransitions({ entityId: "api::prod" }))._unsafeUnwrap());
  answers.push((await engine.inStatusSince("api::prod"))._unsafeUnwrap());
  return answers;
}

const FLAP_TOPOLOGY: TopologyDoc = {
  systems: [
    {
      systemId: "web",
      environmentIds: ["prod", "staging"],
      checks: [
        { checkId: "http", thresholds: { mode: "consecutive", healthy: { minSuccessCount: 1 }, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 2 } } },
      ],
    },
  ],
};
const FLAP_T0 = Date.parse("2026-11-30T10:00:00Z");
const minuteIso = (minute: number) => new Date(FLAP_T0 + minute * 60_000).toISOString();

/** Flapping and maintenance through the engine (SPEC §10, §11): the replay scenario, tick before each run. */
async function flapScenario(adapter: HealthAdapter, fixture: PgFixture | undefined): Promise<{ events: HealthEvent[]; delivered: HealthEvent[]; expected: HealthEvent[] }> {
  const statuses: HealthStatus[] = ["degraded", "healthy", "degraded", "healthy", "unhealthy", "healthy", "degraded", "degraded", "healthy", "unhealthy", "unhealthy", "healthy"];
  const run = (minute: number, status: HealthStatus, environmentId = "prod"): RunInput => ({
    runId: `${environmentId}-${minute}`,
    systemId: "web",
    checkId: "http",
    environmentId,
    status,
    timestamp: minuteIso(minute),
  });
  const runs = statuses.flatMap((status, index) => [run(index * 2, status), run(index * 2 + 1, index % 3 === 0 ? "degraded" : "healthy", "staging")]);
  const maintenance = [
    { entityId: "web", start: minuteIso(4), end: minuteIso(9) },
    { entityId: "web::prod", start: minuteIso(15), end: minuteIso(30) },
  ];
  const expected = replay({ topology: FLAP_TOPOLOGY, runs, options: { now: minuteIso(0), maintenance, until: minuteIso(40) } }).transitions;
  const { engine, setNow } = clockedEngine(adapter, fixture, FLAP_T0);
  const delivered: HealthEvent[] = [];
  engine.subscribe((event) => {
    delivered.push(event);
  }, { group: "all" });
  (await engine.applyTopology(FLAP_TOPOLOGY))._unsafeUnwrap();
  for (const window of maintenance) (await engine.addMaintenance(window))._unsafeUnwrap();
  const events: HealthEvent[] = [];
  for (const input of runs) {
    events.push(...(await engine.tick(input.timestamp))._unsafeUnwrap());
    events.push(...(await engine.recordRun(input))._unsafeUnwrap().events);
  }
  setNow(FLAP_T0 + 40 * 60_000);
  events.push(...(await engine.tick())._unsafeUnwrap());
  await engine.flush();
  return { events, delivered, expected };
}

const withoutMaintenanceId = (events: readonly HealthEvent[]) => events.map((event) => ("maintenanceId" in event ? { ...event, maintenanceId: "" } : event));

/**
 * A client that records the text of every statement it runs (PGlite or a pg Pool), for round-trip
 * counts, and in `prepared` the texts a pg connection was asked to keep prepared (sent with a name).
 */
function recordingClient(client: PostgresClient): { client: PostgresClient; statements: string[]; prepared: string[] } {
  const statements: string[] = [];
  const prepared: string[] = [];
  const record = (text: string, name?: string) => {
    statements.push(text.replace(/\s+/gu, " ").trim());
    if (name !== undefined) prepared.push(text.replace(/\s+/gu, " ").trim());
  };
  if ("listen" in client) {
    const db = client;
    const recorded: PGliteLike = {
      query: (text, params) => {
        record(text);
        return db.query(text, params);
      },
      exec: (text) => {
        record(text);
        return db.exec(text);
      },
      transaction: (fn) =>
        db.transaction((tx) =>
          fn({
            query: (text, params) => {
              record(text);
              return tx.query(text, params);
            },
            exec: (text) => {
              record(text);
              return tx.exec(text);
            },
          }),
        ),
      listen: (channel, callback) => db.listen(channel, callback),
      dataDir: db.dataDir,
    };
    return { client: recorded, statements, prepared };
  }
  const recorded = interceptedPool(
    client,
    (statement, _values, send) => {
      if (typeof statement === "string") record(statement);
      else record(statement.text, statement.name);
      return send();
    },
    { max: 1, onPoolQuery: (text) => record(text) },
  );
  return { client: recorded, statements, prepared };
}

function describeHistoryAndRetention(fixture: () => PgFixture): void {
  describe("migration 0002: entity flap state", () => {
    it("applies on top of 0001, keeps existing rows (their flap state absent), and is idempotent", async () => {
      const { client } = fixture();
      expect(migrationChecksum(MIGRATIONS[0]!)).toBe(RELEASED_0001_CHECKSUM);
      const schema = schemaNameFor("on top of 0001");
      fixture().defer(() => dropSchema(client, schema));
      expect(await migrate(client, { schema, migrations: MIGRATIONS.slice(0, 1) })).toEqual({ applied: ["0001_initial"] });
      await fixture().query(
        `INSERT INTO "${schema}".entities (entity_id, system_id, environment_id, state, sequence)
         VALUES ('old', 'old', NULL, '{"status":"degraded","healthyChecks":0,"totalChecks":1}', 4)`,
      );
      // An operator may build the retention indexes beforehand (CONCURRENTLY, on a large schema): 0002 skips them.
      await fixture().query(`CREATE INDEX runs_run_at_ms_idx ON "${schema}".runs (run_at_ms)`);
      expect(await migrate(client, { schema, migrations: MIGRATIONS.slice(0, 2) })).toEqual({ applied: ["0002_history_maintenance"] });
      expect(await migrate(client, { schema, migrations: MIGRATIONS.slice(0, 2) })).toEqual({ applied: [] });
      const adapter = createPostgresAdapter({ client, schema });
      fixture().defer(() => adapter.close());
      const [old] = await adapter.store.getEntitiesById(["old"]);
      expect(old).toEqual({ entityId: "old", systemId: "old", environmentId: null, state: { status: "degraded", healthyChecks: 0, totalChecks: 1 }, sequence: 4 });
      expect(old !== undefined && ("history" in old || "flappingFrom" in old)).toBe(false);
      const indexes = await fixture().query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname", [schema]);
      expect(indexes.map((row) => row.indexname)).toEqual(
        expect.arrayContaining([
          "buckets_pkey",
          "buckets_granularity_start_ms_idx",
          "maintenance_pkey",
          "maintenance_system_id_idx",
          "maintenance_open_idx",
          "runs_run_at_ms_idx",
          "transitions_occurred_at_ms_idx",
        ]),
      );
    });

    it("round-trips history and flappingFrom exactly, absent fields staying absent", async () => {
      const adapter = fixture().adapter();
      const flapping: EntityRecord = { ...entityOf("s1", null, 7), history: "hhuhuhuhuhuhuhuhuhuhu", flappingFrom: "healthy" };
      const calm: EntityRecord = { ...entityOf("s1", "prod", 2), history: "hu", flappingFrom: null };
      const empty: EntityRecord = { ...entityOf("s1", "staging", 1), history: "" };
      const bare = entityOf("s1", "dev");
      const byId = (records: EntityRecord[]) => [...records].sort((a, b) => (a.entityId < b.entityId ? -1 : 1));
      await inTx(adapter, async (tx) => {
        await tx.putEntities([flapping, calm, empty, bare]);
        expect(byId(await tx.getEntities(["s1"]))).toEqual(byId([flapping, calm, empty, bare]));
      });
      const stored = byId(await inTx(adapter, (tx) => tx.getEntities(["s1"])));
      expect(stored).toEqual(byId([flapping, calm, empty, bare]));
      const storedBare = stored.find((record) => record.entityId === "s1::dev");
      expect(storedBare !== undefined && ("history" in storedBare || "flappingFrom" in storedBare)).toBe(false);
      expect("flappingFrom" in (stored.find((record) => record.entityId === "s1::staging") ?? {})).toBe(false);
      expect(byId(await adapter.store.getEntitiesById(["s1", "s1::prod"]))).toEqual([flapping, calm]);
      expect(await fixture().query(`SELECT entity_id, history, flapping_from FROM "${fixture().schema}".entities ORDER BY entity_id`)).toEqual([
        { entity_id: "s1", history: "hhuhuhuhuhuhuhuhuhuhu", flapping_from: "healthy" },
        { entity_id: "s1::dev", history: null, flapping_from: null },
        { entity_id: "s1::prod", history: "hu", flapping_from: "" },
        { entity_id: "s1::staging", history: "", flapping_from: null },
      ]);
      // Replacing a record replaces its flap state too (an absent field clears it).
      await inTx(adapter, (tx) => tx.putEntities([{ ...flapping, history: "huhuhuhuhuhuhuhuhuhuu", flappingFrom: null }, entityOf("s1", "prod", 3)]));
      const after = byId(await adapter.store.getEntitiesById(["s1", "s1::prod"]));
      expect(after).toEqual([{ ...flapping, history: "huhuhuhuhuhuhuhuhuhuu", flappingFrom: null }, entityOf("s1", "prod", 3)]);
    });
  });

  describe("migration 0006: an entity's transitions by time", () => {
    it("applies on top of 0005 over existing transitions (skipping an index built beforehand), and a from/to read is served by it", async () => {
      const { client } = fixture();
      const schema = schemaNameFor("on top of 0005");
      fixture().defer(() => dropSchema(client, schema));
      await migrate(client, { schema, migrations: MIGRATIONS.slice(0, 5) });
      // 20 entities × 100 transitions a minute apart, then 0006.
      await fixture().query(
        `INSERT INTO "${schema}".transitions (entity_id, sequence, system_id, environment_id, previous_status, new_status, occurred_at_ms)
         SELECT 'e' || (i % 20), i / 20 + 1, 's', NULL,
                CASE WHEN (i / 20) % 2 = 0 THEN 'healthy' ELSE 'degraded' END,
                CASE WHEN (i / 20) % 2 = 0 THEN 'degraded' ELSE 'healthy' END,
                1764460800000 + (i / 20) * 60000
           FROM generate_series(0, 1999) AS i`,
      );
      expect(await migrate(client, { schema })).toEqual({ applied: ["0006_transitions_by_entity_time"] });
      expect(await migrate(client, { schema })).toEqual({ applied: [] });
      const [index] = await fixture().query<{ indexdef: string }>(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'transitions_entity_id_occurred_at_ms_idx'",
        [schema],
      );
      expect(index?.indexdef).toMatch(/ON \S*transitions USING btree \(entity_id, occurred_at_ms\)$/u);
      // The adapter reads one entity's log from a time on through it (rows of that entity only).
      const adapter = createPostgresAdapter({ client, schema, listen: false });
      fixture().defer(() => adapter.close());
      const from = new Date(1764460800000 + 97 * 60000);
      const read = await adapter.store.listTransitions({ entityId: "e3", from });
      expect(read.map((transition) => transition.sequence)).toEqual([98, 99, 100]);
      await fixture().query(`ANALYZE "${schema}".transitions`);
      // Half of one entity's log: neither the primary key (the whole log) nor the time index (half
      // of every entity's) reads only those rows.
      const half = 1764460800000 + 50 * 60000;
      const plan = await fixture().query<{ "QUERY PLAN": string }>(
        `EXPLAIN SELECT sequence FROM "${schema}".transitions WHERE entity_id = 'e3' AND occurred_at_ms >= ${half} ORDER BY sequence`,
      );
      expect(plan.map((row) => row["QUERY PLAN"]).join("\n")).toContain("transitions_entity_id_occurred_at_ms_idx");

      // Built beforehand (CONCURRENTLY on a large schema; plainly here, where nothing waits): the migration skips it.
      const prebuilt = schemaNameFor("0006 prebuilt");
      fixture().defer(() => dropSchema(client, prebuilt));
      await migrate(client, { schema: prebuilt, migrations: MIGRATIONS.slice(0, 5) });
      await fixture().query(`CREATE INDEX transitions_entity_id_occurred_at_ms_idx ON "${prebuilt}".transitions (entity_id, occurred_at_ms)`);
      const oidOf = async (name: string) =>
        (await fixture().query<{ oid: string; valid: boolean }>(
          `SELECT i.indexrelid::text AS oid, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE c.relname = 'transitions_entity_id_occurred_at_ms_idx' AND c.relnamespace = $1::regnamespace`,
          [name],
        ))[0];
      const built = await oidOf(prebuilt);
      expect(await migrate(client, { schema: prebuilt })).toEqual({ applied: ["0006_transitions_by_entity_time"] });
      expect(await oidOf(prebuilt), "a valid index built beforehand is kept").toEqual(built);

      // A CONCURRENTLY build that failed leaves an invalid index (marked so here, as the server
      // would): the migration drops it and builds a valid one.
      const failed = schemaNameFor("0006 failed prebuild");
      fixture().defer(() => dropSchema(client, failed));
      await migrate(client, { schema: failed, migrations: MIGRATIONS.slice(0, 5) });
      await fixture().query(`CREATE INDEX transitions_entity_id_occurred_at_ms_idx ON "${failed}".transitions (entity_id, occurred_at_ms)`);
      await fixture().query(
        `UPDATE pg_index SET indisvalid = false WHERE indexrelid = (SELECT oid FROM pg_class WHERE relname = 'transitions_entity_id_occurred_at_ms_idx' AND relnamespace = $1::regnamespace)`,
        [failed],
      );
      expect(await oidOf(failed)).toMatchObject({ valid: false });
      // A temporary index of the same name (on PGlite, in the migrating session itself) is left alone.
      await fixture().query("CREATE TEMP TABLE IF NOT EXISTS scratch_0006 (entity_id text, occurred_at_ms bigint)");
      await fixture().query("CREATE INDEX IF NOT EXISTS transitions_entity_id_occurred_at_ms_idx ON scratch_0006 (entity_id, occurred_at_ms)");
      const temporary = async () =>
        (await fixture().query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'transitions_entity_id_occurred_at_ms_idx' AND n.nspname LIKE 'pg_temp%'",
        ))[0]?.n;
      const temporaryBefore = await temporary();
      expect(temporaryBefore).toBeGreaterThan(0);
      expect(await migrate(client, { schema: failed })).toEqual({ applied: ["0006_transitions_by_entity_time"] });
      expect(await oidOf(failed)).toMatchObject({ valid: true });
      expect(await temporary(), "the temporary index is not the one dropped").toBe(temporaryBefore);
    });
  });

  describe("migration 0003: per-assignment flap override", () => {
    it("applies on top of 0002 without touching the released migrations; existing assignments have no override", async () => {
      const { client } = fixture();
      expect(MIGRATIONS.slice(0, 2).map(migrationChecksum)).toEqual([RELEASED_0001_CHECKSUM, RELEASED_0002_CHECKSUM]);
      const schema = schemaNameFor("on top of 0002");
      fixture().defer(() => dropSchema(client, schema));
      await migrate(client, { schema, migrations: MIGRATIONS.slice(0, 2) });
      await fixture().query(
        `INSERT INTO "${schema}".assignments (system_id, check_id, thresholds, environment_ids, enabled, paused)
         VALUES ('old', 'c', '${JSON.stringify(TWITCHY)}', NULL, true, false)`,
      );
      expect(await migrate(client, { schema })).toEqual({
        applied: ["0003_assignment_flapping", "0004_state_versions", "0005_bucket_deltas", "0006_transitions_by_entity_time"],
      });
      expect(await migrate(client, { schema })).toEqual({ applied: [] });
      const adapter = createPostgresAdapter({ client, schema, listen: false });
      fixture().defer(() => adapter.close());
      const [old] = await inTx(adapter, (tx) => tx.getAssignments(["old"]));
      expect(old).toEqual({ systemId: "old", checkId: "c", thresholds: TWITCHY, environmentIds: null, enabled: true, paused: false });
      expect(old !== undefined && "flapping" in old).toBe(false);
    });

    it("round-trips overrides exactly, an absent one staying absent, and replacing a record replaces its override", async () => {
      const adapter = fixture().adapter();
      const base = { systemId: "f", thresholds: TWITCHY, environmentIds: null, enabled: true, paused: false };
      const sensitive: AssignmentRecord = { ...base, checkId: "a", flapping: { high: 12.5 } };
      const off: AssignmentRecord = { ...base, checkId: "b", flapping: { enabled: false, low: 0, high: 100 } };
      const plain: AssignmentRecord = { ...base, checkId: "c" };
      const byCheck = (records: AssignmentRecord[]) => [...records].sort((x, y) => (x.checkId < y.checkId ? -1 : 1));
      await inTx(adapter, (tx) => tx.putAssignments([sensitive, off, plain]));
      const stored = byCheck(await inTx(adapter, (tx) => tx.getAssignments(["f"])));
      expect(stored).toEqual([sensitive, off, plain]);
      expect("flapping" in (stored[2] ?? {})).toBe(false);
      expect(await fixture().query(`SELECT check_id, flapping FROM "${fixture().schema}".assignments WHERE system_id = 'f' ORDER BY check_id`)).toEqual([
        { check_id: "a", flapping: { high: 12.5 } },
        { check_id: "b", flapping: { enabled: false, low: 0, high: 100 } },
        { check_id: "c", flapping: null },
      ]);
      await inTx(adapter, (tx) => tx.putAssignments([{ ...base, checkId: "a" }, { ...plain, flapping: { low: 1 } }]));
      expect(byCheck(await inTx(adapter, (tx) => tx.getAssignments(["f"])))).toEqual([{ ...base, checkId: "a" }, off, { ...plain, flapping: { low: 1 } }]);
    });
  });

  describe("workspace loads", () => {
    it("sends loads called together as one statement, keeps call order with writes, and rejects every load of a failed statement", async () => {
      const { client, statements } = recordingClient(fixture().client);
      const adapter = createPostgresAdapter({ client, schema: fixture().schema, listen: false });
      fixture().defer(() => adapter.close());
      const slice = { status: "healthy" as const, successStreak: 1, failureStreak: 0, streakHasUnhealthy: false, recent: "h" };
      await inTx(adapter, async (tx) => {
        await tx.putSystem({ systemId: "s", environmentIds: ["prod"] });
        await tx.putSystem({ systemId: "t", environmentIds: [] });
        await tx.putAssignments([{ systemId: "s", checkId: "c", thresholds: TWITCHY, environmentIds: null, enabled: true, paused: false }]);
        await tx.putSlices([{ systemId: "s", checkId: "c", environmentId: "prod", state: slice }, { systemId: "t", checkId: "c", environmentId: null, state: slice }]);
        await tx.putEntities([{ ...entityOf("s", "prod", Number.MAX_SAFE_INTEGER), history: "hu", flappingFrom: null }, entityOf("t", null, 2)]);
        await tx.putMaintenance([windowOf("m", "s", 0, HOUR, { startedEntities: ["s::prod"], reason: "r" })]);
      });
      const loadAll = (tx: StoreTransaction) =>
        Promise.all([tx.getSystems(["s", "t", "x", "s"]), tx.getAssignments(["s", "t"]), tx.getSlices(["s", "t"]), tx.getEntities(["t", "s"]), tx.getMaintenance(["s", "t"])]);
      const sorted = (loaded: Awaited<ReturnType<typeof loadAll>>) => loaded.map((rows) => [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)));
      const apart = sorted(
        await inTx(adapter, async (tx) => [
          await tx.getSystems(["s", "t", "x", "s"]),
          await tx.getAssignments(["s", "t"]),
          await tx.getSlices(["s", "t"]),
          await tx.getEntities(["t", "s"]),
          await tx.getMaintenance(["s", "t"]),
        ]),
      );
      statements.length = 0;
      const together = sorted(await inTx(adapter, loadAll));
      expect(together).toEqual(apart);
      expect(together[3]?.find((entity) => "entityId" in entity && entity.entityId === "s::prod")).toMatchObject({ sequence: Number.MAX_SAFE_INTEGER, history: "hu", flappingFrom: null });
      expect(statements.filter((text) => text.startsWith("SELECT"))).toHaveLength(1);
      expect(await inTx(adapter, (tx) => Promise.all([tx.getSystems([]), tx.getEntities([])]))).toEqual([[], []]);

      await inTx(adapter, async (tx) => {
        // Not awaited one by one: a load called before a write does not see it, one called after does.
        const before = tx.getSystems(["s"]);
        const write = tx.putSystem({ systemId: "s", environmentIds: ["prod", "qa"] });
        const after = Promise.all([tx.getSystems(["s"]), tx.getMaintenance(["s"])]);
        await write;
        expect((await before).map((system) => system.environmentIds)).toEqual([["prod"]]);
        expect((await after)[0].map((system) => system.environmentIds)).toEqual([["prod", "qa"]]);
      });

      // The maintenance subquery fails, so the one statement fails: every load sent with it rejects.
      let outcomes: PromiseSettledResult<unknown>[] = [];
      const failed = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
        await tx.query(`DROP TABLE "${fixture().schema}".maintenance`);
        outcomes = await Promise.allSettled<unknown>([tx.getSystems(["s"]), tx.getEntities(["s"]), tx.getMaintenance(["s"])]);
        throw new Error("roll back");
      });
      await expect(failed).rejects.toThrow("roll back");
      expect(outcomes.map((outcome) => outcome.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect(outcomes.map((outcome) => (outcome.status === "rejected" ? (outcome.reason as { code?: string }).code : undefined))).toEqual(["42P01", "42P01", "42P01"]);
      expect(await adapter.store.listMaintenance({})).toHaveLength(1);
    });
  });

  describe("round trips", () => {
    /** An engine over an adapter whose statements are recorded, with the checkout system set up. */
    const recordedEngine = async () => {
      const { client, statements, prepared } = recordingClient(fixture().client);
      const adapter = createPostgresAdapter({ client, schema: fixture().schema, listen: false });
      fixture().defer(() => adapter.close());
      const engine = engineOver(adapter, fixture());
      await setupSystem(engine);
      statements.length = 0;
      prepared.length = 0;
      return { engine, statements, prepared };
    };

    it("records a run in four statements (BEGIN with settings and locks, one read, one write, COMMIT) and a transition in one more", async () => {
      const { engine, statements } = await recordedEngine();
      expect((await engine.recordRun({ runId: "r1", systemId: "checkout", checkId: "http", environmentId: "prod", status: "healthy" }))._unsafeUnwrap().events).toEqual([]);
      const opening = fixture().backend !== "pglite" ? /^BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL/u : /^SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCAL/u;
      const shape = (texts: string[]) =>
        texts.map((text) =>
          opening.test(text) && text.includes("pg_advisory_xact_lock_shared(") && text.includes("pg_advisory_xact_lock(k) FROM unnest(")
            ? "begin+locks"
            : text.startsWith("SELECT (SELECT coalesce(json_agg(r)")
              ? "reads"
              : text.startsWith("WITH w0 AS (INSERT INTO")
                ? "writes"
                : text,
        );
      // PGlite's own transaction sends BEGIN and COMMIT itself (not through the recorded client).
      const commit = fixture().backend !== "pglite" ? ["COMMIT"] : [];
      // The system's pending bucket deltas were counted with its state version (in the reads):
      // no statement of its own to know whether a fold is due.
      expect(shape(statements)).toEqual(["begin+locks", "reads", "writes", ...commit]);
      statements.length = 0;
      const outcome = (await engine.recordRun({ runId: "r2", systemId: "checkout", checkId: "http", environmentId: "prod", status: "unhealthy" }))._unsafeUnwrap();
      expect(outcome.events.map((event) => event.type)).toEqual(["health.transition", "health.transition"]);
      // The outbox insert has a WITH and a side effect of its own: one statement more.
      expect(shape(statements).map((text) => (text.startsWith("WITH x AS (") ? "outbox" : text))).toEqual(["begin+locks", "reads", "writes", "outbox", ...commit]);
      expect((await engine.getHealth("checkout::prod"))._unsafeUnwrap()?.status).toBe("unhealthy");
      expect(await count(fixture(), "outbox")).toBe(2);
    });

    it("reads no slice or entity rows for the first run after a topology change (the engine kept what it wrote), and reads them with stateCacheSystems: 0", async () => {
      const readsRows = (texts: string[]) => texts.some((text) => text.startsWith("SELECT") && /\.(slices|entities)\b/u.test(text));
      const { engine, statements } = await recordedEngine();
      (await engine.recordRun({ runId: "r1", systemId: "checkout", checkId: "http", environmentId: "prod", status: "unhealthy" }))._unsafeUnwrap();
      expect(statements.length).toBeGreaterThan(0);
      expect(readsRows(statements)).toBe(false);

      const { client, statements: uncached } = recordingClient(fixture().client);
      const adapter = createPostgresAdapter({ client, schema: fixture().schema, listen: false });
      fixture().defer(() => adapter.close());
      const keepsNothing = engineOver(adapter, fixture(), { stateCacheSystems: 0 });
      // A topology change that writes (a second check, healthy so far): kept by a default engine, not by this one.
      expect((await keepsNothing.assignCheck({ systemId: "checkout", checkId: "db", thresholds: TWITCHY }))._unsafeUnwrap().changed).toBe(true);
      uncached.length = 0;
      const outcome = (await keepsNothing.recordRun({ runId: "r2", systemId: "checkout", checkId: "http", environmentId: "prod", status: "unhealthy" }))._unsafeUnwrap();
      expect(readsRows(uncached)).toBe(true);
      // The state it read is the one the first engine committed: still unhealthy, no new transition.
      expect(outcome.events).toEqual([]);
      expect((await keepsNothing.getHealth("checkout::prod"))._unsafeUnwrap()?.status).toBe("unhealthy");
    });

    it("keeps only writes whose plan cannot depend on the tables prepared (pg Pools), none with preparedStatements: false", async () => {
      const { engine, statements, prepared } = await recordedEngine();
      expect((await engine.recordRun({ runId: "r1", systemId: "checkout", checkId: "http", environmentId: "prod", status: "unhealthy" }))._unsafeUnwrap().events).toHaveLength(2);
      (await engine.unassignCheck({ systemId: "checkout", checkId: "http" }))._unsafeUnwrap();
      const deletes = statements.filter((text) => text.includes("DELETE FROM"));
      if (fixture().backend === "pglite") {
        // PGlite runs every statement unnamed: nothing is kept prepared, nothing is planned generic.
        expect(prepared).toEqual([]);
        expect(statements.some((text) => text.includes("plan_cache_mode"))).toBe(false);
        return;
      }
      // The run's write statement (five upserts) and the outbox insert, each sent with a name.
      expect(prepared.filter((text) => text.startsWith("WITH w0 AS (INSERT INTO")).length).toBeGreaterThanOrEqual(1);
      expect(prepared.filter((text) => text.startsWith("WITH x AS (")).length).toBe(1);
      // Never a read (its plan depends on the tables' sizes when it was made) nor a DELETE.
      expect(deletes.length).toBeGreaterThan(0);
      expect(prepared.filter((text) => text.startsWith("SELECT") || text.includes("DELETE "))).toEqual([]);
      expect(statements.filter((text) => text.startsWith("BEGIN")).every((text) => text.includes("SET LOCAL plan_cache_mode = force_generic_plan;"))).toBe(true);

      const { client, statements: unpreparedStatements, prepared: none } = recordingClient(fixture().client);
      const adapter = createPostgresAdapter({ client, schema: fixture().schema, listen: false, preparedStatements: false });
      fixture().defer(() => adapter.close());
      const other = engineOver(adapter, fixture());
      (await other.assignCheck({ systemId: "checkout", checkId: "http" }))._unsafeUnwrap();
      (await other.recordRun({ runId: "r2", systemId: "checkout", checkId: "http", environmentId: "prod", status: "healthy" }))._unsafeUnwrap();
      expect(unpreparedStatements.some((text) => text.startsWith("WITH w0 AS (INSERT INTO"))).toBe(true);
      expect(none).toEqual([]);
      expect(unpreparedStatements.some((text) => text.includes("plan_cache_mode"))).toBe(false);
    });

    it("gives a fresh version to every system a writer that does not stamp versions changes (triggers), on the tables of the state", async () => {
      // The contract itself (a commit stamps its own version, nothing else changes one) is the kit's
      // "state versions" suite; here: writes outside the adapter.
      const adapter = fixture().adapter();
      const versions = async () =>
        Object.fromEntries((await inTx(adapter, (tx) => tx.getStateVersions?.(["s", "t", "u", "v"]) ?? Promise.resolve([]))).map((row) => [row.systemId, row.version]));
      const slice = { status: "healthy" as const, successStreak: 1, failureStreak: 0, streakHasUnhealthy: false, recent: "h" };
      const stamped = await inTx(adapter, async (tx) => {
        await tx.putSystem({ systemId: "s", environmentIds: [] });
        await tx.putSlices([{ systemId: "t", checkId: "c", environmentId: null, state: slice }]);
        await tx.putEntities([entityOf("s", null, 1)]);
        await tx.deleteAssignments([{ systemId: "u", checkId: "c" }]);
        return tx.stateVersion;
      });
      expect(await versions()).toEqual({ s: stamped, t: stamped, u: stamped });
      // A writer that does not stamp versions (SQL of its own, an adapter from before 0004) still
      // changes them, through the schema's triggers, on every table of the state.
      const q = `"${fixture().schema}"`;
      await fixture().query(`UPDATE ${q}.entities SET sequence = sequence WHERE system_id = 's'`);
      await fixture().query(`DELETE FROM ${q}.slices WHERE system_id = 't'`);
      await fixture().query(`INSERT INTO ${q}.systems (system_id, environment_ids) VALUES ('u', '[]')`);
      await fixture().query(`INSERT INTO ${q}.assignments (system_id, check_id, thresholds, enabled, paused) VALUES ('v', 'c', '{}', true, false)`);
      const after = await versions();
      expect(after.s).not.toBe(stamped);
      expect(after.t).not.toBe(stamped);
      expect(after.u).not.toBe(stamped);
      expect(after.v).toEqual(expect.any(String));
      expect(new Set([after.s, after.t, after.u, after.v]).size).toBe(4);
    });

    it("an engine reads only the versions of a system it wrote last, and the rows again once another process wrote it", async () => {
      const { engine, statements } = await recordedEngine();
      const record = async (target: HealthEngine, runId: string, status: "healthy" | "unhealthy") =>
        (await target.recordRun({ runId, systemId: "checkout", checkId: "http", environmentId: "prod", status }))._unsafeUnwrap().events;
      const readsSlices = () => statements.some((text) => text.startsWith("SELECT") && text.includes(".slices WHERE"));
      await record(engine, "r1", "unhealthy");
      statements.length = 0;
      await record(engine, "r2", "healthy");
      expect(readsSlices()).toBe(false);
      // Another process (its own adapter) changes the same entity.
      const other = engineOver(fixture().adapter(), fixture());
      const theirs = await record(other, "r3", "unhealthy");
      expect(theirs.map((event) => event.sequence)).toEqual([3, 3]);
      statements.length = 0;
      const after = await record(engine, "r4", "healthy");
      expect(readsSlices()).toBe(true);
      expect(after.map((event) => [event.entityId, event.sequence, event.type === "health.transition" ? event.previousStatus : null])).toEqual([
        ["checkout", 4, "unhealthy"],
        ["checkout::prod", 4, "unhealthy"],
      ]);
      // A write outside the adapter (here: a rollup's sequence moved on by hand) is seen too.
      await fixture().query(`UPDATE "${fixture().schema}".entities SET sequence = 10 WHERE entity_id = 'checkout'`);
      statements.length = 0;
      const moved = await record(engine, "r5", "unhealthy");
      expect(readsSlices()).toBe(true);
      expect(moved.map((event) => [event.entityId, event.sequence])).toEqual([
        ["checkout", 11],
        ["checkout::prod", 5],
      ]);
    });

    it("defers writes in call order: a later write to the same table wins, a read sees them, and a failing write fails the transaction at COMMIT, keeping nothing", async () => {
      const adapter = fixture().adapter();
      const slice = (status: "healthy" | "unhealthy") => ({ status, successStreak: 1, failureStreak: 0, streakHasUnhealthy: false, recent: status[0] as string });
      const seen = await inTx(adapter, async (tx) => {
        await tx.putSlices([{ systemId: "s", checkId: "c", environmentId: null, state: slice("healthy") }]);
        await tx.deleteSlices([{ systemId: "s", checkId: "c", environmentId: null }]);
        await tx.putSystem({ systemId: "s", environmentIds: [] });
        await tx.putSlices([{ systemId: "s", checkId: "c", environmentId: null, state: slice("unhealthy") }]);
        return (await tx.getSlices(["s"])).map((row) => row.state.status);
      });
      expect(seen).toEqual(["unhealthy"]);
      expect(await fixture().query(`SELECT state->>'status' AS status FROM "${fixture().schema}".slices`)).toEqual([{ status: "unhealthy" }]);

      const transition = { entityId: "s", systemId: "s", environmentId: null, sequence: 1, previousStatus: "healthy", newStatus: "unhealthy", occurredAt: at(0).toISOString() } as const;
      const failing = adapter.store.transaction({ lockKeys: ["health:s"] }, async (tx) => {
        await tx.putSystem({ systemId: "t", environmentIds: [] });
        await tx.appendTransitions([transition]);
        // Resolves: the write is deferred. The duplicate (entity, sequence) fails when it is sent.
        await tx.appendTransitions([transition]);
        return "done";
      });
      await expect(failing).rejects.toMatchObject({ code: "23505" });
      expect(await count(fixture(), "transitions")).toBe(0);

      // A failing first statement of several: none of the later ones runs outside the transaction.
      const run = (runId: string): StoredRun => ({ runId, systemId: "s", checkId: "c", environmentId: null, status: "healthy", latencyMs: null, timestamp: at(0).toISOString(), message: null, recordedAt: at(0).toISOString() });
      await inTx(adapter, (tx) => tx.insertRuns([run("r0")]));
      const several = inTx(adapter, async (tx) => {
        await tx.insertRuns([run("r0")]);
        await tx.insertRuns([run("r1")]);
        await tx.insertRuns([run("r2")]);
        await tx.putSystem({ systemId: "z", environmentIds: [] });
      });
      await expect(several).rejects.toMatchObject({ code: "23505" });
      // And a read after a failed write reports the write's error, not "transaction aborted".
      const readAfter = inTx(adapter, async (tx) => {
        await tx.insertRuns([run("r0")]);
        return tx.getSystems(["s"]);
      });
      await expect(readAfter).rejects.toMatchObject({ code: "23505" });
      const listAfter = inTx(adapter, async (tx) => {
        await tx.insertRuns([run("r0")]);
        return tx.listTransitions({ entityId: "s" });
      });
      await expect(listAfter).rejects.toMatchObject({ code: "23505" });
      expect(await fixture().query(`SELECT run_id FROM "${fixture().schema}".runs ORDER BY run_id`)).toEqual([{ run_id: "r0" }]);
      expect(await fixture().query(`SELECT system_id FROM "${fixture().schema}".systems ORDER BY system_id`)).toEqual([{ system_id: "s" }]);
    });
    it("sends a big batch's runs and buckets at once, as one statement, before the state is written (pg Pools); a failure there still keeps nothing", async () => {
      const { engine, statements } = await recordedEngine();
      const size = EAGER_WRITE_ROWS + 44;
      const runs = (prefix: string, status: "healthy" | "unhealthy") =>
        Array.from({ length: size }, (_, index) => ({
          runId: `${prefix}${index}`,
          systemId: "checkout",
          checkId: "http",
          environmentId: index % 2 === 0 ? "prod" : "staging",
          status,
          latencyMs: index,
          timestamp: at(index * 60),
        }));
      const outcomes = (await engine.recordRuns(runs("a", "unhealthy")))._unsafeUnwrap();
      expect(outcomes.flatMap((outcome) => outcome.events).map((event) => event.entityId)).toEqual(["checkout", "checkout::prod", "checkout::staging"]);
      const writes = statements.filter((text) => /^(WITH w0 AS \()?INSERT INTO /u.test(text));
      const tables = (text: string) => [...text.matchAll(/INSERT INTO "[^"]+"\.(\w+)/gu)].map((match) => match[1]);
      if (fixture().backend === "pglite") {
        // One connection in this thread: nothing to overlap, every write in one statement as before.
        expect(writes.map(tables)).toEqual([["state_versions", "runs", "bucket_deltas", "slices", "entities", "transitions"]]);
      } else {
        // Runs and bucket deltas together and first (sent while the kernel ran); the state's few
        // rows wait for COMMIT, in one statement.
        expect(writes.map(tables)).toEqual([["runs", "bucket_deltas"], ["state_versions", "slices", "entities", "transitions"]]);
      }
      // One delta per bucket (a slice's hour): 10 here, fewer than foldBucketDeltasAfter: no fold,
      // and no look either (the pending count was read with the state versions).
      expect(statements.filter((text) => text.startsWith("WITH due AS ("))).toHaveLength(0);
      expect(await count(fixture(), "bucket_deltas")).toBe(10);
      expect(await count(fixture(), "runs")).toBe(size);
      const bucketed = `SELECT (SELECT coalesce(sum(runs), 0) FROM "${fixture().schema}".buckets) + (SELECT sum(runs) FROM "${fixture().schema}".bucket_deltas) AS n`;
      expect(await fixture().query(`SELECT (${bucketed})::int AS n`)).toEqual([{ n: size }]);

      // A failure in the statement sent early fails the whole unit of work: nothing of it is kept.
      await fixture().query(
        `CREATE FUNCTION "${fixture().schema}".refuse_run() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.run_id = 'b7' THEN RAISE EXCEPTION 'refused' USING ERRCODE = '23514'; END IF; RETURN NEW; END $$`,
      );
      await fixture().query(`CREATE TRIGGER refuse_run BEFORE INSERT ON "${fixture().schema}".runs FOR EACH ROW EXECUTE FUNCTION "${fixture().schema}".refuse_run()`);
      const before = await fixture().query(`SELECT entity_id, sequence, state FROM "${fixture().schema}".entities ORDER BY entity_id`);
      const failed = await engine.recordRuns(runs("b", "healthy"));
      // The early statement's own error, not "current transaction is aborted" (25P02).
      expect(failed._unsafeUnwrapErr()).toMatchObject({ name: "StoreError", cause: { code: "23514", message: "refused" } });
      expect(await count(fixture(), "runs")).toBe(size);
      expect(await fixture().query(`SELECT (${bucketed})::int AS n`)).toEqual([{ n: size }]);
      expect(await fixture().query(`SELECT entity_id, sequence, state FROM "${fixture().schema}".entities ORDER BY entity_id`)).toEqual(before);
      expect(await count(fixture(), "outbox")).toBe(3);
      expect((await engine.getHealth("checkout"))._unsafeUnwrap()?.status).toBe("unhealthy");
    });
    it("after a big write sent early fails, a read reports that write's error; calls left running after the callback settled reach nothing", async () => {
      const adapter = fixture().adapter();
      const run = (runId: string): StoredRun => ({ runId, systemId: "s", checkId: "c", environmentId: null, status: "healthy", latencyMs: null, timestamp: at(0).toISOString(), message: null, recordedAt: at(0).toISOString() });
      const many = (prefix: string) => Array.from({ length: EAGER_WRITE_ROWS + 10 }, (_, index) => run(`${prefix}${index}`));
      await inTx(adapter, (tx) => tx.insertRuns([run("x5")]));
      // The big insert (with a duplicate id in it) goes before the read; the read fails because
      // the transaction is aborted, and says why: the insert's unique violation.
      const readAfter = inTx(adapter, async (tx) => {
        await tx.insertRuns(many("x"));
        return tx.findRunIds(["x1"]);
      });
      await expect(readAfter).rejects.toMatchObject({ code: "23505" });
      expect(await count(fixture(), "runs")).toBe(1);

      // A sibling of a rejected Promise.all keeps running after the callback settled: its big
      // write, small write and read all reject, and nothing of them is written, now or later.
      let late: Promise<PromiseSettledResult<unknown>[]> | undefined;
      const failing = adapter.store.transaction({ lockKeys: [] }, async (tx) => {
        const sibling = (async () => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          late = Promise.allSettled([tx.insertRuns(many("late")), tx.putSystem({ systemId: "late", environmentIds: [] }), tx.getSystems(["s"])]);
        })();
        await Promise.all([Promise.reject(new Error("sibling failed")), sibling]);
      });
      await expect(failing).rejects.toThrow("sibling failed");
      await new Promise((resolve) => setTimeout(resolve, 60));
      const outcomes = await (late as Promise<PromiseSettledResult<unknown>[]>);
      expect(outcomes.map((outcome) => outcome.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect(outcomes.map((outcome) => (outcome.status === "rejected" ? String(outcome.reason) : ""))).toEqual(Array(3).fill(expect.stringContaining("this transaction has ended")));
      // The connection went back to the pool clean: the next transaction writes only its own rows.
      await inTx(adapter, (tx) => tx.insertRuns([run("next")]));
      expect(await fixture().query(`SELECT run_id FROM "${fixture().schema}".runs ORDER BY run_id`)).toEqual([{ run_id: "next" }, { run_id: "x5" }]);
      expect(await count(fixture(), "systems")).toBe(0);
    });

    it("keeps call order for calls not awaited one by one: a read called right after enqueueEvents sees the events", async () => {
      const adapter = fixture().adapter();
      const seen = await inTx(adapter, async (tx) => {
        const enqueued = tx.enqueueEvents([transitionEvent("s", 1)]);
        const read = (tx as PostgresStoreTransaction).query<{ n: unknown }>(`SELECT count(*) AS n FROM "${fixture().schema}".outbox`);
        await enqueued;
        return Number((await read)[0]?.n);
      });
      expect(seen).toBe(1);
    });
  });

  describe("buckets", () => {
    it.each([
      { name: "folded at every write (in SQL)", foldBucketDeltasAfter: 1 },
      { name: "pending as deltas (merged when read)", foldBucketDeltasAfter: 100 },
    ])("adds into the stored bucket, $name: counts and sums add, min/max skip NULLs, sketch bins add key by key", async ({ foldBucketDeltasAfter }) => {
      const adapter = fixture().adapter({ foldBucketDeltasAfter });
      const key = bucketKeyOf("s", "c", null, "hour", 0);
      const deltas = [
        bucketOf(key, [{ status: "healthy", latencyMs: null }, { status: "degraded", latencyMs: null }]),
        bucketOf(key, [{ status: "unhealthy", latencyMs: 12.5 }, { status: "healthy", latencyMs: 0 }, { status: "healthy", latencyMs: 1e-9 }]),
        // The same instant spelled differently is the same bucket.
        { ...bucketOf(key, [{ status: "healthy", latencyMs: 3.25 }, { status: "healthy", latencyMs: 12.4 }, { status: "degraded", latencyMs: 0.1 + 0.2 }]), start: "2026-01-01T00:00:00Z" },
        bucketOf(key, [{ status: "unhealthy", latencyMs: null }]),
        bucketOf(key, Array.from({ length: 50 }, (_, index) => ({ status: "healthy" as const, latencyMs: 1 + index * 37.3 }))),
      ];
      expect(deltas[0]?.latencyMin).toBeNull();
      const expected: RunBucket[] = [];
      for (const delta of deltas) {
        await inTx(adapter, (tx) => tx.addToBuckets([delta]));
        expected.push(delta);
        const [stored] = await adapter.store.queryBuckets({ systemId: "s", granularity: "hour", from: bat(0), to: bat(HOUR) });
        expect(stored).toEqual(mergeBuckets(key, expected));
      }
      const [stored] = await adapter.store.queryBuckets({ systemId: "s", granularity: "hour", from: bat(0), to: bat(HOUR) });
      expect(stored?.runs).toBe(59);
      expect(stored?.sketch.zero).toBe(2);
      expect(Object.values(stored?.sketch.bins ?? {}).every((count) => Number.isInteger(count))).toBe(true);
      expect(sketchCount(stored!.sketch)).toBe(stored?.latencyCount);
      const raw = await fixture().query<{ sketch_bins: unknown; latency_min: unknown }>(`SELECT sketch_bins, latency_min FROM "${fixture().schema}".buckets`);
      if (foldBucketDeltasAfter === 1) {
        expect(await count(fixture(), "bucket_deltas")).toBe(0);
        expect(raw).toHaveLength(1);
        expect(raw[0]?.latency_min).toBe(0);
        expect(Object.values(raw[0]?.sketch_bins as Record<string, unknown>).every((count) => typeof count === "number")).toBe(true);
      } else {
        expect(raw).toEqual([]);
        expect(await count(fixture(), "bucket_deltas")).toBe(deltas.length);
      }
    });

    it("folds a system's pending deltas once a writer finds foldBucketDeltasAfter of them pending, into one bucket row each: every read the same before and after", async () => {
      const adapter = fixture().adapter({ foldBucketDeltasAfter: 5 });
      const keys = [
        bucketKeyOf("s1", "c", null, "hour", 0),
        bucketKeyOf("s1", "c", "prod", "hour", 0),
        bucketKeyOf("s1", "c", "prod", "hour", HOUR),
        bucketKeyOf("s1", "d", "", "hour", 0),
      ];
      const other = bucketKeyOf("s2", "c", null, "hour", 0);
      const statuses: readonly HealthStatus[] = ["healthy", "degraded", "unhealthy"];
      const sample = (index: number): RunSample[] => [{ status: statuses[index % 3] ?? "healthy", latencyMs: index % 4 === 0 ? null : index * 7.5 }];
      const added = new Map<string, RunBucket[]>();
      const snapshot = async (systemId: string) => [
        ...(await adapter.store.queryBuckets({ systemId, granularity: "hour", from: bat(0), to: bat(DAY) })),
        ...(await adapter.store.queryBuckets({ systemId, environmentId: "prod", granularity: "hour", from: bat(0), to: bat(DAY) })),
      ];
      let index = 0;
      // One addition per call. The adapter looks on its first append of a system (1 pending: no
      // fold), then after every fifth: s1's 6th and 11th appends find 6 and 5 pending and fold them.
      for (const round of [0, 1, 2]) {
        for (const key of [...keys, ...(round === 0 ? [other] : [])]) {
          index += 1;
          const delta = bucketOf(key, sample(index));
          await inTx(adapter, (tx) => tx.addToBuckets([delta]));
          added.set(slot(key), [...(added.get(slot(key)) ?? []), delta]);
        }
      }
      const expectedOf = (key: BucketKey) => mergeBuckets(key, added.get(slot(key)) ?? []);
      expect(await snapshot("s1")).toEqual([
        ...[keys[0]!, keys[1]!, keys[3]!, keys[2]!].map(expectedOf),
        ...[keys[1]!, keys[2]!].map(expectedOf),
      ]);
      expect(await snapshot("s2")).toEqual([expectedOf(other)]);
      // s1: the 12th is pending. s2's one is pending.
      const pending = await fixture().query<{ system_id: string; n: number }>(
        `SELECT system_id, count(*)::int AS n FROM "${fixture().schema}".bucket_deltas GROUP BY system_id ORDER BY system_id`,
      );
      expect(pending).toEqual([{ system_id: "s1", n: 1 }, { system_id: "s2", n: 1 }]);
      expect(await count(fixture(), "buckets")).toBe(4);
      // Retention's read folds the systems it lists first: the hours it rolls and deletes are whole.
      const listed = await inTx(adapter, (tx) => tx.listBucketsBefore({ systemIds: ["s1", "s2"], granularity: "hour", before: bat(DAY), limit: 100 }));
      expect(listed).toEqual([keys[0]!, keys[1]!, keys[3]!, other, keys[2]!].map(expectedOf));
      expect(await count(fixture(), "bucket_deltas")).toBe(0);
      expect(await snapshot("s1")).toEqual([...[keys[0]!, keys[1]!, keys[3]!, keys[2]!].map(expectedOf), ...[keys[1]!, keys[2]!].map(expectedOf)]);
      // Deleting an hour deletes its pending deltas too.
      const late = bucketOf(keys[0]!, sample(1));
      await inTx(adapter, (tx) => tx.addToBuckets([late]));
      await inTx(adapter, (tx) => tx.deleteBuckets([keys[0]!]));
      expect((await adapter.store.queryBuckets({ systemId: "s1", granularity: "hour", from: bat(0), to: bat(1) })).map(slot)).toEqual([slot(keys[1]!), slot(keys[3]!)]);
      expect(await count(fixture(), "bucket_deltas")).toBe(0);
      // A system whose only buckets are pending deltas has buckets all the same.
      await inTx(adapter, (tx) => tx.addToBuckets([bucketOf(bucketKeyOf("s3", "c", null, "hour", 2 * HOUR))]));
      expect(await adapter.store.listSystemsWithBucketsBefore({ granularity: "hour", before: bat(DAY) })).toEqual(["s1", "s2", "s3"]);
      expect(await adapter.store.listSystemsWithBucketsBefore({ granularity: "hour", before: bat(2 * HOUR) })).toEqual(["s1", "s2"]);
      expect(await adapter.store.listSystemsWithBucketsBefore({ granularity: "day", before: bat(DAY) })).toEqual([]);
    });

    it.each([
      { how: "looking on its first append", readsVersions: false },
      { how: "counting them with the state versions, as an engine reads them first", readsVersions: true },
    ])("folds deltas appended by many short-lived writers (a few rows each, one adapter each), $how: whichever finds enough pending folds them", async ({ readsVersions }) => {
      const key = bucketKeyOf("s", "c", "prod", "hour", 0);
      const added: RunBucket[] = [];
      const pendingCounts: number[] = [];
      for (let job = 0; job < 12; job += 1) {
        // A job: a fresh adapter (a fresh process), one transaction, two deltas of the system.
        const adapter = fixture().adapter({ foldBucketDeltasAfter: 5 });
        const deltas = [bucketOf(key, [{ status: "healthy", latencyMs: job }]), bucketOf({ ...key, start: biso(HOUR) })];
        await inTx(adapter, async (tx) => {
          if (readsVersions) expect(await tx.getStateVersions?.(["s"])).toEqual([]);
          await tx.addToBuckets(deltas);
        });
        added.push(deltas[0]!);
        pendingCounts.push(await count(fixture(), "bucket_deltas"));
      }

      // Each job finds what the earlier ones left: 2, 4, then 6 ≥ 5 folds, and so on.
      expect(pendingCounts).toEqual([2, 4, 0, 2, 4, 0, 2, 4, 0, 2, 4, 0]);
      const [stored] = await fixture().adapter().store.queryBuckets({ systemId: "s", granularity: "hour", from: bat(0), to: bat(1) });
      expect(stored).toEqual(mergeBuckets(key, added));
    });

    it("folds at most 32 due systems per transaction, those with the most pending first; the others at their next look", async () => {
      const adapter = fixture().adapter({ foldBucketDeltasAfter: 2 });
      const systems = Array.from({ length: 40 }, (_, index) => `s${String(index).padStart(2, "0")}`);
      const append = (hours: number, checksOf: (index: number) => readonly string[]) =>
        inTx(adapter, async (tx) => {
          expect(await tx.getStateVersions?.(systems)).toEqual([]);
          await tx.addToBuckets(systems.flatMap((systemId, index) => checksOf(index).map((checkId) => bucketOf(bucketKeyOf(systemId, checkId, null, "hour", hours * HOUR)))));
        });
      const pending = async () =>
        Object.fromEntries(
          (await fixture().query<{ system_id: string; n: number }>(`SELECT system_id, count(*)::int AS n FROM "${fixture().schema}".bucket_deltas GROUP BY system_id`)).map((row) => [row.system_id, row.n]),
        );
      await append(0, () => ["c"]);
      expect(Object.keys(await pending())).toHaveLength(40);
      // Now all 40 are due: s32–s39 with 4 pending, the others with 2. Folded: s32–s39, then s00–s23.
      await append(1, (index) => (index < 32 ? ["c"] : ["c", "d", "e"]));
      expect(await pending()).toEqual(Object.fromEntries(systems.slice(24, 32).map((systemId) => [systemId, 2])));
      // Looked at, their counts restarted: foldBucketDeltasAfter appends later they are looked at again, and folded.
      await append(2, () => ["c"]);
      expect(await pending()).toMatchObject(Object.fromEntries(systems.slice(24, 32).map((systemId) => [systemId, 3])));
      await append(3, () => ["c"]);
      expect(Object.keys(await pending()).filter((systemId) => systemId >= "s24" && systemId < "s32")).toEqual([]);
      const total = await fixture().query<{ runs: number }>(
        `SELECT ((SELECT coalesce(sum(runs), 0) FROM "${fixture().schema}".buckets) + (SELECT coalesce(sum(runs), 0) FROM "${fixture().schema}".bucket_deltas))::int AS runs`,
      );
      expect(total).toEqual([{ runs: 40 + 32 + 8 * 3 + 40 + 40 }]);
    });

    it("folds a schema published for logical replication (bucket_deltas has a key, so its rows can be deleted)", async () => {
      const adapter = fixture().adapter({ foldBucketDeltasAfter: 1 });
      const publication = `${fixture().schema}_pub`;
      // bucket_deltas alone: on Postgres 18 (PGlite), tables keyed on a generated column (buckets,
      // slices) need the publication to publish it (docs/postgres.md, *Tables*).
      await fixture().query(`CREATE PUBLICATION ${publication} FOR TABLE "${fixture().schema}".bucket_deltas`);
      try {
        const key = bucketKeyOf("s", "c", null, "hour", 0);
        await inTx(adapter, (tx) => tx.addToBuckets([bucketOf(key)]));
        await inTx(adapter, (tx) => tx.deleteBuckets([key]));
        await inTx(adapter, (tx) => tx.addToBuckets([bucketOf(key)]));
        expect(await count(fixture(), "bucket_deltas")).toBe(0);
        expect((await adapter.store.queryBuckets({ systemId: "s", granularity: "hour", from: bat(0), to: bat(1) }))[0]?.runs).toBe(1);
      } finally {
        await fixture().query(`DROP PUBLICATION ${publication}`);
      }
    });

    it("adds a batch in one statement: distinct slices (env-less, '' and ':' apart), repeated keys merged, nothing on a bad bucket", async () => {
      const adapter = fixture().adapter();
      const keys = [
        bucketKeyOf("s", "c", null, "hour", 0),
        bucketKeyOf("s", "c", "", "hour", 0),
        bucketKeyOf("s", "c", ":", "hour", 0),
        bucketKeyOf("s", "c", null, "day", 0),
        bucketKeyOf(HOSTILE_IDS[0]!, HOSTILE_IDS[3]!, HOSTILE_IDS[1]!, "hour", 0),
      ];
      const first = keys.map((key, index) => bucketOf(key, Array.from({ length: index + 1 }, () => ({ status: "healthy" as const, latencyMs: index + 1 }))));
      await inTx(adapter, (tx) => tx.addToBuckets(first));
      const twice = bucketOf(keys[0]!, [{ status: "unhealthy", latencyMs: 100 }]);
      await inTx(adapter, (tx) => tx.addToBuckets([twice, { ...twice, start: "2026-01-01T00:00:00.000+00:00" }]));
      const hourly = await adapter.store.queryBuckets({ systemId: "s", granularity: "hour", from: bat(0), to: bat(DAY) });
      expect(hourly.map((b) => [b.environmentId, b.runs])).toEqual([
        [null, 3],
        ["", 2],
        [":", 3],
      ]);
      expect(hourly[0]).toEqual(mergeBuckets(keys[0]!, [first[0]!, twice, twice]));
      expect(await adapter.store.queryBuckets({ systemId: HOSTILE_IDS[0]!, granularity: "hour", from: bat(0), to: bat(DAY) })).toEqual([first[4]]);

      const before = await fixture().query(`SELECT * FROM "${fixture().schema}".buckets ORDER BY system_id, check_id, environment_key, granularity`);
      const badStart = { ...bucketOf(bucketKeyOf("s", "c", null, "hour", HOUR)), start: "soon" };
      await expect(inTx(adapter, (tx) => tx.addToBuckets([bucketOf(keys[0]!), badStart]))).rejects.toThrow(/bucket start/u);
      await expect(inTx(adapter, (tx) => tx.addToBuckets([{ ...bucketOf(keys[0]!), granularity: "week" as BucketGranularity }]))).rejects.toThrow(TypeError);
      await expect(inTx(adapter, (tx) => tx.deleteBuckets([keys[0]!, badStart]))).rejects.toThrow(TypeError);
      expect(await fixture().query(`SELECT * FROM "${fixture().schema}".buckets ORDER BY system_id, check_id, environment_key, granularity`)).toEqual(before);
      await inTx(adapter, (tx) => tx.addToBuckets([]));
    });

    it("queries one system's committed buckets by environment, granularity and half-open start range, oldest first then by slice", async () => {
      const adapter = fixture().adapter();
      await inTx(adapter, (tx) =>
        tx.addToBuckets([
          bucketOf(bucketKeyOf("s1", "c1", "prod", "hour", 2 * HOUR)),
          bucketOf(bucketKeyOf("s1", "c1", null, "hour", 0)),
          bucketOf(bucketKeyOf("s1", "c1", "prod", "hour", 0)),
          bucketOf(bucketKeyOf("s1", "c2", "prod", "hour", HOUR)),
          bucketOf(bucketKeyOf("s1", "c1", "staging", "hour", HOUR)),
          bucketOf(bucketKeyOf("s1", "c1", "prod", "day", 0)),
          bucketOf(bucketKeyOf("s2", "c1", "prod", "hour", 0)),
        ]),
      );
      const query = async (systemId: string, granularity: BucketGranularity, fromMs: number, toMs: number, environmentId?: string) =>
        (await adapter.store.queryBuckets({ systemId, granularity, from: bat(fromMs), to: bat(toMs), ...(environmentId === undefined ? {} : { environmentId }) })).map(slot);
      expect(await query("s1", "hour", 0, 3 * HOUR)).toEqual(["s1/c1/-@0h", "s1/c1/prod@0h", "s1/c1/staging@1h", "s1/c2/prod@1h", "s1/c1/prod@2h"]);
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
      await expect(adapter.store.queryBuckets({ systemId: "s1", granularity: "hour", from: new Date(Number.NaN), to: bat(0) })).rejects.toThrow(TypeError);
    });

    it("lists buckets before a time oldest first up to a limit, reading its own writes, and the systems having any", async () => {
      const adapter = fixture().adapter();
      await inTx(adapter, (tx) =>
        tx.addToBuckets([
          bucketOf(bucketKeyOf("s1", "c1", null, "hour", 3 * HOUR)),
          bucketOf(bucketKeyOf("s1", "c1", null, "hour", 2 * HOUR)),
          bucketOf(bucketKeyOf("s2", "c1", null, "hour", HOUR)),
          bucketOf(bucketKeyOf("s1", "c2", null, "hour", HOUR)),
          bucketOf(bucketKeyOf("s1", "c1", "prod", "hour", HOUR)),
          bucketOf(bucketKeyOf("s1", "c1", null, "hour", HOUR)),
          bucketOf(bucketKeyOf("s1", "c1", null, "hour", 0)),
          bucketOf(bucketKeyOf("s3", "c1", null, "hour", 0)),
          bucketOf(bucketKeyOf("s1", "c1", null, "day", 0)),
        ]),
      );
      const before = async (systemIds: string[], granularity: BucketGranularity, beforeMs: number, limit: number) =>
        (await inTx(adapter, (tx) => tx.listBucketsBefore({ systemIds, granularity, before: bat(beforeMs), limit }))).map(slot);
      expect(await before(["s1", "s2", "s1"], "hour", 3 * HOUR, 10)).toEqual(["s1/c1/-@0h", "s1/c1/-@1h", "s1/c1/prod@1h", "s1/c2/-@1h", "s2/c1/-@1h", "s1/c1/-@2h"]);
      expect(await before(["s2", "s1"], "hour", 3 * HOUR, 2)).toEqual(["s1/c1/-@0h", "s1/c1/-@1h"]);
      expect(await before(["s1"], "hour", 3 * HOUR, 2.9)).toEqual(["s1/c1/-@0h", "s1/c1/-@1h"]);
      expect(await before(["s1"], "hour", 3 * HOUR, 0)).toEqual([]);
      expect(await before(["s1"], "hour", 0, 10)).toEqual([]);
      expect(await before(["s1", "s3"], "day", DAY, 10)).toEqual(["s1/c1/-@0h"]);
      expect(await before([], "hour", DAY, 10)).toEqual([]);
      await expect(before(["s1"], "hour", DAY, Number.NaN)).rejects.toThrow(TypeError);

      const systems = (granularity: BucketGranularity, beforeMs: number) => adapter.store.listSystemsWithBucketsBefore({ granularity, before: bat(beforeMs) });
      expect(await systems("hour", 0)).toEqual([]);
      expect(await systems("hour", 1)).toEqual(["s1", "s3"]);
      expect(await systems("hour", HOUR + 1)).toEqual(["s1", "s2", "s3"]);
      expect(await systems("day", 0)).toEqual([]);
      expect(await systems("day", 1)).toEqual(["s1"]);

      // A rollup inside one transaction: it reads its own deletes and additions; a rollback keeps nothing.
      const hours = await inTx(adapter, (tx) => tx.listBucketsBefore({ systemIds: ["s1"], granularity: "hour", before: bat(DAY), limit: 100 }));
      const rolledBack = inTx(adapter, async (tx) => {
        await tx.deleteBuckets(hours);
        await tx.addToBuckets([mergeBuckets(bucketKeyOf("s1", "c1", null, "day", 0), hours.filter((h) => h.checkId === "c1" && h.environmentId === null))]);
        expect(await tx.listBucketsBefore({ systemIds: ["s1"], granularity: "hour", before: bat(DAY), limit: 100 })).toEqual([]);
        expect((await tx.listBucketsBefore({ systemIds: ["s1"], granularity: "day", before: bat(DAY), limit: 100 }))[0]?.runs).toBe(5);
        throw new Error("roll back");
      });
      await expect(rolledBack).rejects.toThrow("roll back");
      expect((await before(["s1"], "hour", DAY, 100)).length).toBe(6);
      expect(await systems("hour", DAY)).toEqual(["s1", "s2", "s3"]);
    });
  });

  describe("maintenance windows", () => {
    const processed = { startedEntities: ["s1"], ended: true };

    it("round-trip by system, list by start (an instant) then id, filtered by id and system, and roll back with the transaction", async () => {
      const adapter = fixture().adapter();
      const w1 = windowOf("m1", "s1", 0, HOUR, { reason: "upgrade" });
      const w2 = windowOf("m2", "s1", HOUR, 2 * HOUR, { entityId: "s1::prod", environmentId: "prod", startedEntities: ["s1::prod"] });
      const w3 = windowOf("m3", "s2", 0, HOUR, processed);
      const w10 = windowOf("m10", "s1", HOUR, 3 * HOUR, { startedEntities: [], reason: HOSTILE_IDS[4]! });
      const byId = (windows: MaintenanceRecord[]) => [...windows].sort((a, b) => (a.maintenanceId < b.maintenanceId ? -1 : 1));
      await inTx(adapter, async (tx) => {
        await tx.putMaintenance([w1, w2, w3, w10]);
        expect(byId(await tx.getMaintenance(["s1", "s1", "nope"]))).toEqual([w1, w10, w2]);
      });
      expect(byId(await inTx(adapter, (tx) => tx.getMaintenance(["s1", "s2"])))).toEqual([w1, w10, w2, w3]);
      const idsOf = async (query: { maintenanceId?: string; systemId?: string }) => (await adapter.store.listMaintenance(query)).map((w) => w.maintenanceId);
      expect(await adapter.store.listMaintenance({})).toEqual([w1, w3, w10, w2]);
      expect(await idsOf({ systemId: "s1" })).toEqual(["m1", "m10", "m2"]);
      expect(await idsOf({ systemId: "s3" })).toEqual([]);
      expect(await idsOf({ maintenanceId: "m3" })).toEqual(["m3"]);
      expect(await idsOf({ maintenanceId: "m3", systemId: "s2" })).toEqual(["m3"]);
      expect(await idsOf({ maintenanceId: "m3", systemId: "s1" })).toEqual([]);
      expect(await idsOf({ maintenanceId: "nope" })).toEqual([]);

      const rolledBack = inTx(adapter, async (tx) => {
        await tx.putMaintenance([windowOf("m4", "s1", 0, HOUR), { ...w2, ended: true }, { ...w1, systemId: "s2" }]);
        await tx.deleteMaintenance(["m3", "absent"]);
        expect(byId(await tx.getMaintenance(["s1"])).map((w) => [w.maintenanceId, w.ended])).toEqual([["m10", false], ["m2", true], ["m4", false]]);
        expect((await tx.getMaintenance(["s2"])).map((w) => w.maintenanceId)).toEqual(["m1"]);
        throw new Error("roll back");
      });
      await expect(rolledBack).rejects.toThrow("roll back");
      expect(await adapter.store.listMaintenance({})).toEqual([w1, w3, w10, w2]);
      await inTx(adapter, (tx) => tx.deleteMaintenance(["m1", "m1", "absent"]));
      expect(await idsOf({})).toEqual(["m3", "m10", "m2"]);
    });

    it("find each system once with a boundary due and unprocessed, following replacements and deletes", async () => {
      const adapter = fixture().adapter();
      await inTx(adapter, (tx) =>
        tx.putMaintenance([
          windowOf("a1", "sA", HOUR, 4 * HOUR),
          windowOf("a2", "sA", HOUR, 4 * HOUR),
          windowOf("b", "sB", 0, 3 * HOUR, { startedEntities: ["sB"] }),
          windowOf("c", "sC", 0, HOUR, processed),
          windowOf("d", "sD", 0, 5 * HOUR, { startedEntities: [] }),
          windowOf("e", "sE", 0, HOUR, { ended: true }),
        ]),
      );
      const due = (ms: number) => adapter.store.findDueMaintenance(bat(ms));
      expect(await due(-1)).toEqual([]);
      expect(await due(0)).toEqual(["sE"]);
      expect(await due(HOUR)).toEqual(["sA", "sE"]);
      expect(await due(3 * HOUR)).toEqual(["sA", "sB", "sE"]);
      expect(await due(10 * HOUR)).toEqual(["sA", "sB", "sD", "sE"]);
      await inTx(adapter, async (tx) => {
        await tx.putMaintenance([windowOf("a1", "sA", HOUR, 4 * HOUR, { startedEntities: ["sA"] }), windowOf("e", "sE", 0, HOUR, { startedEntities: ["sE"], ended: true })]);
        await tx.deleteMaintenance(["a2"]);
      });
      expect(await due(HOUR)).toEqual([]);
      expect(await due(4 * HOUR)).toEqual(["sA", "sB"]);
      await inTx(adapter, (tx) =>
        tx.putMaintenance([
          windowOf("a1", "sA", HOUR, 4 * HOUR, { startedEntities: ["sA"], ended: true }),
          windowOf("b", "sB", 0, 3 * HOUR, { startedEntities: ["sB"], ended: true }),
        ]),
      );
      expect(await due(10 * HOUR)).toEqual(["sD"]);
      // A processed window made open again is found again.
      await inTx(adapter, (tx) => tx.putMaintenance([windowOf("c", "sC", 0, 2 * HOUR, { startedEntities: ["sC"] })]));
      expect(await due(10 * HOUR)).toEqual(["sC", "sD"]);
      await expect(adapter.store.findDueMaintenance(new Date(Number.NaN))).rejects.toThrow(TypeError);
      // Only open windows are indexed.
      const [open] = await fixture().query<{ n: unknown }>(
        `SELECT count(*) AS n FROM "${fixture().schema}".maintenance WHERE started_entities IS NULL OR NOT ended`,
      );
      expect(Number(open?.n)).toBe(2);
    });

    it("rejects a window whose start or end is not a time, writing nothing of the batch", async () => {
      const adapter = fixture().adapter();
      await expect(inTx(adapter, (tx) => tx.putMaintenance([windowOf("ok", "s1", 0, HOUR), { ...windowOf("bad", "s1", 0, HOUR), end: "tomorrow" }]))).rejects.toThrow(
        /maintenance end/u,
      );
      await expect(inTx(adapter, (tx) => tx.putMaintenance([{ ...windowOf("bad", "s1", 0, HOUR), start: "" }]))).rejects.toThrow(TypeError);
      expect(await adapter.store.listMaintenance({})).toEqual([]);
      await inTx(adapter, (tx) => tx.putMaintenance([]));
    });
  });

  describe("retention (prune)", () => {
    const done = { startedEntities: ["s1"], ended: true };
    const horizons = { runsBefore: bat(HOUR), dailyBefore: bat(DAY), transitionsBefore: bat(2500) };

    async function seedHistory(adapter: HealthAdapter): Promise<void> {
      await inTx(adapter, async (tx) => {
        await tx.insertRuns([storedRunOf("r1", "s1", 0), storedRunOf("r2", "s1", HOUR), storedRunOf("r3", "s2", 2 * HOUR)]);
        await tx.addToBuckets([
          bucketOf(bucketKeyOf("s1", "c1", null, "day", 0)),
          bucketOf(bucketKeyOf("s1", "c1", null, "day", DAY)),
          bucketOf(bucketKeyOf("s2", "c1", "prod", "day", 0)),
          bucketOf(bucketKeyOf("s1", "c1", null, "hour", 0)),
        ]);
        await tx.appendTransitions([
          transitionOf("e", 1, 1000),
          transitionOf("e", 2, 2000),
          transitionOf("e", 3, 3000),
          transitionOf("f", 1, 1000),
          transitionOf("g", 1, 1000),
          transitionOf("g", 2, 500),
          // h's first transition is recent; the later, older ones take effect at its time.
          transitionOf("h", 1, 3000),
          transitionOf("h", 2, 1000),
          transitionOf("h", 3, 2000),
          // k is all old, its newest late: k#1 holds the time k#2 took effect, so both stay.
          transitionOf("k", 1, 2000),
          transitionOf("k", 2, 1000),
        ]);
        await tx.putMaintenance([
          windowOf("done", "s1", 0, 2000, done),
          windowOf("done-at-horizon", "s1", 0, 2500, done),
          windowOf("never-started", "s1", 0, 1000),
          windowOf("never-ended", "s1", 0, 1000, { startedEntities: ["s1"] }),
          windowOf("ended-flag-only", "s1", 0, 1000, { ended: true }),
        ]);
      });
    }

    it("deletes old runs, daily buckets, transitions (all but the one in effect at the horizon and those after it) and processed windows, once", async () => {
      const adapter = fixture().adapter();
      await seedHistory(adapter);
      expect(await adapter.store.prune(horizons)).toEqual({ runs: 1, daily: 2, transitions: 1, maintenance: 1 });
      expect(await inTx(adapter, (tx) => tx.findRunIds(["r1", "r2", "r3"]))).toEqual(expect.arrayContaining(["r2", "r3"]));
      expect(await inTx(adapter, (tx) => tx.findRunIds(["r1"]))).toEqual([]);
      expect((await adapter.store.queryBuckets({ systemId: "s1", granularity: "day", from: bat(-DAY), to: bat(9 * DAY) })).map(slot)).toEqual(["s1/c1/-@24h"]);
      expect(await adapter.store.queryBuckets({ systemId: "s2", granularity: "day", from: bat(-DAY), to: bat(9 * DAY) })).toEqual([]);
      expect(await adapter.store.queryBuckets({ systemId: "s1", granularity: "hour", from: bat(0), to: bat(DAY) })).toHaveLength(1);
      const seqs = async (entityId: string) => (await adapter.store.listTransitions({ entityId })).map((t) => t.sequence);
      // e's sequence 2 (at 2000) is the status at the horizon (2500): it stays with 3.
      expect(await seqs("e")).toEqual([2, 3]);
      expect(await seqs("f")).toEqual([1]);
      expect(await seqs("g")).toEqual([1, 2]);
      expect(await seqs("h")).toEqual([1, 2, 3]);
      expect(await seqs("k")).toEqual([1, 2]);
      expect((await adapter.store.listMaintenance({})).map((w) => w.maintenanceId).sort()).toEqual(["done-at-horizon", "ended-flag-only", "never-ended", "never-started"]);

      expect(await adapter.store.prune(horizons)).toEqual({ runs: 0, daily: 0, transitions: 0, maintenance: 0 });
      await inTx(adapter, (tx) => tx.appendTransitions([transitionOf("e", 4, 4000)]));
      // At 3500, e's sequence 3 is in effect; h#1 holds the time (3000) h's later rows took effect: all stay.
      expect(await adapter.store.prune({ ...horizons, transitionsBefore: bat(3500) })).toEqual({ runs: 0, daily: 0, transitions: 1, maintenance: 1 });
      expect(await seqs("e")).toEqual([3, 4]);
      expect(await seqs("h")).toEqual([1, 2, 3]);
      expect(await seqs("k")).toEqual([1, 2]);
    });

    it("frees the ids of pruned runs, rejects an invalid horizon deleting nothing, and deletes beyond one batch", async () => {
      const adapter = fixture().adapter();
      await seedHistory(adapter);
      await expect(adapter.store.prune({ ...horizons, transitionsBefore: new Date(Number.NaN) })).rejects.toThrow(TypeError);
      expect(await count(fixture(), "runs")).toBe(3);
      expect((await adapter.store.prune(horizons)).runs).toBe(1);
      await inTx(adapter, (tx) => tx.insertRuns([storedRunOf("r1", "s1", 2 * HOUR)]));
      expect(await inTx(adapter, (tx) => tx.findRunIds(["r1"]))).toEqual(["r1"]);

      const many = Array.from({ length: 10_050 }, (_, index) => storedRunOf(`bulk-${index}`, "s9", -DAY + index));
      await inTx(adapter, (tx) => tx.insertRuns(many));
      expect((await adapter.store.prune({ runsBefore: bat(0), dailyBefore: bat(-10 * DAY), transitionsBefore: bat(-10 * DAY) })).runs).toBe(10_050);
      expect(await count(fixture(), "runs")).toBe(3);

      // One entity's 10,050 old transitions and a recent one: every batch finds the one in effect
      // at the horizon again, and only the rows before it go.
      const log = Array.from({ length: 10_050 }, (_, index) => transitionOf("bulk", index + 1, -DAY + index));
      await inTx(adapter, (tx) => tx.appendTransitions([...log, transitionOf("bulk", 10_051, 5 * DAY)]));
      expect((await adapter.store.prune({ runsBefore: bat(-10 * DAY), dailyBefore: bat(-10 * DAY), transitionsBefore: bat(0) })).transitions).toBe(10_049);
      expect((await adapter.store.listTransitions({ entityId: "bulk" })).map((t) => t.sequence)).toEqual([10_050, 10_051]);
    });
  });

  describe("differential: the same operations on the memory adapter and this one give the same answers", () => {
    const SYSTEMS = ["s1", "s2"] as const;
    const keyArb = fc.record({
      systemId: fc.constantFrom(...SYSTEMS),
      checkId: fc.constantFrom("c1", "c:2"),
      environmentId: fc.constantFrom<string | null>(null, "prod", ""),
      granularity: fc.constantFrom<BucketGranularity>("hour", "day"),
      startMs: fc.integer({ min: 0, max: 5 }).map((h) => h * HOUR),
    });
    const sampleArb = fc.record({
      status: fc.constantFrom<HealthStatus>("healthy", "degraded", "unhealthy"),
      latencyMs: fc.option(fc.oneof(fc.constant(0), fc.double({ min: 0.001, max: 5000, noNaN: true })), { nil: null }),
    });
    const opArb = fc.oneof(
      fc.record({
        kind: fc.constant("add" as const),
        buckets: fc.uniqueArray(fc.record({ key: keyArb, samples: fc.array(sampleArb, { minLength: 1, maxLength: 4 }) }), {
          selector: (entry) => JSON.stringify(entry.key),
          minLength: 1,
          maxLength: 3,
        }),
      }),
      fc.record({ kind: fc.constant("deleteBuckets" as const), keys: fc.array(keyArb, { maxLength: 3 }) }),
      fc.record({
        kind: fc.constant("putMaintenance" as const),
        windows: fc.uniqueArray(
          fc.record({
            id: fc.constantFrom("m1", "m2", "m10", "a"),
            systemId: fc.constantFrom(...SYSTEMS),
            startH: fc.integer({ min: 0, max: 6 }),
            lengthH: fc.integer({ min: 1, max: 4 }),
            started: fc.constantFrom<string[] | null>(null, [], ["x"]),
            ended: fc.boolean(),
          }),
          { selector: (w) => w.id, minLength: 1, maxLength: 3 },
        ),
      }),
      fc.record({ kind: fc.constant("deleteMaintenance" as const), ids: fc.array(fc.constantFrom("m1", "m2", "m10", "a", "zz"), { maxLength: 2 }) }),
      fc.record({ kind: fc.constant("transition" as const), entityId: fc.constantFrom("e", "f"), atH: fc.integer({ min: 0, max: 10 }) }),
      fc.record({ kind: fc.constant("run" as const), systemId: fc.constantFrom(...SYSTEMS), atH: fc.integer({ min: 0, max: 10 }) }),
      fc.record({ kind: fc.constant("prune" as const), runsH: fc.integer({ min: 0, max: 11 }), dailyH: fc.integer({ min: 0, max: 6 }), transitionsH: fc.integer({ min: 0, max: 11 }) }),
    );
    type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

    /** Applies one operation; returns what it answered (prune counts) or null. */
    async function apply(adapter: HealthAdapter, op: Op, counters: Map<string, number>): Promise<unknown> {
      switch (op.kind) {
        case "add":
          return inTx(adapter, (tx) =>
            tx.addToBuckets(op.buckets.map(({ key, samples }) => bucketOf(bucketKeyOf(key.systemId, key.checkId, key.environmentId, key.granularity, key.startMs), samples))),
          );
        case "deleteBuckets":
          return inTx(adapter, (tx) => tx.deleteBuckets(op.keys.map((key) => bucketKeyOf(key.systemId, key.checkId, key.environmentId, key.granularity, key.startMs))));
        case "putMaintenance":
          return inTx(adapter, (tx) =>
            tx.putMaintenance(op.windows.map((w) => windowOf(w.id, w.systemId, w.startH * HOUR, (w.startH + w.lengthH) * HOUR, { startedEntities: w.started, ended: w.ended }))),
          );
        case "deleteMaintenance":
          return inTx(adapter, (tx) => tx.deleteMaintenance(op.ids));
        case "transition": {
          const sequence = (counters.get(op.entityId) ?? 0) + 1;
          counters.set(op.entityId, sequence);
          return inTx(adapter, (tx) => tx.appendTransitions([transitionOf(op.entityId, sequence, op.atH * HOUR)]));
        }
        case "run": {
          const n = (counters.get("run") ?? 0) + 1;
          counters.set("run", n);
          return inTx(adapter, (tx) => tx.insertRuns([storedRunOf(`r${n}`, op.systemId, op.atH * HOUR)]));
        }
        case "prune":
          return adapter.store.prune({ runsBefore: bat(op.runsH * HOUR), dailyBefore: bat(op.dailyH * HOUR), transitionsBefore: bat(op.transitionsH * HOUR) });
      }
    }

    /** Everything the store answers about the state. */
    async function observe(adapter: HealthAdapter, full: boolean): Promise<unknown[]> {
      const answers: unknown[] = [
        await adapter.store.listMaintenance({}),
        await adapter.store.findDueMaintenance(bat(3 * HOUR)),
        await inTx(adapter, (tx) => tx.listBucketsBefore({ systemIds: [...SYSTEMS], granularity: "hour", before: bat(3 * HOUR), limit: 4 })),
      ];
      if (!full) return answers;
      for (const systemId of SYSTEMS) {
        answers.push(await adapter.store.listMaintenance({ systemId }), await adapter.store.listMaintenance({ maintenanceId: "m1", systemId }));
        for (const granularity of ["hour", "day"] as const) {
          for (const environmentId of [undefined, "prod", ""]) {
            answers.push(await adapter.store.queryBuckets({ systemId, granularity, from: bat(HOUR), to: bat(5 * HOUR), ...(environmentId === undefined ? {} : { environmentId }) }));
          }
        }
      }
      for (const ms of [0, HOUR, 5 * HOUR, 10 * HOUR]) {
        answers.push(await adapter.store.findDueMaintenance(bat(ms)));
        for (const granularity of ["hour", "day"] as const) {
          answers.push(await adapter.store.listSystemsWithBucketsBefore({ granularity, before: bat(ms) }));
          answers.push(await inTx(adapter, (tx) => tx.listBucketsBefore({ systemIds: ["s2", "s1"], granularity, before: bat(ms + HOUR), limit: 100 })));
        }
      }
      for (const entityId of ["e", "f"]) {
        answers.push(await adapter.store.listTransitions({ entityId }), await inTx(adapter, (tx) => tx.listTransitions({ entityId, from: bat(HOUR), limit: 2 })));
      }
      answers.push((await inTx(adapter, (tx) => tx.findRunIds(Array.from({ length: 40 }, (_, n) => `r${n}`)))).sort());
      return answers;
    }

    it("for random sequences of bucket, maintenance, transition, run and prune operations", async () => {
      const pg = fixture().adapter();
      const schema = fixture().schema;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 12 }), async (ops) => {
          await fixture().query(`TRUNCATE "${schema}".buckets, "${schema}".maintenance, "${schema}".runs, "${schema}".transitions`);
          const memory = createMemoryAdapter();
          try {
            const counters = { memory: new Map<string, number>(), pg: new Map<string, number>() };
            for (const op of ops) {
              const expected = await apply(memory, op, counters.memory);
              expect(await apply(pg, op, counters.pg), op.kind).toEqual(expected);
              expect(await observe(pg, false), `after ${op.kind}`).toEqual(await observe(memory, false));
            }
            expect(await observe(pg, true)).toEqual(await observe(memory, true));
          } finally {
            await memory.close();
          }
        }),
        { numRuns: 25 },
      );
    });
  });

  describe("the engine over the adapter: history, flapping, maintenance (compared with the memory adapter)", () => {
    it("answers availability and latency, rolls up and prunes (runRetention) exactly as over the memory adapter", async () => {
      const adapter = fixture().adapter();
      const memory = createMemoryAdapter();
      fixture().defer(() => memory.close());
      const expected = await historyScenario(memory, fixture());
      const answers = await historyScenario(adapter, fixture());
      expect(answers).toEqual(expected);
      // Sanity of what was compared: prod was down 3 hours of 48 (and degraded now and then).
      const [entityId, prod] = answers.slice(3, 5) as [string, { unhealthy: number; availability: number }];
      expect(entityId).toBe("api::prod");
      expect(prod.unhealthy).toBeGreaterThan(0.05);
      expect(prod.availability).toBeLessThan(0.95);
      const retention = answers[9] as RetentionOutcome;
      expect(retention.hourlyRolled).toBeGreaterThan(24);
      expect(retention.runsPruned).toBe(144);
      expect(answers.at(-4)).toEqual({ runsPruned: 0, hourlyRolled: 0, dailyPruned: 0, transitionsPruned: 0 });
      expect(await count(fixture(), "buckets")).toBe(0);
    });

    it("emits flapping and maintenance events as replay predicts, delivers them in order, and stores the flap state", async () => {
      const adapter = fixture().adapter();
      const { events, delivered, expected } = await flapScenario(adapter, fixture());
      expect(withoutMaintenanceId(events)).toEqual(withoutMaintenanceId(expected));
      expect(events.some((event) => event.type === "health.flapping_started")).toBe(true);
      expect(events.some((event) => event.type === "health.maintenance_ended")).toBe(true);
      const key = (event: HealthEvent) => `${event.entityId}#${event.sequence}`;
      expect(delivered.map(key).sort()).toEqual(events.map(key).sort());
      for (const entityId of new Set(events.map((event) => event.entityId))) {
        const sequences = delivered.filter((event) => event.entityId === entityId).map((event) => event.sequence);
        expect(sequences).toEqual(sequences.map((_, index) => index + 1));
      }
      await expectGaplessChains(fixture());
      const memory = createMemoryAdapter();
      fixture().defer(() => memory.close());
      expect((await flapScenario(memory, fixture())).events).toEqual(events);
      const flapState = await fixture().query<{ entity_id: string; history: string | null; flapping_from: string | null }>(
        `SELECT entity_id, history, flapping_from FROM "${fixture().schema}".entities ORDER BY entity_id`,
      );
      expect(flapState.map((row) => row.entity_id)).toEqual(["web", "web::prod", "web::staging"]);
      for (const row of flapState) {
        expect(row.history).toMatch(/^[hdu]{1,21}$/u);
        expect(["", "healthy", "degraded", "unhealthy"]).toContain(row.flapping_from);
      }
      const stored = await adapter.store.getEntitiesById(["web::prod"]);
      expect(stored[0]?.history).toBe(flapState.find((row) => row.entity_id === "web::prod")?.history);
    });

    it("runs the maintenance lifecycle: tick emits each boundary once across engines, end, delete, list", async () => {
      const adapter = fixture().adapter();
      const engines = [
        clockedEngine(adapter, fixture(), FLAP_T0),
        clockedEngine(fixture().adapter(), fixture(), FLAP_T0, { generateId: (() => { let n = 0; return () => `other-${(n += 1)}`; })() }),
      ];
      const [{ engine }] = engines as [(typeof engines)[number]];
      (await engine.applyTopology(FLAP_TOPOLOGY))._unsafeUnwrap();
      const staging = (await engine.addMaintenance({ entityId: "web::staging", start: minuteIso(1), end: minuteIso(2), reason: "deploy" }))._unsafeUnwrap();
      const wide = (await engines[1]!.engine.addMaintenance({ entityId: "web", start: minuteIso(5), end: minuteIso(6) }))._unsafeUnwrap();
      expect(await adapter.store.findDueMaintenance(new Date(Date.parse(minuteIso(3))))).toEqual(["web"]);
      const ticks = await Promise.all(engines.map(({ engine: e }) => e.tick(minuteIso(3))));
      expect(ticks.flatMap((result) => result._unsafeUnwrap()).map((event) => event.type).sort()).toEqual(["health.maintenance_ended", "health.maintenance_started"]);
      const systemWide = (await engines[1]!.engine.tick(minuteIso(7)))._unsafeUnwrap();
      expect(systemWide.map((event) => [event.type, event.entityId])).toEqual([
        ["health.maintenance_started", "web"],
        ["health.maintenance_started", "web::prod"],
        ["health.maintenance_started", "web::staging"],
        ["health.maintenance_ended", "web"],
        ["health.maintenance_ended", "web::prod"],
        ["health.maintenance_ended", "web::staging"],
      ]);
      expect(await adapter.store.findDueMaintenance(new Date(Date.parse(minuteIso(100))))).toEqual([]);
      engines[0]!.setNow(FLAP_T0 + 10 * 60_000);
      const listed = (await engine.listMaintenance())._unsafeUnwrap();
      expect(listed.map((window) => [window.maintenanceId, window.state])).toEqual([
        [staging.maintenanceId, "ended"],
        [wide.maintenanceId, "ended"],
      ]);
      const future = (await engine.addMaintenance({ entityId: "web::prod", start: minuteIso(60), end: minuteIso(120) }))._unsafeUnwrap();
      expect((await engine.endMaintenance({ maintenanceId: future.maintenanceId }))._unsafeUnwrap()).toEqual({ events: [] });
      (await engine.deleteMaintenance({ maintenanceId: staging.maintenanceId }))._unsafeUnwrap();
      expect((await engine.listMaintenance())._unsafeUnwrap().map((window) => window.maintenanceId)).toEqual([wide.maintenanceId]);
      // Processed windows go with the transitions' horizon.
      const pruned = await adapter.store.prune({ runsBefore: new Date(0), dailyBefore: new Date(0), transitionsBefore: new Date(FLAP_T0 + DAY) });
      expect(pruned.maintenance).toBe(1);
      expect(await count(fixture(), "maintenance")).toBe(0);
    });
  });
}

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
      it("run at READ COMMITTED with lock_timeout set and JIT off, even when the session defaults differ", async () => {
        const { client, schema, backend: name } = fixture();
        let target = client;
        if (name === "postgres") {
          target = fixture().extraPool({ max: 1, options: "-c default_transaction_isolation=serializable -c jit=on" });
        } else {
          const f = fixture();
          await f.query("SET default_transaction_isolation TO 'serializable'");
          await f.query("SET jit TO on");
          f.defer(async () => {
            await f.query("SET default_transaction_isolation TO 'read committed'");
            await f.query("RESET jit");
          });
        }
        expect(await target.query("SHOW default_transaction_isolation").then((r) => r.rows)).toEqual([
          { default_transaction_isolation: "serializable" },
        ]);
        expect(await target.query("SHOW jit").then((r) => r.rows)).toEqual([{ jit: "on" }]);
        const adapter = createPostgresAdapter({ client: target, schema, lockTimeoutMs: 1234 });
        fixture().defer(() => adapter.close());
        const seen = await adapter.store.transaction({ lockKeys: ["health:a"] }, async (tx) => {
          const [isolation] = await tx.query<{ transaction_isolation: string }>("SHOW transaction_isolation");
          const [timeout] = await tx.query<{ lock_timeout: string }>("SHOW lock_timeout");
          // The planner's cost estimates of a batch's statements cross jit_above_cost, and compiling a fold took 0.9 s.
          const [jit] = await tx.query<{ jit: string }>("SHOW jit");
          return { isolation: isolation?.transaction_isolation, timeout: timeout?.lock_timeout, jit: jit?.jit };
        });
        expect(seen).toEqual({ isolation: "read committed", timeout: "1234ms", jit: "off" });
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
      it("ignores a failure from a claim that no longer holds the lease (expired and claimed again)", async () => {
        const adapter = fixture().adapter();
        await adapter.emitter.registerGroup({ group: "g", from: "oldest" });
        await enqueue(adapter, [transitionEvent("a", 1)]);
        const claim = (consumerId: string, now: Date, leaseMs = 60_000) =>
          adapter.emitter.claim({ group: "g", consumerId, limit: 10, leaseMs, now }).then((claimed) => claimed.map((c) => [c.event.eventId, c.attempt]));
        const t0 = Date.parse("2031-01-01T00:00:00.000Z");
        const ms = (offset: number) => new Date(t0 + offset);
        expect(await claim("c1", ms(0), 10)).toEqual([["a#1", 1]]);
        // c1's lease expired: c2 holds a#1 now.
        expect(await claim("c2", ms(20))).toEqual([["a#1", 2]]);
        const late = { group: "g", eventId: "a#1", error: "late", retryAt: ms(22), now: ms(21) };
        await adapter.emitter.fail({ ...late, consumerId: "c1", attempt: 1, deadLetter: false });
        await adapter.emitter.fail({ ...late, consumerId: "c1", attempt: 1, deadLetter: true });
        // The same consumer's earlier claim is not the current one either.
        await adapter.emitter.fail({ ...late, consumerId: "c2", attempt: 1, deadLetter: true });
        expect(await claim("c3", ms(30))).toEqual([]);
        expect(await adapter.emitter.listDeadLetters({})).toEqual([]);
        // The holder's own failure applies.
        await adapter.emitter.fail({ ...late, consumerId: "c2", attempt: 2, deadLetter: false });
        expect(await claim("c3", ms(30))).toEqual([["a#1", 3]]);
        await expect(adapter.emitter.fail({ ...late, consumerId: "c3", attempt: 1.5, deadLetter: false })).rejects.toThrow(TypeError);
      });

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
        await adapter.emitter.fail({ group: "g", eventId: "b#1", consumerId: "c2", attempt: 2, error: "later", retryAt: at(10), deadLetter: false, now: at(1) });
        expect(await claim(at(9))).toEqual([]);
        expect((await claim(at(10))).map((c) => [c.event.eventId, c.attempt])).toEqual([["b#1", 3]]);
        await adapter.emitter.fail({ group: "g", eventId: "b#1", consumerId: "c1", attempt: 3, error: "dead", retryAt: at(11), deadLetter: true, now: at(10) });
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

    describeHistoryAndRetention(fixture);

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
    // Every run is counted once in its slice's hourly bucket, whatever the interleaving.
    const buckets = await adapters[1]!.store.queryBuckets({ systemId: "shared", granularity: "hour", from: new Date(0), to: new Date(8.64e15) });
    expect(buckets.reduce((total, bucket) => total + bucket.runs, 0)).toBe(perEngine * 2);
  });

  it.each([1, 3, 64])("adds to the same buckets from two pools concurrently without losing a run or deadlocking (deltas folded after %i appends)", async (foldBucketDeltasAfter) => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const pools = [fixture().extraPool({ max: 4 }), fixture().extraPool({ max: 4 })];
    const adapters = pools.map((pool) => createPostgresAdapter({ client: pool, schema, foldBucketDeltasAfter }));
    for (const adapter of adapters) fixture().defer(() => adapter.close());
    const prod = bucketKeyOf("shared", "http", "prod", "hour", 0);
    const envless = bucketKeyOf("shared", "http", null, "hour", 0);
    const deltas = Array.from({ length: 80 }, (_, i) =>
      bucketOf(prod, [
        { status: i % 3 === 0 ? "unhealthy" : "healthy", latencyMs: i % 5 === 0 ? null : 1 + i * 13.7 },
        { status: "degraded", latencyMs: i % 7 === 0 ? 0 : 2 + i },
      ]),
    );
    const others = deltas.map((_, i) => bucketOf(envless, [{ status: "healthy", latencyMs: i + 0.5 }]));
    // No lock keys: only row locks order these transactions (a fold's deltas, then its buckets).
    // Each holds them a moment, and half of them list the two buckets the other way round.
    await Promise.all(
      deltas.map((delta, i) =>
        adapters[i % 2]!.store.transaction({ lockKeys: [] }, async (tx) => {
          await tx.addToBuckets(i % 2 === 0 ? [delta, others[i]!] : [others[i]!, delta]);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }),
      ),
    );
    const query = { systemId: "shared", granularity: "hour" as const, from: bat(0), to: bat(HOUR) };
    const [stored] = await adapters[0]!.store.queryBuckets({ ...query, environmentId: "prod" });
    const expected = mergeBuckets(prod, deltas);
    // Float addition depends on the order; everything else is exact.
    expect({ ...stored, latencySum: 0 }).toEqual({ ...expected, latencySum: 0 });
    expect(stored?.latencySum).toBeCloseTo(expected.latencySum, 6);
    expect(stored?.runs).toBe(160);
    const all = await adapters[1]!.store.queryBuckets(query);
    expect(all.find((bucket) => bucket.environmentId === null)?.runs).toBe(80);
    if (foldBucketDeltasAfter < 64) {
      // What is left pending after the concurrent phase has no useful bound: a look folds only if
      // its fold sees foldBucketDeltasAfter rows, and with every connection busy the folds of the
      // eight first looks can each see only their own two rows (a review left 32 pending so), while
      // the counts restart. The counts still say when to look: alone, a pool looks within two
      // transactions of two rows (its count only grows until it does), and a look with nothing
      // running beside it sees every pending row, so right after it fewer than
      // foldBucketDeltasAfter are left (all folded, or too few to fold).
      for (const adapter of adapters) {
        const pendingAfter: number[] = [];
        for (let i = 0; i < 2; i += 1) {
          await adapter.store.transaction({ lockKeys: [] }, (tx) =>
            tx.addToBuckets([bucketOf(prod, [{ status: "healthy", latencyMs: 1 }]), bucketOf(envless, [{ status: "healthy", latencyMs: 1 }])]),
          );
          pendingAfter.push(await count(fixture(), "bucket_deltas"));
        }
        expect(Math.min(...pendingAfter)).toBeLessThan(foldBucketDeltasAfter);
      }
    }
  });

  it("looks for due bucket deltas again when a transaction whose fold failed is retried (the failed attempt's counts are dropped)", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const adapter = createPostgresAdapter({ client: fixture().extraPool({ max: 2 }), schema, foldBucketDeltasAfter: 4, lockTimeoutMs: 200 });
    fixture().defer(() => adapter.close());
    let attempts = 0;
    const append = (hours: readonly number[]) =>
      adapter.store.transaction({ lockKeys: [] }, async (tx) => {
        attempts += 1;
        await tx.getStateVersions?.(["s"]);
        await tx.addToBuckets(hours.map((hour) => bucketOf(bucketKeyOf("s", "c", null, "hour", hour * HOUR))));
      });
    for (let i = 0; i < 4; i += 1) await append([0]);
    expect(await count(fixture(), "bucket_deltas")).toBe(0);
    await append([0]);
    await append([0]);
    // Another session holds the bucket row: the fold this append makes due (2 + 2 pending) times out,
    // the attempt rolls back, and the retry, started from the committed count, folds again.
    const blocker = await fixture().extraPool({ max: 1 }).connect();
    await blocker.query("BEGIN");
    await blocker.query(`SELECT 1 FROM "${schema}".buckets WHERE system_id = 's' FOR UPDATE`);
    attempts = 0;
    const released = new Promise<void>((resolve) => setTimeout(() => void blocker.query("COMMIT").finally(() => (blocker.release(), resolve())), 300));
    await append([0, 1]);
    await released;
    expect(attempts).toBeGreaterThan(1);
    expect(await count(fixture(), "bucket_deltas")).toBe(0);
    const [bucket] = await adapter.store.queryBuckets({ systemId: "s", granularity: "hour", from: bat(0), to: bat(1) });
    expect(bucket?.runs).toBe(7);
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

  it("cancels a runaway statement after statementTimeoutMs (57014) without retrying, keeping nothing", async () => {
    const { schema } = fixture();
    await migrate(fixture().client, { schema });
    const adapter = createPostgresAdapter({ client: fixture().client, schema, statementTimeoutMs: 50, retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 } });
    fixture().defer(() => adapter.close());
    let attempts = 0;
    const started = Date.now();
    const outcome = adapter.store.transaction({ lockKeys: ["health:slow"] }, async (tx) => {
      attempts += 1;
      await tx.putSystem({ systemId: "slow", environmentIds: [] });
      await tx.query("SELECT pg_sleep(2)");
    });
    await expect(outcome).rejects.toMatchObject({ code: "57014" });
    expect(attempts).toBe(1);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await count(fixture(), "systems")).toBe(0);
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
