import type {
  AdapterCapabilities,
  AssignmentRecord,
  EntityRecord,
  HealthEntityState,
  HealthEvent,
  HealthStore,
  HealthTransitionRecord,
  SliceKey,
  SliceRecord,
  SliceState,
  StoreTransaction,
  StoredRun,
  SystemRecord,
  Thresholds,
  TransitionQuery,
} from "healthstate";
import type { AdapterContext } from "./context";
import { advisoryLockKey } from "./lock-keys";
import { withRetry } from "./retry";
import type { SqlQueryable } from "./sql-client";
import { arrayLiteral, compositeKey, dateToMs, isoToMs, jsonRows, lastByKey, msToIso, toInt } from "./sql-values";

/** How a transaction serializes with others, computed from its lock keys. */
type LockPlan =
  | { readonly mode: "none" }
  /** Share the barrier, then one exclusive advisory lock per key, in ascending numeric order. */
  | { readonly mode: "keys"; readonly keys: readonly string[] }
  /** Too many keys for the lock table: hold the barrier exclusively, which excludes every keyed transaction. */
  | { readonly mode: "barrier" };

/** The advisory locks a transaction with `lockKeys` takes (exported for tests and diagnostics). */
export function lockPlan(schema: string, lockKeys: readonly string[], maxLockKeys: number): LockPlan {
  const keys = [...new Set([...new Set(lockKeys)].map((key) => advisoryLockKey(schema, key)))].sort((a, b) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  if (keys.length === 0) return { mode: "none" };
  if (keys.length > maxLockKeys) return { mode: "barrier" };
  return { mode: "keys", keys: keys.map(String) };
}

/**
 * The Postgres `HealthStore`. Each `transaction` is one database transaction at READ COMMITTED on
 * one pooled connection (PGlite: its single connection), with `SET LOCAL lock_timeout`, holding
 * transaction-scoped advisory locks for its lock keys from its first statement to COMMIT. It is
 * retried as a whole (so `fn` must be safe to run again: it must read everything it needs through
 * `tx`) after a deadlock, a lock timeout, a serialization failure, or a connection lost before
 * COMMIT was sent; never after an ambiguous COMMIT.
 */
export class PostgresStore implements HealthStore {
  readonly capabilities: AdapterCapabilities;
  readonly #ctx: AdapterContext;
  readonly #q: string;

  constructor(ctx: AdapterContext) {
    this.#ctx = ctx;
    this.#q = ctx.names.quoted;
    this.capabilities = ctx.capabilities;
  }

  async transaction<T>(options: { readonly lockKeys: readonly string[] }, fn: (tx: PostgresStoreTransaction) => Promise<T>): Promise<T> {
    const ctx = this.#ctx;
    ctx.lifecycle.assertOpen("store.transaction");
    const plan = lockPlan(ctx.names.schema, options.lockKeys, ctx.maxLockKeys);
    let enqueued = false;
    const result = await withRetry(ctx.retry, () =>
      ctx.sql.transaction(async (sql) => {
        await takeLocks(sql, plan, ctx.barrierKey);
        const tx = new Transaction(sql, ctx, plan.mode !== "none");
        const value = await fn(tx);
        ctx.lifecycle.assertOpen("store.transaction (commit)");
        enqueued = tx.enqueued;
        return value;
      }, ctx.settings),
    );
    if (enqueued) ctx.hub.notify();
    return result;
  }

  async getEntitiesById(entityIds: readonly string[]): Promise<EntityRecord[]> {
    this.#ctx.lifecycle.assertOpen("store.getEntitiesById");
    if (entityIds.length === 0) return [];
    const { rows } = await this.#ctx.sql.query<EntityRow>(
      `SELECT entity_id, system_id, environment_id, state, sequence FROM ${this.#q}.entities WHERE entity_id = ANY($1::text[])`,
      [arrayLiteral([...new Set(entityIds)])],
    );
    return rows.map(toEntity);
  }

  async listTransitions(query: TransitionQuery): Promise<HealthTransitionRecord[]> {
    this.#ctx.lifecycle.assertOpen("store.listTransitions");
    const { rows } = await this.#ctx.sql.query<TransitionRow>(
      `SELECT * FROM (
         SELECT entity_id, sequence, system_id, environment_id, previous_status, new_status, occurred_at_ms, run_id, check_id
           FROM ${this.#q}.transitions
          WHERE entity_id = $1
            AND ($2::bigint IS NULL OR occurred_at_ms >= $2::bigint)
            AND ($3::bigint IS NULL OR occurred_at_ms < $3::bigint)
          ORDER BY sequence DESC
          LIMIT $4
       ) newest ORDER BY sequence`,
      [
        query.entityId,
        query.from === undefined ? null : dateToMs(query.from, "from"),
        query.to === undefined ? null : dateToMs(query.to, "to"),
        query.limit === undefined ? null : Math.max(0, Math.floor(query.limit)),
      ],
    );
    return rows.map(toTransition);
  }
}

