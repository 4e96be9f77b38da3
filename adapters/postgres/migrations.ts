import { createHash } from "node:crypto";
import { MIGRATION_LOCK_KEY } from "./lock-keys";
import { schemaNames, DEFAULT_SCHEMA } from "./schema-name";
import { toSqlClient, type PostgresClient } from "./sql-client";

/**
 * One schema migration shipped with the adapter. `sql` names tables unqualified: `migrate` runs
 * it with `search_path` set to the target schema, so the text (and its checksum) is the same for
 * every schema.
 */
export interface Migration {
  /** Stable, ordered id (`0001_initial`, …). Applied migrations are recorded under it. */
  readonly id: string;
  readonly sql: string;
}

const INITIAL = `
-- Ids are stored verbatim. Times are epoch milliseconds (UTC) in bigint columns named *_ms: every
-- instant a JavaScript Date can hold fits (timestamptz cannot hold year 0, which ISO 8601 and
-- the engine accept), and no driver's date parsing stands between a value and its round trip.
-- to_timestamp(x_ms / 1000.0) reads one as a timestamptz.

-- Topology (SPEC §4). Lists are JSON arrays (order matters).
CREATE TABLE systems (
  system_id text PRIMARY KEY,
  environment_ids jsonb NOT NULL
);

CREATE TABLE assignments (
  system_id text NOT NULL,
  check_id text NOT NULL,
  thresholds jsonb NOT NULL,
  -- NULL: every environment of the membership; [] none (env-less); a list: those of the membership.
  environment_ids jsonb,
  enabled boolean NOT NULL,
  paused boolean NOT NULL,
  PRIMARY KEY (system_id, check_id)
);

-- Per-slice evaluation state (SPEC §5), opaque to the adapter. environment_key makes the env-less
-- slice (environment_id NULL) a key of its own without a sentinel value: '' for NULL, ':' || id
-- otherwise.
CREATE TABLE slices (
  system_id text NOT NULL,
  check_id text NOT NULL,
  environment_id text,
  environment_key text GENERATED ALWAYS AS (coalesce(':' || environment_id, '')) STORED,
  state jsonb NOT NULL,
  PRIMARY KEY (system_id, check_id, environment_key)
);

-- Entity state (SPEC §6); state NULL is a tombstone that keeps the entity's sequence.
CREATE TABLE entities (
  entity_id text PRIMARY KEY,
  system_id text NOT NULL,
  environment_id text,
  state jsonb,
  sequence bigint NOT NULL CHECK (sequence >= 0)
);
CREATE INDEX entities_system_id_idx ON entities (system_id);

-- Accepted runs; run_id makes ingestion idempotent (SPEC §8 G6).
CREATE TABLE runs (
  run_id text PRIMARY KEY,
  system_id text NOT NULL,
  check_id text NOT NULL,
  environment_id text,
  status text NOT NULL CHECK (status IN ('healthy', 'degraded', 'unhealthy')),
  latency_ms double precision,
  run_at_ms bigint NOT NULL,
  message text,
  recorded_at_ms bigint NOT NULL
);

-- Transition log (SPEC §9), one chain per entity.
CREATE TABLE transitions (
  entity_id text NOT NULL,
  sequence bigint NOT NULL,
  system_id text NOT NULL,
  environment_id text,
  previous_status text NOT NULL CHECK (previous_status IN ('healthy', 'degraded', 'unhealthy')),
  new_status text NOT NULL CHECK (new_status IN ('healthy', 'degraded', 'unhealthy')),
  occurred_at_ms bigint NOT NULL,
  run_id text,
  check_id text,
  PRIMARY KEY (entity_id, sequence)
);

-- Transactional outbox. position orders commits globally (an opaque watermark); (entity_id,
-- sequence) is the per-entity chain and serves the head-of-entity lookup.
CREATE TABLE outbox (
  position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  entity_id text NOT NULL,
  sequence bigint NOT NULL,
  event_id text NOT NULL UNIQUE,
  event jsonb NOT NULL,
  enqueued_at_ms bigint NOT NULL,
  UNIQUE (entity_id, sequence)
);
CREATE INDEX outbox_enqueued_at_ms_idx ON outbox (enqueued_at_ms);

-- The highest position ever pruned, so the high watermark never goes back.
CREATE TABLE outbox_state (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO outbox_state DEFAULT VALUES;

-- Subscriber groups; events at or below start_position are not for the group.
CREATE TABLE delivery_groups (
  group_name text PRIMARY KEY,
  start_position bigint NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now()
);

-- Delivery state per (group, entity): written with each enqueue (enqueued_through), advanced by
-- ack/dead letter (settled_sequence). The head (lowest unsettled event) is leased on this row.
CREATE TABLE deliveries (
  group_name text NOT NULL,
  entity_id text NOT NULL,
  enqueued_through bigint NOT NULL,
  settled_sequence bigint NOT NULL DEFAULT 0,
  attempts integer NOT NULL DEFAULT 0,
  -- NULL: due now.
  next_attempt_at_ms bigint,
  lease_owner text,
  -- NULL: not leased.
  lease_until_ms bigint,
  PRIMARY KEY (group_name, entity_id)
);
-- Only rows with undelivered events: claim and pendingCount scan the backlog, not every entity.
CREATE INDEX deliveries_pending_idx ON deliveries (group_name, entity_id) WHERE enqueued_through > settled_sequence;

CREATE TABLE dead_letters (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  group_name text NOT NULL,
  entity_id text NOT NULL,
  sequence bigint NOT NULL,
  event_id text NOT NULL,
  event jsonb NOT NULL,
  attempts integer NOT NULL,
  last_error text NOT NULL,
  dead_at_ms bigint NOT NULL
);
CREATE INDEX dead_letters_group_name_idx ON dead_letters (group_name, id);
`;