async function takeLocks(sql: SqlQueryable, plan: LockPlan, barrierKey: string): Promise<void> {
  switch (plan.mode) {
    case "none":
      return;
    case "barrier":
      await sql.query("SELECT pg_advisory_xact_lock($1::bigint)", [barrierKey]);
      return;
    case "keys":
      // One round trip. UNION ALL runs its branches in order and unnest yields the (sorted) array
      // in order, so every transaction takes its locks in the same global order.
      await sql.query(
        `SELECT pg_advisory_xact_lock_shared($1::bigint)::text AS locked
          UNION ALL
         SELECT pg_advisory_xact_lock(key)::text FROM unnest($2::bigint[]) AS key`,
        [barrierKey, arrayLiteral(plan.keys)],
      );
      return;
  }
}

/** A `StoreTransaction` of the Postgres adapter, which can also run your own SQL atomically with it. */
export interface PostgresStoreTransaction extends StoreTransaction {
  /**
   * Runs one statement of your own in this transaction (same connection, same COMMIT). Use `$n`
   * parameters; `int8` comes back as a decimal string. Remember that the transaction may be run
   * again after a transient failure.
   */
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

class Transaction implements PostgresStoreTransaction {
  /** Whether this attempt enqueued events (listeners are woken after COMMIT). */
  enqueued = false;
  readonly #sql: SqlQueryable;
  readonly #ctx: AdapterContext;
  readonly #q: string;
  #barrierHeld: boolean;

  constructor(sql: SqlQueryable, ctx: AdapterContext, barrierHeld: boolean) {
    this.#sql = sql;
    this.#ctx = ctx;
    this.#q = ctx.names.quoted;
    this.#barrierHeld = barrierHeld;
  }

  async query<R extends object = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.#sql.query<R>(text, params)).rows;
  }

  async getSystems(systemIds: readonly string[]): Promise<SystemRecord[]> {
    if (systemIds.length === 0) return [];
    const { rows } = await this.#sql.query<{ system_id: string; environment_ids: string[] }>(
      `SELECT system_id, environment_ids FROM ${this.#q}.systems WHERE system_id = ANY($1::text[])`,
      [arrayLiteral(systemIds)],
    );
    return rows.map((row) => ({ systemId: row.system_id, environmentIds: row.environment_ids }));
  }

  async listSystemIds(): Promise<string[]> {
    const { rows } = await this.#sql.query<{ system_id: string }>(`SELECT system_id FROM ${this.#q}.systems`);
    return rows.map((row) => row.system_id);
  }

  async putSystem(system: SystemRecord): Promise<void> {
    await this.#sql.query(
      `INSERT INTO ${this.#q}.systems (system_id, environment_ids) VALUES ($1, $2::jsonb)
       ON CONFLICT (system_id) DO UPDATE SET environment_ids = EXCLUDED.environment_ids`,
      [system.systemId, JSON.stringify(system.environmentIds)],
    );
  }

  async deleteSystem(systemId: string): Promise<void> {
    await this.#sql.query(`DELETE FROM ${this.#q}.systems WHERE system_id = $1`, [systemId]);
  }

  async getAssignments(systemIds: readonly string[]): Promise<AssignmentRecord[]> {
    if (systemIds.length === 0) return [];
    const { rows } = await this.#sql.query<AssignmentRow>(
      `SELECT system_id, check_id, thresholds, environment_ids, enabled, paused
         FROM ${this.#q}.assignments WHERE system_id = ANY($1::text[])`,
      [arrayLiteral(systemIds)],
    );
    return rows.map((row) => ({
      systemId: row.system_id,
      checkId: row.check_id,
      thresholds: row.thresholds,
      environmentIds: row.environment_ids,
      enabled: row.enabled,
      paused: row.paused,
    }));
  }

  async putAssignments(assignments: readonly AssignmentRecord[]): Promise<void> {
    const rows = lastByKey(assignments, (a) => compositeKey(a.systemId, a.checkId)).map((a) => ({
      system_id: a.systemId,
      check_id: a.checkId,
      thresholds: a.thresholds,
      environment_ids: a.environmentIds,
      enabled: a.enabled,
      paused: a.paused,
    }));
    if (rows.length === 0) return;
    await this.#sql.query(
      `INSERT INTO ${this.#q}.assignments AS a (system_id, check_id, thresholds, environment_ids, enabled, paused)
       SELECT system_id, check_id, thresholds, environment_ids, enabled, paused
         FROM jsonb_to_recordset($1::jsonb)
           AS x(system_id text, check_id text, thresholds jsonb, environment_ids jsonb, enabled boolean, paused boolean)
       ON CONFLICT (system_id, check_id) DO UPDATE
         SET thresholds = EXCLUDED.thresholds, environment_ids = EXCLUDED.environment_ids,
             enabled = EXCLUDED.enabled, paused = EXCLUDED.paused`,
      [jsonRows(rows)],
    );
  }

  async deleteAssignments(keys: readonly { readonly systemId: string; readonly checkId: string }[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#sql.query(
      `DELETE FROM ${this.#q}.assignments a
        USING jsonb_to_recordset($1::jsonb) AS x(system_id text, check_id text)
        WHERE a.system_id = x.system_id AND a.check_id = x.check_id`,
      [jsonRows(keys.map((key) => ({ system_id: key.systemId, check_id: key.checkId })))],
    );
  }

  async getSlices(systemIds: readonly string[]): Promise<SliceRecord[]> {
    if (systemIds.length === 0) return [];
    const { rows } = await this.#sql.query<{ system_id: string; check_id: string; environment_id: string | null; state: SliceState }>(
      `SELECT system_id, check_id, environment_id, state FROM ${this.#q}.slices WHERE system_id = ANY($1::text[])`,
      [arrayLiteral(systemIds)],
    );
    return rows.map((row) => ({ systemId: row.system_id, checkId: row.check_id, environmentId: row.environment_id, state: row.state }));
  }

  async putSlices(slices: readonly SliceRecord[]): Promise<void> {
    const rows = lastByKey(slices, (s) => compositeKey(s.systemId, s.checkId, s.environmentId)).map((s) => ({
      system_id: s.systemId,
      check_id: s.checkId,
      environment_id: s.environmentId,
      state: s.state,
    }));
    if (rows.length === 0) return;
    await this.#sql.query(
      `INSERT INTO ${this.#q}.slices (system_id, check_id, environment_id, state)
       SELECT system_id, check_id, environment_id, state
         FROM jsonb_to_recordset($1::jsonb) AS x(system_id text, check_id text, environment_id text, state jsonb)
       ON CONFLICT (system_id, check_id, environment_key) DO UPDATE SET state = EXCLUDED.state`,
      [jsonRows(rows)],
    );
  }

  async deleteSlices(keys: readonly SliceKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#sql.query(
      `DELETE FROM ${this.#q}.slices s
        USING jsonb_to_recordset($1::jsonb) AS x(system_id text, check_id text, environment_id text)
        WHERE s.system_id = x.system_id AND s.check_id = x.check_id
          AND s.environment_key = coalesce(':' || x.environment_id, '')`,
      [jsonRows(keys.map((key) => ({ system_id: key.systemId, check_id: key.checkId, environment_id: key.environmentId })))],
    );
  }

  async getEntities(systemIds: readonly string[]): Promise<EntityRecord[]> {
    if (systemIds.length === 0) return [];
    const { rows } = await this.#sql.query<EntityRow>(
      `SELECT entity_id, system_id, environment_id, state, sequence FROM ${this.#q}.entities WHERE system_id = ANY($1::text[])`,
      [arrayLiteral(systemIds)],
    );
    return rows.map(toEntity);
  }

  async putEntities(entities: readonly EntityRecord[]): Promise<void> {
    const rows = lastByKey(entities, (e) => e.entityId).map((e) => ({
      entity_id: e.entityId,
      system_id: e.systemId,
      environment_id: e.environmentId,
      state: e.state,
      sequence: e.sequence,
    }));
    if (rows.length === 0) return;
    await this.#sql.query(
      `INSERT INTO ${this.#q}.entities (entity_id, system_id, environment_id, state, sequence)
       SELECT entity_id, system_id, environment_id, state, sequence
         FROM jsonb_to_recordset($1::jsonb)
           AS x(entity_id text, system_id text, environment_id text, state jsonb, sequence bigint)
       ON CONFLICT (entity_id) DO UPDATE
         SET system_id = EXCLUDED.system_id, environment_id = EXCLUDED.environment_id,
             state = EXCLUDED.state, sequence = EXCLUDED.sequence`,
      [jsonRows(rows)],
    );
  }

  async findRunIds(runIds: readonly string[]): Promise<string[]> {
    if (runIds.length === 0) return [];
    const { rows } = await this.#sql.query<{ run_id: string }>(
      `SELECT run_id FROM ${this.#q}.runs WHERE run_id = ANY($1::text[])`,
      [arrayLiteral([...new Set(runIds)])],
    );
    return rows.map((row) => row.run_id);
  }

  async insertRuns(runs: readonly StoredRun[]): Promise<void> {
    if (runs.length === 0) return;
    await this.#sql.query(
      `INSERT INTO ${this.#q}.runs (run_id, system_id, check_id, environment_id, status, latency_ms, run_at_ms, message, recorded_at_ms)
       SELECT run_id, system_id, check_id, environment_id, status, latency_ms, run_at_ms, message, recorded_at_ms
         FROM jsonb_to_recordset($1::jsonb)
           AS x(run_id text, system_id text, check_id text, environment_id text, status text,
                latency_ms double precision, run_at_ms bigint, message text, recorded_at_ms bigint)`,
      [
        jsonRows(
          runs.map((run) => ({
            run_id: run.runId,
            system_id: run.systemId,
            check_id: run.checkId,
            environment_id: run.environmentId,
            status: run.status,
            latency_ms: run.latencyMs,
            run_at_ms: isoToMs(run.timestamp, "timestamp"),
            message: run.message,
            recorded_at_ms: isoToMs(run.recordedAt, "recordedAt"),
          })),
        ),
      ],
    );
  }

  async appendTransitions(transitions: readonly HealthTransitionRecord[]): Promise<void> {
    if (transitions.length === 0) return;
    await this.#sql.query(
      `INSERT INTO ${this.#q}.transitions
         (entity_id, sequence, system_id, environment_id, previous_status, new_status, occurred_at_ms, run_id, check_id)
       SELECT entity_id, sequence, system_id, environment_id, previous_status, new_status, occurred_at_ms, run_id, check_id
         FROM jsonb_to_recordset($1::jsonb)
           AS x(entity_id text, sequence bigint, system_id text, environment_id text, previous_status text,
                new_status text, occurred_at_ms bigint, run_id text, check_id text)`,
      [
        jsonRows(
          transitions.map((t) => ({
            entity_id: t.entityId,
            sequence: t.sequence,
            system_id: t.systemId,
            environment_id: t.environmentId,
            previous_status: t.previousStatus,
            new_status: t.newStatus,
            occurred_at_ms: isoToMs(t.occurredAt, "occurredAt"),
            run_id: t.runId ?? null,
            check_id: t.checkId ?? null,
          })),
        ),
      ],
    );
  }

  async enqueueEvents(events: readonly HealthEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (!this.#barrierHeld) {
      // Group registration holds the barrier exclusively: a group is either visible to the
      // statement below or registered after this transaction commits (and then sees its events).
      await this.#sql.query("SELECT pg_advisory_xact_lock_shared($1::bigint)", [this.#ctx.barrierKey]);
      this.#barrierHeld = true;
    }
    const q = this.#q;
    await this.#sql.query(
      `WITH x AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(ord integer, entity_id text, sequence bigint, event_id text, event jsonb)
       ), inserted AS (
         INSERT INTO ${q}.outbox (entity_id, sequence, event_id, event, enqueued_at_ms)
         SELECT entity_id, sequence, event_id, event, $2::bigint FROM x ORDER BY ord
         RETURNING entity_id, sequence
       ), heads AS (
         SELECT entity_id, max(sequence) AS sequence FROM inserted GROUP BY entity_id
       ), delivered AS (
         INSERT INTO ${q}.deliveries AS d (group_name, entity_id, enqueued_through)
         SELECT g.group_name, h.entity_id, h.sequence
           FROM ${q}.delivery_groups g CROSS JOIN heads h
          ORDER BY g.group_name, h.entity_id
         ON CONFLICT (group_name, entity_id) DO UPDATE
           SET enqueued_through = greatest(d.enqueued_through, EXCLUDED.enqueued_through)
       )
       SELECT pg_notify($3, '')`,
      [
        jsonRows(
          events.map((event, ord) => ({ ord, entity_id: event.entityId, sequence: event.sequence, event_id: event.eventId, event })),
        ),
        dateToMs(this.#ctx.clock(), "clock()"),
        this.#ctx.names.channel,
      ],
    );
    this.enqueued = true;
  }
}