const HISTORY_MAINTENANCE = `
-- Flap detection state of each entity (SPEC §10). history: its newest evaluated statuses, one
-- letter each (h, d, u), oldest first; NULL when the record has none. flapping_from: its status
-- when flapping started; '' when it is not flapping; NULL when the record has none.
ALTER TABLE entities
  ADD COLUMN history text,
  ADD COLUMN flapping_from text CHECK (flapping_from IN ('', 'healthy', 'degraded', 'unhealthy'));

-- Run statistics per slice and UTC hour or day (SPEC §9). Every run adds into its slice's hourly
-- bucket with one INSERT … ON CONFLICT DO UPDATE (counts and sums add up, min/max combine, sketch
-- bins add up key by key), so concurrent writers never lose a run. Retention rolls hours into days.
CREATE TABLE buckets (
  system_id text NOT NULL,
  check_id text NOT NULL,
  environment_id text,
  environment_key text GENERATED ALWAYS AS (coalesce(':' || environment_id, '')) STORED,
  granularity text NOT NULL CHECK (granularity IN ('hour', 'day')),
  start_ms bigint NOT NULL,
  runs bigint NOT NULL,
  healthy bigint NOT NULL,
  degraded bigint NOT NULL,
  unhealthy bigint NOT NULL,
  latency_count bigint NOT NULL,
  latency_sum double precision NOT NULL,
  -- NULL: no run of the bucket reported a latency.
  latency_min double precision,
  latency_max double precision,
  -- The latency sketch: values too small to map, and bin key -> count (a JSON object of integers).
  sketch_zero bigint NOT NULL,
  sketch_bins jsonb NOT NULL,
  -- Key order serves queryBuckets (one system, one granularity, a start range) and
  -- listBucketsBefore (some systems, one granularity, start before) as well as the upsert.
  PRIMARY KEY (system_id, granularity, start_ms, check_id, environment_key)
);
-- listSystemsWithBucketsBefore and the daily prune: old buckets of one granularity, any system.
CREATE INDEX buckets_granularity_start_ms_idx ON buckets (granularity, start_ms, system_id);

-- Maintenance windows (SPEC §11). started_entities: the entities that received
-- maintenance_started (NULL until the start boundary was processed); ended: whether
-- maintenance_ended was emitted.
CREATE TABLE maintenance (
  maintenance_id text PRIMARY KEY,
  entity_id text NOT NULL,
  system_id text NOT NULL,
  -- NULL: the window covers the whole system.
  environment_id text,
  start_ms bigint NOT NULL,
  end_ms bigint NOT NULL,
  reason text,
  started_entities jsonb,
  ended boolean NOT NULL,
  created_at_ms bigint NOT NULL
);
CREATE INDEX maintenance_system_id_idx ON maintenance (system_id);
-- Windows with a boundary left to process: findDueMaintenance reads only these, so processed
-- windows cost nothing however many accumulate.
CREATE INDEX maintenance_open_idx ON maintenance (system_id, start_ms, end_ms) WHERE started_entities IS NULL OR NOT ended;

-- Retention (prune) deletes by age. IF NOT EXISTS: on a large schema an operator may build these
-- two first with CREATE INDEX CONCURRENTLY (this transaction cannot), so the migration does not
-- block inserts into runs and transitions while they build.
CREATE INDEX IF NOT EXISTS runs_run_at_ms_idx ON runs (run_at_ms);
CREATE INDEX IF NOT EXISTS transitions_occurred_at_ms_idx ON transitions (occurred_at_ms);
`;

const ASSIGNMENT_FLAPPING = `
-- Per-assignment override of the engine's flap settings (SPEC §10): a JSON object with any of
-- enabled, low, high; NULL: no override. Existing assignments keep none.
ALTER TABLE assignments ADD COLUMN flapping jsonb;
`;