interface EntityRow {
  entity_id: string;
  system_id: string;
  environment_id: string | null;
  state: HealthEntityState | null;
  sequence: unknown;
}

interface AssignmentRow {
  system_id: string;
  check_id: string;
  thresholds: Thresholds;
  environment_ids: string[] | null;
  enabled: boolean;
  paused: boolean;
}

interface TransitionRow {
  entity_id: string;
  sequence: unknown;
  system_id: string;
  environment_id: string | null;
  previous_status: HealthTransitionRecord["previousStatus"];
  new_status: HealthTransitionRecord["newStatus"];
  occurred_at_ms: unknown;
  run_id: string | null;
  check_id: string | null;
}

function toEntity(row: EntityRow): EntityRecord {
  return {
    entityId: row.entity_id,
    systemId: row.system_id,
    environmentId: row.environment_id,
    state: row.state,
    sequence: toInt(row.sequence),
  };
}

function toTransition(row: TransitionRow): HealthTransitionRecord {
  return {
    entityId: row.entity_id,
    systemId: row.system_id,
    environmentId: row.environment_id,
    sequence: toInt(row.sequence),
    previousStatus: row.previous_status,
    newStatus: row.new_status,
    occurredAt: msToIso(row.occurred_at_ms),
    ...(row.run_id === null ? {} : { runId: row.run_id }),
    ...(row.check_id === null ? {} : { checkId: row.check_id }),
  };
}