const STATE_VERSIONS = `
-- The version of each system's state (system, assignments, slices, entities): an opaque token
-- that every transaction writing any of those rows of the system replaces with its own, so an
-- engine that keeps a system's state in memory reads the token instead of the rows
-- (StoreTransaction.getStateVersions). A system without a row is read in full.
CREATE TABLE state_versions (
  system_id text PRIMARY KEY,
  version   text NOT NULL
);

-- Writers that do not stamp versions themselves (a process running an adapter version from
-- before this migration, during a rolling upgrade, or SQL of your own outside the adapter) must
-- still change them, or engines would keep using state those writers replaced: a row written to
-- one of the four tables by a transaction that has not set healthstate.state_version gives its
-- system a fresh random version. The adapter sets it, and writes the versions itself, in one
-- statement per transaction. The test is the triggers' WHEN clause, evaluated by the executor per
-- row: for the adapter's own writes no trigger is queued and no function is called (a plpgsql
-- call per row took about 6 % of a batch's write statement).
CREATE FUNCTION bump_state_version() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format(
    'INSERT INTO %I.state_versions AS v (system_id, version) VALUES ($1, $2)
     ON CONFLICT (system_id) DO UPDATE SET version = EXCLUDED.version',
    TG_TABLE_SCHEMA)
  USING CASE WHEN TG_OP = 'DELETE' THEN OLD.system_id ELSE NEW.system_id END, gen_random_uuid()::text;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER systems_state_version AFTER INSERT OR UPDATE OR DELETE ON systems
  FOR EACH ROW WHEN (coalesce(current_setting('healthstate.state_version', true), '') = '')
  EXECUTE FUNCTION bump_state_version();
CREATE TRIGGER assignments_state_version AFTER INSERT OR UPDATE OR DELETE ON assignments
  FOR EACH ROW WHEN (coalesce(current_setting('healthstate.state_version', true), '') = '')
  EXECUTE FUNCTION bump_state_version();
CREATE TRIGGER slices_state_version AFTER INSERT OR UPDATE OR DELETE ON slices
  FOR EACH ROW WHEN (coalesce(current_setting('healthstate.state_version', true), '') = '')
  EXECUTE FUNCTION bump_state_version();
CREATE TRIGGER entities_state_version AFTER INSERT OR UPDATE OR DELETE ON entities
  FOR EACH ROW WHEN (coalesce(current_setting('healthstate.state_version', true), '') = '')
  EXECUTE FUNCTION bump_state_version();
`;

const BUCKET_DELTAS = `
-- Hourly bucket additions not yet folded into buckets. Every run used to add into its slice's
-- hourly bucket with an upsert, the costliest statement of a unit of work (a conflict check, a
-- row lock and a new version of a wide row, per run). addToBuckets now appends plain rows here
-- and folds a system's rows into buckets in one statement (DELETE … RETURNING, summed per bucket,
-- one upsert per bucket) once it finds enough of them pending. Readers add the
-- pending rows of what they read; retention folds a system's rows before rolling its hours.
-- Several rows may hold additions to one bucket: the key is a row number, there so that a
-- publication (logical replication, CDC) covering the schema still allows the fold's DELETE.
CREATE TABLE bucket_deltas (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  system_id text NOT NULL,
  check_id text NOT NULL,
  environment_id text,
  start_ms bigint NOT NULL,
  runs bigint NOT NULL,
  healthy bigint NOT NULL,
  degraded bigint NOT NULL,
  unhealthy bigint NOT NULL,
  latency_count bigint NOT NULL,
  latency_sum double precision NOT NULL,
  latency_min double precision,
  latency_max double precision,
  sketch_zero bigint NOT NULL,
  sketch_bins jsonb NOT NULL
);
-- Reads and folds select one system's rows (and a range of starts).
CREATE INDEX bucket_deltas_system_id_start_ms_idx ON bucket_deltas (system_id, start_ms);
`;

const TRANSITIONS_BY_ENTITY_TIME = `
-- An entity's transitions by time: availability and maintenance boundaries read the part of one
-- entity's log from a time on (listTransitions with from), which the primary key (entity_id,
-- sequence) serves only by walking the entity's whole log, and transitions (occurred_at_ms) only
-- by walking every entity's transitions since that time. IF NOT EXISTS: on a large schema an
-- operator may build it first with CREATE INDEX CONCURRENTLY (this transaction cannot), so the
-- migration does not block inserts into transitions while it builds. A CONCURRENTLY build that
-- failed leaves an invalid index of that name, which the planner never uses: it is dropped here
-- and built again.
DO $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relname = 'transitions_entity_id_occurred_at_ms_idx'
       AND c.relnamespace = current_schema()::regnamespace
       AND NOT i.indisvalid
  ) THEN
    -- Qualified: an unqualified name could resolve to a temporary index of the session first.
    EXECUTE format('DROP INDEX %I.%I', current_schema(), 'transitions_entity_id_occurred_at_ms_idx');
  END IF;
END
$$;
CREATE INDEX IF NOT EXISTS transitions_entity_id_occurred_at_ms_idx ON transitions (entity_id, occurred_at_ms);
`;

/** The adapter's migrations, in the order they are applied. Never edit one that was released. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  Object.freeze({ id: "0001_initial", sql: INITIAL.trim() + "\n" }),
  Object.freeze({ id: "0002_history_maintenance", sql: HISTORY_MAINTENANCE.trim() + "\n" }),
  Object.freeze({ id: "0003_assignment_flapping", sql: ASSIGNMENT_FLAPPING.trim() + "\n" }),
  Object.freeze({ id: "0004_state_versions", sql: STATE_VERSIONS.trim() + "\n" }),
  Object.freeze({ id: "0005_bucket_deltas", sql: BUCKET_DELTAS.trim() + "\n" }),
  Object.freeze({ id: "0006_transitions_by_entity_time", sql: TRANSITIONS_BY_ENTITY_TIME.trim() + "\n" }),
]);

/** The checksum `migrate` records for a migration: SHA-256 (hex) of its SQL text. */
export function migrationChecksum(migration: Migration): string {
  return createHash("sha256").update(migration.sql, "utf8").digest("hex");
}

/** An applied migration's recorded checksum differs from the one this version ships. */
export class MigrationChecksumError extends Error {
  readonly migrationId: string;
  readonly expected: string;
  readonly actual: string;

  constructor(schema: string, migrationId: string, expected: string, actual: string) {
    super(
      `healthstate migration ${migrationId} in schema "${schema}" was applied with checksum ${actual}, but this version ships ${expected}: ` +
        "the migration text changed after it was applied. Refusing to continue; restore the original migration or migrate a fresh schema.",
    );
    this.name = "MigrationChecksumError";
    this.migrationId = migrationId;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Options of `migrate`. */
export interface MigrateOptions {
  /** Schema to create and migrate. Must match `^[a-z_][a-z0-9_]{0,62}$`. @default "healthstate" */
  readonly schema?: string;
  /** `lock_timeout` while migrating (DDL waits for running transactions). @default 60000 */
  readonly lockTimeoutMs?: number;
  /** The migrations to apply. For tests of the migrator itself. @default MIGRATIONS */
  readonly migrations?: readonly Migration[];
}

/**
 * Creates the schema and applies every migration not applied yet, in order, in one transaction at
 * READ COMMITTED, serialized across processes by `pg_advisory_xact_lock` on a constant key, so
 * concurrent callers migrate once and the others find nothing to do. Applied migrations are
 * recorded in `<schema>.migrations (id, checksum, applied_at)`.
 *
 * Idempotent. Migrations recorded but unknown to this version (applied by a newer one) are left
 * alone, so an older process of a rolling deploy still starts.
 *
 * @returns the ids applied by this call (empty when the schema was up to date).
 * @throws ValidationError (rejects, before any SQL) for an invalid schema name or client.
 * @throws MigrationChecksumError (rejects, nothing applied) when an applied migration's recorded
 *   checksum differs from the shipped one.
 */
export async function migrate(client: PostgresClient, options: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const names = schemaNames(options.schema === undefined ? DEFAULT_SCHEMA : options.schema);
  const sql = toSqlClient(client);
  const migrations = options.migrations ?? MIGRATIONS;
  const lockTimeoutMs = options.lockTimeoutMs ?? 60_000;
  const q = names.quoted;
  return sql.transaction(
    async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK_KEY.toString()]);
      await tx.exec(
        `CREATE SCHEMA IF NOT EXISTS ${q}; ` +
          `CREATE TABLE IF NOT EXISTS ${q}.migrations (id text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await tx.query<{ id: string; checksum: string }>(`SELECT id, checksum FROM ${q}.migrations`);
      const recorded = new Map(rows.map((row) => [row.id, row.checksum]));
      const pending: Migration[] = [];
      for (const migration of migrations) {
        const checksum = recorded.get(migration.id);
        if (checksum === undefined) pending.push(migration);
        else if (checksum !== migrationChecksum(migration)) {
          throw new MigrationChecksumError(names.schema, migration.id, migrationChecksum(migration), checksum);
        }
      }
      if (pending.length === 0) return { applied: [] };
      await tx.exec(`SET LOCAL search_path TO ${q}`);
      for (const migration of pending) {
        await tx.exec(migration.sql);
        await tx.query(`INSERT INTO ${q}.migrations (id, checksum) VALUES ($1, $2)`, [migration.id, migrationChecksum(migration)]);
      }
      return { applied: pending.map((migration) => migration.id) };
    },
    { lockTimeoutMs, idleInTransactionTimeoutMs: 0 },
  );
}
