import {
  mergeBuckets,
  type AdapterCapabilities,
  type AssignmentRecord,
  type BucketGranularity,
  type BucketKey,
  type BucketQuery,
  type EntityRecord,
  type FlappingOverride,
  type HealthEntityState,
  type HealthEvent,
  type HealthStatus,
  type HealthStore,
  type HealthTransitionRecord,
  type MaintenanceRecord,
  type RunBucket,
  type SliceKey,
  type SliceRecord,
  type SliceState,
  type StoreTransaction,
  type StoredRun,
  type SystemRecord,
  type Thresholds,
  type TransitionQuery,
} from "healthstate";
import { randomUUID } from "node:crypto";
import { MAX_FOLD_SYSTEMS, type AdapterContext, type BucketDeltaStage } from "./context";
import { advisoryLockKey } from "./lock-keys";
import { withRetry } from "./retry";
import { combineWrites, type PendingWrite } from "./write-batch";
import { sqlState, type SqlQueryable } from "./sql-client";
import {
  arrayLiteral,
  compareStrings,
  compositeKey,
  dateToMs,
  isoToMs,
  jsonRows,
  lastByKey,
  limitOf,
  msToIso,
  toFloat,
  toInt,
} from "./sql-values";

/** What `Transaction.#load` reads: a table's rows for some systems. */
type LoadKind = "systems" | "assignments" | "slices" | "entities" | "maintenance" | "runIds" | "versions" | "pendingDeltas";

interface PendingLoad {
  readonly kind: LoadKind;
  /** The system ids (the run ids for `runIds`) as an array literal. */
  readonly ids: string;
  /** How many ids. */
  readonly count: number;
  readonly resolve: (rows: object[]) => void;
  readonly reject: (error: unknown) => void;
}

/** The statement of each load, given the schema and the placeholder of its system ids. */
const LOAD_SQL: Readonly<Record<LoadKind, (q: string, systemIds: string) => string>> = {
  systems: (q, ids) => `SELECT system_id, environment_ids FROM ${q}.systems WHERE system_id = ANY(${ids}::text[])`,
  assignments: (q, ids) =>
    `SELECT system_id, check_id, thresholds, environment_ids, enabled, paused, flapping FROM ${q}.assignments WHERE system_id = ANY(${ids}::text[])`,
  slices: (q, ids) => `SELECT system_id, check_id, environment_id, state FROM ${q}.slices WHERE system_id = ANY(${ids}::text[])`,
  entities: (q, ids) =>
    `SELECT ${ENTITY_COLUMNS} FROM ${q}.entities WHERE system_id = ANY(${ids}::text[])`,
  maintenance: (q, ids) =>
    `SELECT ${MAINTENANCE_COLUMNS} FROM ${q}.maintenance WHERE system_id = ANY(${ids}::text[])`,
  runIds: (q, ids) => `SELECT run_id FROM ${q}.runs WHERE run_id = ANY(${ids}::text[])`,
  versions: (q, ids) => `SELECT system_id, version FROM ${q}.state_versions WHERE system_id = ANY(${ids}::text[])`,
  pendingDeltas: (q, ids) => `SELECT system_id, count(*)::int AS n FROM ${q}.bucket_deltas WHERE system_id = ANY(${ids}::text[]) GROUP BY system_id`,
};

/**
 * Above this many ids in the loads sent together, they go as separate plain statements rather than
 * one statement of `json_agg` subqueries: aggregating rows into JSON on the server and parsing
 * it in the client costs more than a few round trips once a load returns thousands of rows
 * (measured: loading 630 systems in one statement took 2.8× as long as in five).
 */
const COALESCE_MAX_IDS = 64;

/** What a call on a transaction gets once its callback has settled. */
function endedError(): Error {
  return new Error("postgres adapter: this transaction has ended (a call on it came after its callback settled)");
}

/** Marks a deferred write whose plan does not depend on the tables' contents (`PendingWrite.prepare`). */
const FIXED_PLAN = true;

/**
 * A deferred write of at least this many rows is sent at once, with the writes deferred before
 * it, instead of waiting for the next read or COMMIT (pg Pools only): the server executes it while
 * the engine computes the rest of the unit of work. A batch of 1,000 runs sends its runs and
 * bucket deltas (one statement: they are written together) before the kernel steps its slices,
 * then each later write of this size as it is called (with whatever was deferred before it);
 * small units of work (single calls) keep all their writes in one statement.
 */
export const EAGER_WRITE_ROWS = 256;

/** How a transaction serializes with others, computed from its lock keys. */
type LockPlan =
  | { readonly mode: "none" }
  /** Share the barrier, then one exclusive advisory lock per key, in ascending numeric order. */
  | { readonly mode: "keys"; readonly keys: readonly string[] }
  /** Too many keys for the lock table: hold the barrier exclusively, which excludes every keyed transaction. */
  | { readonly mode: "barrier" };

/** The advisory locks a transaction with `lockKeys` takes (exported for tests and diagnostics). */
export function lockPlan(schema: string, lockKeys: readonly string[], maxLockKeys: number): LockPlan {
  const distinct = new Set(lockKeys);
  // Too many distinct keys: the barrier, without hashing them all (a batch of 1,000 runs has about
  // 2,000 keys; SHA-256 of each was 3 % of its client time). Two keys could share an advisory key
  // only by a 64-bit collision, and the barrier excludes whatever the keys would have.
  if (distinct.size > maxLockKeys) return { mode: "barrier" };
  const keys = [...new Set([...distinct].map((key) => advisoryLockKey(schema, key)))].sort((a, b) =>
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
    let stage: BucketDeltaStage | undefined;
    const result = await withRetry(ctx.retry, () => {
      // Each attempt its own state version, announced to the schema's triggers (migration 0004)
      // so that they leave the versions to this transaction.
      const stateVersion = randomUUID();
      return ctx.sql.transaction(
        async (sql) => {
          const tx = new Transaction(sql, ctx, plan.mode !== "none", stateVersion);
          try {
            const value = await fn(tx);
            await tx.settle();
            ctx.lifecycle.assertOpen("store.transaction (commit)");
            enqueued = tx.enqueued;
            stage = tx.bucketDeltaStage;
            return value;
          } finally {
            // A call `fn` left running (a sibling of a rejected `Promise.all`) must not reach the
            // connection after ROLLBACK or COMMIT, nor in the next transaction that borrows it.
            tx.end();
          }
        },
        { ...ctx.settings, prelude: [`SET LOCAL healthstate.state_version = '${stateVersion}'`, lockSql(plan, ctx.barrierKey)].filter((part) => part !== "").join("; ") },
      );
    });
    // Committed: the last attempt's appends and looks now count (see `BucketDeltaCounter`).
    if (stage !== undefined) ctx.bucketDeltas.commit(stage);
    if (enqueued) ctx.hub.notify();
    return result;
  }

  async getEntitiesById(entityIds: readonly string[]): Promise<EntityRecord[]> {
    this.#ctx.lifecycle.assertOpen("store.getEntitiesById");
    if (entityIds.length === 0) return [];
    const { rows } = await this.#ctx.sql.query<EntityRow>(
      `SELECT ${ENTITY_COLUMNS} FROM ${this.#q}.entities WHERE entity_id = ANY($1::text[])`,
      [arrayLiteral([...new Set(entityIds)])],
    );
    return rows.map(toEntity);
  }

  async listTransitions(query: TransitionQuery): Promise<HealthTransitionRecord[]> {
    this.#ctx.lifecycle.assertOpen("store.listTransitions");
    return selectTransitions(this.#ctx.sql, this.#q, query);
  }

  /** Ordered by start (as an instant), then by maintenance id in code-unit order, as the memory adapter. */
  async listMaintenance(query: { readonly maintenanceId?: string; readonly systemId?: string }): Promise<MaintenanceRecord[]> {
    this.#ctx.lifecycle.assertOpen("store.listMaintenance");
    const { rows } = await this.#ctx.sql.query<MaintenanceRow>(
      `SELECT ${MAINTENANCE_COLUMNS} FROM ${this.#q}.maintenance
        WHERE ($1::text IS NULL OR maintenance_id = $1::text) AND ($2::text IS NULL OR system_id = $2::text)
        ORDER BY start_ms, maintenance_id COLLATE "C"`,
      [query.maintenanceId ?? null, query.systemId ?? null],
    );
    return rows.map(toMaintenance).sort(compareWindows);
  }

  /**
   * Sorted system ids, each once. Reads only windows with a boundary left to process (the partial
   * index `maintenance_open_idx`); the predicate is `hasDueBoundary` of `healthstate`.
   */
  async findDueMaintenance(now: Date): Promise<string[]> {
    this.#ctx.lifecycle.assertOpen("store.findDueMaintenance");
    const { rows } = await this.#ctx.sql.query<{ system_id: string }>(
      `SELECT DISTINCT system_id FROM ${this.#q}.maintenance
        WHERE (started_entities IS NULL OR NOT ended)
          AND CASE WHEN started_entities IS NULL THEN start_ms <= $1::bigint ELSE end_ms <= $1::bigint END`,
      [dateToMs(now, "now")],
    );
    return rows.map((row) => row.system_id).sort(compareStrings);
  }

  /**
   * Ordered oldest first, then by slice (system, check, environment; env-less first), as the
   * memory adapter. Hourly buckets include their pending deltas (`bucket_deltas`), read in the
   * same statement as the buckets, so a fold committing meanwhile is seen entirely or not at all.
   */
  async queryBuckets(query: BucketQuery): Promise<RunBucket[]> {
    this.#ctx.lifecycle.assertOpen("store.queryBuckets");
    const from = dateToMs(query.from, "from");
    const to = dateToMs(query.to, "to");
    const filter = "system_id = $1 AND start_ms >= $3::bigint AND start_ms < $4::bigint AND ($5::text IS NULL OR environment_id = $5::text)";
    const { rows } = await this.#ctx.sql.query<BucketRow>(
      `SELECT ${BUCKET_COLUMNS} FROM ${this.#q}.buckets WHERE granularity = $2 AND ${filter}
       UNION ALL
       SELECT ${DELTA_COLUMNS} FROM ${this.#q}.bucket_deltas WHERE $2 = 'hour' AND ${filter}`,
      [query.systemId, query.granularity, from, to, query.environmentId ?? null],
    );
    return mergeBucketRows(rows).sort(compareBuckets);
  }

  /**
   * Sorted system ids, each once (index `buckets_granularity_start_ms_idx`; the pending deltas,
   * few by design, are scanned).
   */
  async listSystemsWithBucketsBefore(query: { readonly granularity: BucketGranularity; readonly before: Date }): Promise<string[]> {
    this.#ctx.lifecycle.assertOpen("store.listSystemsWithBucketsBefore");
    const { rows } = await this.#ctx.sql.query<{ system_id: string }>(
      `SELECT system_id FROM ${this.#q}.buckets WHERE granularity = $1 AND start_ms < $2::bigint
       UNION
       SELECT system_id FROM ${this.#q}.bucket_deltas WHERE $1 = 'hour' AND start_ms < $2::bigint`,
      [query.granularity, dateToMs(query.before, "before")],
    );
    return rows.map((row) => row.system_id).sort(compareStrings);
  }

  /**
   * Retention, as the memory adapter's `prune`: deletes runs whose timestamp is before
   * `runsBefore`, daily buckets starting before `dailyBefore`, transitions that occurred before
   * `transitionsBefore` except each entity's newest (highest sequence), and maintenance windows
   * fully processed (`started_entities IS NOT NULL AND ended`) whose end is before
   * `transitionsBefore`. Each part runs as statements of at most `PRUNE_BATCH` rows, each
   * statement its own short transaction (retried after a deadlock or lock timeout), so neither
   * the lock table nor the WAL of one transaction grows with the backlog. Idempotent: a statement
   * only deletes what is still past its horizon, so running it again, or after a crash halfway,
   * deletes the rest and never too much.
   */
  async prune(options: {
    readonly runsBefore: Date;
    readonly dailyBefore: Date;
    readonly transitionsBefore: Date;
  }): Promise<{ readonly runs: number; readonly daily: number; readonly transitions: number; readonly maintenance: number }> {
    this.#ctx.lifecycle.assertOpen("store.prune");
    const runsBefore = dateToMs(options.runsBefore, "runsBefore");
    const dailyBefore = dateToMs(options.dailyBefore, "dailyBefore");
    const transitionsBefore = dateToMs(options.transitionsBefore, "transitionsBefore");
    const q = this.#q;
    const runs = await this.#deleteInBatches(
      `DELETE FROM ${q}.runs WHERE run_id IN (SELECT run_id FROM ${q}.runs WHERE run_at_ms < $1::bigint LIMIT $2)`,
      runsBefore,
    );
    const daily = await this.#deleteInBatches(
      `DELETE FROM ${q}.buckets b USING (
         SELECT system_id, granularity, start_ms, check_id, environment_key FROM ${q}.buckets
          WHERE granularity = 'day' AND start_ms < $1::bigint LIMIT $2) old
        WHERE b.system_id = old.system_id AND b.granularity = old.granularity AND b.start_ms = old.start_ms
          AND b.check_id = old.check_id AND b.environment_key = old.environment_key`,
      dailyBefore,
    );
    // Per entity with a transition before the horizon: every transition before its first one (by
    // sequence) at or after the horizon took effect before it, and the kept part starts at the one
    // of them with the latest occurred_at (the last one on a tie), so every kept transition keeps
    // its effective time (see `HealthStore.prune`). min() stops at the entity's first recent row (a
    // primary-key probe); the top-1 reads the rows before it, the ones the batch deletes from.
    // Scalar subqueries, not EXISTS, keep them per-entity probes rather than hash joins that read
    // the whole table for every batch.
    const transitions = await this.#deleteInBatches(
      `DELETE FROM ${q}.transitions t USING (
         SELECT o.entity_id, o.sequence
           FROM (SELECT DISTINCT entity_id FROM ${q}.transitions WHERE occurred_at_ms < $1::bigint) e
           CROSS JOIN LATERAL (
             SELECT p.sequence AS keep_from FROM ${q}.transitions p
              WHERE p.entity_id = e.entity_id
                AND p.sequence < coalesce(
                  (SELECT min(m.sequence) FROM ${q}.transitions m WHERE m.entity_id = e.entity_id AND m.occurred_at_ms >= $1::bigint),
                  9223372036854775807)
              ORDER BY p.occurred_at_ms DESC, p.sequence DESC
              LIMIT 1
           ) k
           JOIN ${q}.transitions o ON o.entity_id = e.entity_id AND o.sequence < k.keep_from
          LIMIT $2) old
        WHERE t.entity_id = old.entity_id AND t.sequence = old.sequence`,
      transitionsBefore,
    );
    const maintenance = await this.#deleteInBatches(
      `DELETE FROM ${q}.maintenance WHERE maintenance_id IN (
         SELECT maintenance_id FROM ${q}.maintenance
          WHERE started_entities IS NOT NULL AND ended AND end_ms < $1::bigint LIMIT $2)`,
      transitionsBefore,
    );
    return { runs, daily, transitions, maintenance };
  }

  /** Runs a `DELETE … LIMIT $2` statement (`$1`: the horizon) until it deletes fewer than a batch; returns the total. */
  async #deleteInBatches(statement: string, horizon: number): Promise<number> {
    const ctx = this.#ctx;
    let total = 0;
    for (;;) {
      ctx.lifecycle.assertOpen("store.prune");
      const { rows } = await withRetry(ctx.retry, () =>
        ctx.sql.query<{ n: unknown }>(`WITH deleted AS (${statement} RETURNING 1) SELECT count(*) AS n FROM deleted`, [horizon, PRUNE_BATCH]),
      );
      const deleted = toInt(rows[0]?.n ?? 0);
      total += deleted;
      if (deleted < PRUNE_BATCH) return total;
    }
  }
}

/** Rows deleted per statement by `prune`. */
const PRUNE_BATCH = 10_000;

/** An entity's transitions in sequence order, `from ≤ occurredAt < to`, the `limit` highest sequences. */
async function selectTransitions(sql: SqlQueryable, q: string, query: TransitionQuery): Promise<HealthTransitionRecord[]> {
  const { rows } = await sql.query<TransitionRow>(
    `SELECT * FROM (
       SELECT entity_id, sequence, system_id, environment_id, previous_status, new_status, occurred_at_ms, run_id, check_id
         FROM ${q}.transitions
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
      query.limit === undefined ? null : limitOf(query.limit),
    ],
  );
  return rows.map(toTransition);
}

/**
 * The statement that takes a transaction's advisory locks, sent in the same message as `BEGIN`
 * (one round trip). Keys are the decimal strings of `advisoryLockKey`, checked again here because
 * they are written into the text (the simple protocol has no parameters). In `keys` mode the
 * barrier is shared first, then every key exclusively: unnest yields the sorted array in order and
 * the target list is evaluated row by row, so every transaction takes its locks in the same
 * global order.
 */
export function lockSql(plan: LockPlan, barrierKey: string): string {
  const key = (value: string) => {
    if (!/^-?\d{1,20}$/u.test(value)) throw new TypeError(`postgres adapter: invalid advisory lock key ${JSON.stringify(value)}`);
    return value;
  };
  switch (plan.mode) {
    case "none":
      return "";
    case "barrier":
      return `SELECT pg_advisory_xact_lock(${key(barrierKey)}::bigint)`;
    case "keys":
      return `SELECT pg_advisory_xact_lock_shared(${key(barrierKey)}::bigint); SELECT pg_advisory_xact_lock(k) FROM unnest('{${plan.keys.map(key).join(",")}}'::bigint[]) AS k`;
  }
}

/** A `StoreTransaction` of the Postgres adapter, which can also run your own SQL atomically with it. */
export interface PostgresStoreTransaction extends StoreTransaction {
  /**
   * Runs one statement of your own in this transaction (same connection, same COMMIT). Use `$n`
   * parameters; `int8` comes back as a decimal string. Remember that the transaction may be run
   * again after a transient failure. Do not write the adapter's own tables with it (above all
   * `systems`, `assignments`, `slices` and `entities`, whose state engines keep by version): go
   * through the store methods. Writes of your own outside an adapter transaction are safe for the
   * cache (the schema's triggers give the system a new version) but not for the engine's locks.
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
  /** Loads requested and not sent yet (see `#load`). */
  readonly #loads: PendingLoad[] = [];
  /** Writes deferred and not sent yet (see `#write`); always later in call order than `#loads`. */
  readonly #writes: PendingWrite[] = [];
  /** A send of the deferred writes is queued (`EAGER_WRITE_ROWS`). */
  #sendScheduled = false;
  /** `fn` has settled: every later call rejects, and nothing more is sent (see `end`). */
  #ended = false;
  /** Write statements sent and not awaited yet; `settle` awaits them. */
  readonly #sent: Promise<unknown>[] = [];
  /** This attempt's state version token (see `StoreTransaction.stateVersion`). */
  readonly stateVersion: string;
  /** The first failure of a deferred write (see `#cause`). */
  #writeError: unknown = undefined;
  /** Systems whose state (system, assignments, slices, entities) this attempt wrote. */
  readonly #stateWritten = new Set<string>();
  /** Systems whose pending bucket deltas to look at (and fold if enough) before COMMIT (`addToBuckets`). */
  readonly #foldLooks = new Set<string>();
  /** This attempt's appends and looks, for the adapter's counts once it commits (`BucketDeltaCounter`). */
  readonly bucketDeltaStage: BucketDeltaStage = new Map();

  constructor(sql: SqlQueryable, ctx: AdapterContext, barrierHeld: boolean, stateVersion: string) {
    this.stateVersion = stateVersion;
    this.#sql = sql;
    this.#ctx = ctx;
    this.#q = ctx.names.quoted;
    this.#barrierHeld = barrierHeld;
  }

  /**
   * Ends this attempt once `fn` has settled (before ROLLBACK or COMMIT): what is pending is
   * dropped, pending loads reject, and every later call rejects without reaching the connection.
   */
  end(): void {
    this.#ended = true;
    this.#writes.length = 0;
    for (const load of this.#loads.splice(0)) load.reject(endedError());
  }

  #assertActive(): void {
    if (this.#ended) throw endedError();
  }

  /**
   * The connection, for every statement but loads and writes: pending loads, then deferred
   * writes, are sent first, so statements reach the server in the order they were called (a read
   * sees the writes called before it, and none called after it). A statement that fails because
   * a deferred write aborted the transaction rejects with the write's error (`#cause`).
   */
  #db(): SqlQueryable {
    this.#assertActive();
    this.#flushLoads();
    this.#sendWrites();
    const sql = this.#sql;
    const cause = (error: unknown) => this.#cause(error);
    return {
      async query<R extends object>(text: string, params?: readonly unknown[]) {
        try {
          return await sql.query<R>(text, params);
        } catch (error) {
          throw cause(error);
        }
      },
      async exec(text: string) {
        try {
          await sql.exec(text);
        } catch (error) {
          throw cause(error);
        }
      },
    };
  }

  /**
   * Defers a write (see write-batch.ts): it is sent with the writes after it, as few statements
   * as their tables allow, before the next read, statement of your own or COMMIT. The returned
   * promise resolves at once; a failure of the write fails the transaction (`settle` rejects with
   * it, so COMMIT is never sent), the same outcome as a failed statement awaited on the spot.
   */
  #write(table: string | null, text: string, params: readonly unknown[], prepare = false, rows = 1): Promise<void> {
    if (this.#ended) return Promise.reject(endedError());
    this.#writes.push({ table, text, params, prepare });
    if (rows >= EAGER_WRITE_ROWS && !this.#sendScheduled && this.#ctx.sql.kind === "pg") {
      // At the end of the caller's synchronous code, so writes issued together (the engine's runs
      // and buckets) still go as one statement. Pending loads were called earlier and go first;
      // nothing is reordered, only sent sooner.
      this.#sendScheduled = true;
      queueMicrotask(() => {
        this.#sendScheduled = false;
        // After `end` there is nothing pending: both calls do nothing.
        this.#flushLoads();
        this.#sendWrites();
      });
    }
    return Promise.resolve();
  }

  #sendWrites(): void {
    if (this.#writes.length === 0) return;
    for (const statement of combineWrites(this.#writes.splice(0))) {
      const sent = this.#sql.query(statement.text, statement.params, { prepare: statement.prepare });
      // Observed by `settle`; a later statement on the aborted transaction fails too, so nothing is lost.
      sent.catch((error: unknown) => {
        this.#writeError ??= error;
      });
      this.#sent.push(sent);
    }
  }

  /** Sends everything pending and waits for it: the transaction's writes have all succeeded when it resolves. */
  async settle(): Promise<void> {
    if (this.#stateWritten.size > 0) {
      // First among the pending writes, so it joins their statement (the outbox insert, when there
      // is one, comes last and goes on its own).
      this.#writes.unshift({
        table: "state_versions",
        text: `INSERT INTO ${this.#q}.state_versions AS v (system_id, version) SELECT unnest($1::text[]), $2
               ON CONFLICT (system_id) DO UPDATE SET version = EXCLUDED.version`,
        params: [arrayLiteral([...this.#stateWritten].sort(compareStrings)), this.stateVersion],
        prepare: FIXED_PLAN,
      });
      this.#stateWritten.clear();
    }
    if (this.#foldLooks.size > 0) {
      // Last, so that it splits no combined statement: one statement more, not two.
      const { foldAfter } = this.#ctx.bucketDeltas;
      // `foldBucketDeltasAfter: 1` promises that nothing stays pending after a write: no cap.
      this.#writes.push(this.#fold([...this.#foldLooks], foldAfter, foldAfter === 1 ? null : MAX_FOLD_SYSTEMS));
      this.#foldLooks.clear();
    }
    this.#flushLoads();
    this.#sendWrites();
    // Every statement answered before settling, so nothing of this transaction is still on its way
    // when the caller rolls back; the first failure is the one reported.
    const outcomes = await Promise.allSettled(this.#sent.splice(0));
    const failed = outcomes.find((outcome) => outcome.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  }

  /**
   * The error to report for a statement that failed: a read sent after a failed deferred write
   * fails only because the transaction is aborted (25P02); the write's own error says why.
   */
  #cause(error: unknown): unknown {
    return this.#writeError !== undefined && sqlState(error) === "25P02" ? this.#writeError : error;
  }

  /**
   * Loads the rows of one table for some systems (or which run ids exist). Loads called together
   * (the engine loads its workspaces with `Promise.all` over getSystems, getAssignments, getSlices,
   * getEntities and getMaintenance, together with findRunIds) are sent as one statement, one
   * round trip instead of six: each load is a scalar subquery aggregating its rows with
   * `json_agg(row)`, so every row keeps its column names and decodes as if queried alone. Above
   * `COALESCE_MAX_IDS` ids they are sent as plain statements, back to back. A load waits at most
   * until the current synchronous code ends (a microtask), or until another statement is called.
   */
  #load<R extends object>(kind: LoadKind, ids: readonly string[]): Promise<R[]> {
    if (this.#ended) return Promise.reject(endedError());
    if (this.#writes.length > 0) {
      // Earlier loads go first, then the writes called before this load, so it sees them.
      this.#flushLoads();
      this.#sendWrites();
    }
    const unique = [...new Set(ids)];
    return new Promise<R[]>((resolve, reject) => {
      this.#loads.push({ kind, ids: arrayLiteral(unique), count: unique.length, resolve: resolve as (rows: object[]) => void, reject });
      if (this.#loads.length === 1) queueMicrotask(() => this.#flushLoads());
    });
  }

  #flushLoads(): void {
    const loads = this.#loads.splice(0);
    if (loads.length === 0) return;
    const total = loads.reduce((sum, load) => sum + load.count, 0);
    if (loads.length === 1 || total > COALESCE_MAX_IDS) {
      for (const load of loads) {
        this.#sql.query(LOAD_SQL[load.kind](this.#q, "$1"), [load.ids]).then(
          ({ rows }) => load.resolve(rows),
          (error: unknown) => load.reject(this.#cause(error)),
        );
      }
      return;
    }
    const columns = loads.map(
      (load, index) => `(SELECT coalesce(json_agg(r), '[]'::json) FROM (${LOAD_SQL[load.kind](this.#q, `$${index + 1}`)}) AS r) AS l${index}`,
    );
    this.#sql
      .query<Record<string, object[]>>(`SELECT ${columns.join(", ")}`, loads.map((load) => load.ids))
      .then(
        ({ rows: [row] }) => loads.forEach((load, index) => load.resolve(row?.[`l${index}`] ?? [])),
        (error: unknown) => loads.forEach((load) => load.reject(this.#cause(error))),
      );
  }

  async query<R extends object = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.#db().query<R>(text, params)).rows;
  }

  async getSystems(systemIds: readonly string[]): Promise<SystemRecord[]> {
    if (systemIds.length === 0) return [];
    const rows = await this.#load<{ system_id: string; environment_ids: string[] }>("systems", systemIds);
    return rows.map((row) => ({ systemId: row.system_id, environmentIds: row.environment_ids }));
  }

  async listSystemIds(): Promise<string[]> {
    const { rows } = await this.#db().query<{ system_id: string }>(`SELECT system_id FROM ${this.#q}.systems`);
    return rows.map((row) => row.system_id);
  }

  /**
   * Also reads, with the versions (the same statement up to `COALESCE_MAX_IDS` ids), how many
   * bucket deltas are pending for the systems this adapter has not appended to yet: an engine
   * reads the versions of a unit of work's systems first, so its later `addToBuckets` knows when a
   * fold is due without a statement of its own (see `BucketDeltaCounter`).
   */
  async getStateVersions(systemIds: readonly string[]): Promise<{ systemId: string; version: string }[]> {
    if (systemIds.length === 0) return [];
    const counter = this.#ctx.bucketDeltas;
    const unknown = [...new Set(systemIds)].filter((systemId) => !counter.knows(systemId, this.bucketDeltaStage));
    const [rows] = await Promise.all([
      this.#load<{ system_id: string; version: string }>("versions", systemIds),
      unknown.length === 0
        ? undefined
        : this.#load<{ system_id: string; n: number }>("pendingDeltas", unknown).then((pending) =>
            counter.seed(unknown, new Map(pending.map((row) => [row.system_id, toInt(row.n)]))),
          ),
    ]);
    return rows.map((row) => ({ systemId: row.system_id, version: row.version }));
  }

  /** Marks systems whose state this transaction writes (their version becomes `stateVersion` at commit). */
  #touch(systemIds: Iterable<string>): void {
    for (const systemId of systemIds) this.#stateWritten.add(systemId);
  }

  async putSystem(system: SystemRecord): Promise<void> {
    this.#touch([system.systemId]);
    await this.#write("systems",
      `INSERT INTO ${this.#q}.systems (system_id, environment_ids) VALUES ($1, $2::jsonb)
       ON CONFLICT (system_id) DO UPDATE SET environment_ids = EXCLUDED.environment_ids`,
      [system.systemId, JSON.stringify(system.environmentIds)],
      FIXED_PLAN,
    );
  }

  async deleteSystem(systemId: string): Promise<void> {
    this.#touch([systemId]);
    await this.#write("systems", `DELETE FROM ${this.#q}.systems WHERE system_id = $1`, [systemId]);
  }

  async getAssignments(systemIds: readonly string[]): Promise<AssignmentRecord[]> {
    if (systemIds.length === 0) return [];
    const rows = await this.#load<AssignmentRow>("assignments", systemIds);
    return rows.map((row) => ({
      systemId: row.system_id,
      checkId: row.check_id,
      thresholds: row.thresholds,
      environmentIds: row.environment_ids,
      enabled: row.enabled,
      paused: row.paused,
      ...(row.flapping === null ? {} : { flapping: row.flapping }),
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
      flapping: a.flapping ?? null,
    }));
    if (rows.length === 0) return;
    this.#touch(assignments.map((a) => a.systemId));
    await this.#write("assignments",
      `INSERT INTO ${this.#q}.assignments AS a (system_id, check_id, thresholds, environment_ids, enabled, paused, flapping)
       SELECT system_id, check_id, thresholds, environment_ids, enabled, paused, flapping
         FROM jsonb_to_recordset($1::jsonb)
           AS x(system_id text, check_id text, thresholds jsonb, environment_ids jsonb, enabled boolean, paused boolean, flapping jsonb)
       ON CONFLICT (system_id, check_id) DO UPDATE
         SET thresholds = EXCLUDED.thresholds, environment_ids = EXCLUDED.environment_ids,
             enabled = EXCLUDED.enabled, paused = EXCLUDED.paused, flapping = EXCLUDED.flapping`,
      [jsonRows(rows)],
      FIXED_PLAN,
    );
  }

  async deleteAssignments(keys: readonly { readonly systemId: string; readonly checkId: string }[]): Promise<void> {
    if (keys.length === 0) return;
    this.#touch(keys.map((key) => key.systemId));
    await this.#write("assignments",
      `DELETE FROM ${this.#q}.assignments a
        USING jsonb_to_recordset($1::jsonb) AS x(system_id text, check_id text)
        WHERE a.system_id = x.system_id AND a.check_id = x.check_id`,
      [jsonRows(keys.map((key) => ({ system_id: key.systemId, check_id: key.checkId })))],
    );
  }

  async getSlices(systemIds: readonly string[]): Promise<SliceRecord[]> {
    if (systemIds.length === 0) return [];
    const rows = await this.#load<{ system_id: string; check_id: string; environment_id: string | null; state: SliceState }>("slices", systemIds);
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
    this.#touch(slices.map((slice) => slice.systemId));
    await this.#write("slices",
      `INSERT INTO ${this.#q}.slices (system_id, check_id, environment_id, state)
       SELECT system_id, check_id, environment_id, state
         FROM jsonb_to_recordset($1::jsonb) AS x(system_id text, check_id text, environment_id text, state jsonb)
       ON CONFLICT (system_id, check_id, environment_key) DO UPDATE SET state = EXCLUDED.state`,
      [jsonRows(rows)],
      FIXED_PLAN,
      rows.length,
    );
  }

  async deleteSlices(keys: readonly SliceKey[]): Promise<void> {
    if (keys.length === 0) return;
    this.#touch(keys.map((key) => key.systemId));
    await this.#write("slices",
      `DELETE FROM ${this.#q}.slices s
        USING jsonb_to_recordset($1::jsonb) AS x(system_id text, check_id text, environment_id text)
        WHERE s.system_id = x.system_id AND s.check_id = x.check_id
          AND s.environment_key = coalesce(':' || x.environment_id, '')`,
      [jsonRows(keys.map((key) => ({ system_id: key.systemId, check_id: key.checkId, environment_id: key.environmentId })))],
    );
  }

  async getEntities(systemIds: readonly string[]): Promise<EntityRecord[]> {
    if (systemIds.length === 0) return [];
    return (await this.#load<EntityRow>("entities", systemIds)).map(toEntity);
  }

  /**
   * `history` and `flappingFrom` round-trip exactly: an absent field is stored as NULL and read
   * back absent; `flappingFrom: null` is stored as `''` (not flapping) and read back `null`.
   */
  async putEntities(entities: readonly EntityRecord[]): Promise<void> {
    const rows = lastByKey(entities, (e) => e.entityId).map((e) => ({
      entity_id: e.entityId,
      system_id: e.systemId,
      environment_id: e.environmentId,
      state: e.state,
      sequence: e.sequence,
      history: e.history ?? null,
      flapping_from: e.flappingFrom === undefined ? null : (e.flappingFrom ?? ""),
    }));
    if (rows.length === 0) return;
    this.#touch(entities.map((entity) => entity.systemId));
    await this.#write("entities",
      `INSERT INTO ${this.#q}.entities (entity_id, system_id, environment_id, state, sequence, history, flapping_from)
       SELECT entity_id, system_id, environment_id, state, sequence, history, flapping_from
         FROM jsonb_to_recordset($1::jsonb)
           AS x(entity_id text, system_id text, environment_id text, state jsonb, sequence bigint, history text, flapping_from text)
       ON CONFLICT (entity_id) DO UPDATE
         SET system_id = EXCLUDED.system_id, environment_id = EXCLUDED.environment_id,
             state = EXCLUDED.state, sequence = EXCLUDED.sequence,
             history = EXCLUDED.history, flapping_from = EXCLUDED.flapping_from`,
      [jsonRows(rows)],
      FIXED_PLAN,
      rows.length,
    );
  }

  async findRunIds(runIds: readonly string[]): Promise<string[]> {
    if (runIds.length === 0) return [];
    const rows = await this.#load<{ run_id: string }>("runIds", runIds);
    return rows.map((row) => row.run_id);
  }

  async insertRuns(runs: readonly StoredRun[]): Promise<void> {
    if (runs.length === 0) return;
    await this.#write("runs",
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
      FIXED_PLAN,
      runs.length,
    );
  }

  async appendTransitions(transitions: readonly HealthTransitionRecord[]): Promise<void> {
    if (transitions.length === 0) return;
    await this.#write("transitions",
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
      FIXED_PLAN,
      transitions.length,
    );
  }

  async enqueueEvents(events: readonly HealthEvent[]): Promise<void> {
    if (events.length === 0) return;
    const params = [
      jsonRows(events.map((event, ord) => ({ ord, entity_id: event.entityId, sequence: event.sequence, event_id: event.eventId, event }))),
      dateToMs(this.#ctx.clock(), "clock()"),
      this.#ctx.names.channel,
    ];
    // Both writes are queued before anything is awaited, so a call made right after this one
    // (without awaiting it) still reaches the database after them.
    const lock = this.#barrierHeld
      ? Promise.resolve()
      : // Group registration holds the barrier exclusively: a group is either visible to the
        // statement below or registered after this transaction commits (and then sees its events).
        this.#write(null, "SELECT pg_advisory_xact_lock_shared($1::bigint)", [this.#ctx.barrierKey], FIXED_PLAN);
    this.#barrierHeld = true;
    const q = this.#q;
    // Its own statement (it has a WITH of its own and a side effect in its SELECT), deferred too.
    const insert = this.#write(
      null,
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
      params,
      FIXED_PLAN,
    );
    this.enqueued = true;
    await Promise.all([lock, insert]);
  }

  async listTransitions(query: TransitionQuery): Promise<HealthTransitionRecord[]> {
    return selectTransitions(this.#db(), this.#q, query);
  }

  async getMaintenance(systemIds: readonly string[]): Promise<MaintenanceRecord[]> {
    if (systemIds.length === 0) return [];
    return (await this.#load<MaintenanceRow>("maintenance", systemIds)).map(toMaintenance);
  }

  /**
   * Creates or replaces windows (a repeated id keeps the last). Rejects with a `TypeError`, before
   * any SQL, when a window's `start`, `end` or `createdAt` is not an ISO 8601 time. Times are
   * stored as epoch milliseconds and read back in canonical ISO form (`toISOString`).
   */
  async putMaintenance(windows: readonly MaintenanceRecord[]): Promise<void> {
    const rows = lastByKey(windows, (w) => w.maintenanceId).map((w) => ({
      maintenance_id: w.maintenanceId,
      entity_id: w.entityId,
      system_id: w.systemId,
      environment_id: w.environmentId,
      start_ms: isoToMs(w.start, "maintenance start"),
      end_ms: isoToMs(w.end, "maintenance end"),
      reason: w.reason,
      started_entities: w.startedEntities,
      ended: w.ended,
      created_at_ms: isoToMs(w.createdAt, "maintenance createdAt"),
    }));
    if (rows.length === 0) return;
    await this.#write("maintenance",
      `INSERT INTO ${this.#q}.maintenance
         (maintenance_id, entity_id, system_id, environment_id, start_ms, end_ms, reason, started_entities, ended, created_at_ms)
       SELECT maintenance_id, entity_id, system_id, environment_id, start_ms, end_ms, reason, started_entities, ended, created_at_ms
         FROM jsonb_to_recordset($1::jsonb)
           AS x(maintenance_id text, entity_id text, system_id text, environment_id text, start_ms bigint, end_ms bigint,
                reason text, started_entities jsonb, ended boolean, created_at_ms bigint)
       ON CONFLICT (maintenance_id) DO UPDATE
         SET entity_id = EXCLUDED.entity_id, system_id = EXCLUDED.system_id, environment_id = EXCLUDED.environment_id,
             start_ms = EXCLUDED.start_ms, end_ms = EXCLUDED.end_ms, reason = EXCLUDED.reason,
             started_entities = EXCLUDED.started_entities, ended = EXCLUDED.ended, created_at_ms = EXCLUDED.created_at_ms`,
      [jsonRows(rows)],
      FIXED_PLAN,
    );
  }

  async deleteMaintenance(maintenanceIds: readonly string[]): Promise<void> {
    if (maintenanceIds.length === 0) return;
    await this.#write("maintenance", `DELETE FROM ${this.#q}.maintenance WHERE maintenance_id = ANY($1::text[])`, [
      arrayLiteral([...new Set(maintenanceIds)]),
    ]);
  }

  /**
   * Hourly buckets are appended to `bucket_deltas` as plain rows (one `INSERT` whatever the
   * batch: no conflict check, no row lock, no wide row rewritten per run). When the adapter's
   * count of a system's pending rows reaches `foldBucketDeltasAfter` (a count read with the
   * state versions, or none yet: then at once), the transaction folds the system's pending
   * deltas into its buckets before COMMIT (its last statement), if at least that many are
   * pending (`FOLD_SQL`, `BucketDeltaCounter`).
   * Daily buckets (retention's rolls, rare) are upserted at once (`UPSERT_BUCKETS_SQL`). Either way
   * no concurrent addition is lost: deltas are only ever added and folded, and a fold's upsert
   * merges atomically per row. Keys repeated in the call are merged first (`mergeBuckets`).
   * Rejects with a `TypeError`, before any SQL, for a start that is not an ISO 8601 time or an
   * unknown granularity.
   */
  async addToBuckets(buckets: readonly RunBucket[]): Promise<void> {
    const rows = bucketRows(buckets);
    const hourly = rows.filter((row) => row.granularity === "hour");
    const daily = rows.filter((row) => row.granularity !== "hour");
    // No await between the writes: issued in one synchronous stretch, they are sent together.
    const writes: Promise<void>[] = [];
    if (daily.length > 0) writes.push(this.#write("buckets", UPSERT_BUCKETS_SQL(this.#q), [jsonRows(daily)], FIXED_PLAN, daily.length));
    if (hourly.length > 0) {
      writes.push(this.#write("bucket_deltas", INSERT_DELTAS_SQL(this.#q), [jsonRows(hourly)], FIXED_PLAN, hourly.length));
      const perSystem = new Map<string, number>();
      for (const row of hourly) perSystem.set(row.system_id as string, (perSystem.get(row.system_id as string) ?? 0) + 1);
      for (const systemId of this.#ctx.bucketDeltas.append(perSystem, this.bucketDeltaStage)) this.#foldLooks.add(systemId);
    }
    await Promise.all(writes);
  }

  /**
   * Folds every pending delta of those of the systems that have at least `minRows` pending into
   * their hourly buckets (deferred, as a write; its own statement: it changes two tables): at most
   * `maxSystems` of them (`null`: all), those with the most pending. Rows locked by a concurrent
   * fold are waited for, then found deleted and skipped: each delta is folded once.
   */
  #fold(systemIds: readonly string[], minRows: number, maxSystems: number | null): PendingWrite {
    const ids = arrayLiteral([...new Set(systemIds)].sort(compareStrings));
    return { table: null, text: FOLD_SQL(this.#q), params: [ids, minRows, maxSystems], prepare: false };
  }

  /** Absent keys are ignored. Rejects with a `TypeError`, before any SQL, for a start that is not an ISO 8601 time. */
  async deleteBuckets(keys: readonly BucketKey[]): Promise<void> {
    const rows = keys.map((key) => ({
      system_id: key.systemId,
      check_id: key.checkId,
      environment_id: key.environmentId,
      granularity: key.granularity,
      start_ms: isoToMs(key.start, "bucket start"),
    }));
    if (rows.length === 0) return;
    const keyRows = jsonRows(rows);
    // An hourly bucket's pending deltas go with it (one statement: two tables, one WITH).
    await Promise.all([
      this.#write("buckets",
        `DELETE FROM ${this.#q}.buckets b
          USING jsonb_to_recordset($1::jsonb) AS x(system_id text, check_id text, environment_id text, granularity text, start_ms bigint)
          WHERE b.system_id = x.system_id AND b.granularity = x.granularity AND b.start_ms = x.start_ms
            AND b.check_id = x.check_id AND b.environment_key = coalesce(':' || x.environment_id, '')`,
        [keyRows],
      ),
      this.#write("bucket_deltas",
        `DELETE FROM ${this.#q}.bucket_deltas d
          USING jsonb_to_recordset($1::jsonb) AS x(system_id text, check_id text, environment_id text, granularity text, start_ms bigint)
          WHERE x.granularity = 'hour' AND d.system_id = x.system_id AND d.start_ms = x.start_ms
            AND d.check_id = x.check_id AND d.environment_id IS NOT DISTINCT FROM x.environment_id`,
        [keyRows],
      ),
    ]);
  }

  /**
   * Oldest first, then by slice (system, check, environment; env-less first), as the memory
   * adapter; `limit` rounded down. For hourly buckets the systems' pending deltas are folded
   * first, in this transaction, so what is listed (and then deleted) is whole.
   */
  async listBucketsBefore(query: {
    readonly systemIds: readonly string[];
    readonly granularity: BucketGranularity;
    readonly before: Date;
    readonly limit: number;
  }): Promise<RunBucket[]> {
    const before = dateToMs(query.before, "before");
    const limit = limitOf(query.limit);
    if (query.systemIds.length === 0 || limit === 0) return [];
    if (query.granularity === "hour") {
      // Every pending row of every listed system, so that what is listed (and then deleted) is whole.
      const fold = this.#fold(query.systemIds, 1, null);
      await this.#write(fold.table, fold.text, fold.params);
      this.#ctx.bucketDeltas.folded(query.systemIds, this.bucketDeltaStage);
    }
    const { rows } = await this.#db().query<BucketRow>(
      `SELECT ${BUCKET_COLUMNS} FROM ${this.#q}.buckets
        WHERE system_id = ANY($1::text[]) AND granularity = $2 AND start_ms < $3::bigint
        ORDER BY ${BUCKET_ORDER}
        LIMIT $4`,
      [arrayLiteral([...new Set(query.systemIds)]), query.granularity, before, limit],
    );
    return rows.map(toBucket).sort(compareBuckets);
  }
}

const ENTITY_COLUMNS = "entity_id, system_id, environment_id, state, sequence, history, flapping_from";

interface EntityRow {
  entity_id: string;
  system_id: string;
  environment_id: string | null;
  state: HealthEntityState | null;
  sequence: unknown;
  history: string | null;
  /** `''`: not flapping (`flappingFrom: null`); NULL: absent. */
  flapping_from: HealthStatus | "" | null;
}

const MAINTENANCE_COLUMNS =
  "maintenance_id, entity_id, system_id, environment_id, start_ms, end_ms, reason, started_entities, ended, created_at_ms";

interface MaintenanceRow {
  maintenance_id: string;
  entity_id: string;
  system_id: string;
  environment_id: string | null;
  start_ms: unknown;
  end_ms: unknown;
  reason: string | null;
  started_entities: string[] | null;
  ended: boolean;
  created_at_ms: unknown;
}

/** A bucket's counts, sums and sketch: the columns `buckets` and `bucket_deltas` share after the key. */
const BUCKET_MEASURES = "runs, healthy, degraded, unhealthy, latency_count, latency_sum, latency_min, latency_max, sketch_zero, sketch_bins";

const BUCKET_COLUMNS = `system_id, check_id, environment_id, granularity, start_ms, ${BUCKET_MEASURES}`;

/** The columns of `bucket_deltas` written: a bucket's but `granularity` (always `hour`). */
const DELTA_INSERT_COLUMNS = `system_id, check_id, environment_id, start_ms, ${BUCKET_MEASURES}`;

/** `bucket_deltas` read as bucket rows (they are hourly). */
const DELTA_COLUMNS = `system_id, check_id, environment_id, 'hour'::text AS granularity, start_ms, ${BUCKET_MEASURES}`;

/** The record type of `bucketRows` parameters, for `jsonb_to_recordset`. */
const BUCKET_RECORD =
  "x(system_id text, check_id text, environment_id text, granularity text, start_ms bigint, " +
  "runs bigint, healthy bigint, degraded bigint, unhealthy bigint, latency_count bigint, " +
  "latency_sum double precision, latency_min double precision, latency_max double precision, " +
  "sketch_zero bigint, sketch_bins jsonb)";

/**
 * What `ON CONFLICT DO UPDATE` sets to add a bucket (`EXCLUDED`) into the stored one (`b`): counts
 * and sums add, `least`/`greatest` combine min and max ignoring NULLs, sketch bins add key by key
 * (`stored || {each delta key: stored + delta}`, so the cost follows the delta's bins, not the
 * stored ones). Atomic per row: a concurrent writer's addition waits for the row lock and then
 * adds onto the committed row; neither is lost.
 */
const ADD_INTO_STORED_BUCKET = `
         SET runs = b.runs + EXCLUDED.runs,
             healthy = b.healthy + EXCLUDED.healthy,
             degraded = b.degraded + EXCLUDED.degraded,
             unhealthy = b.unhealthy + EXCLUDED.unhealthy,
             latency_count = b.latency_count + EXCLUDED.latency_count,
             latency_sum = b.latency_sum + EXCLUDED.latency_sum,
             latency_min = least(b.latency_min, EXCLUDED.latency_min),
             latency_max = greatest(b.latency_max, EXCLUDED.latency_max),
             sketch_zero = b.sketch_zero + EXCLUDED.sketch_zero,
             sketch_bins = b.sketch_bins || coalesce(
               (SELECT jsonb_object_agg(d.key, coalesce((b.sketch_bins ->> d.key)::numeric, 0) + d.value::numeric)
                  FROM jsonb_each_text(EXCLUDED.sketch_bins) AS d),
               '{}'::jsonb)`;

/** Adds buckets (`bucketRows`, `$1`) into the stored ones, in key order so that two writers cannot deadlock. */
const UPSERT_BUCKETS_SQL = (q: string) => `INSERT INTO ${q}.buckets AS b (${BUCKET_COLUMNS})
       SELECT ${BUCKET_COLUMNS} FROM jsonb_to_recordset($1::jsonb) AS ${BUCKET_RECORD}
        ORDER BY system_id, granularity, start_ms, check_id, coalesce(':' || environment_id, '')
       ON CONFLICT (system_id, granularity, start_ms, check_id, environment_key) DO UPDATE${ADD_INTO_STORED_BUCKET}`;

/** Appends hourly bucket additions (`bucketRows`, `$1`) as delta rows. */
const INSERT_DELTAS_SQL = (q: string) => `INSERT INTO ${q}.bucket_deltas (${DELTA_INSERT_COLUMNS})
       SELECT ${DELTA_INSERT_COLUMNS} FROM jsonb_to_recordset($1::jsonb) AS ${BUCKET_RECORD}`;

/**
 * Folds every pending delta of those systems of `$1` (a text array) that have at least `$2` rows
 * pending, at most `$3` of them (those with the most; `NULL`: all), into their hourly buckets.
 * Systems that started together come due together (a fleet's first batch, then every
 * `foldBucketDeltasAfter` runs each): the cap spreads their folds over the next transactions,
 * where they drift apart, instead of one transaction folding tens of thousands of rows.
 *
 * The fold deletes the deltas, sums them per bucket (sketch bins key by key, from the bucket's
 * own bins gathered with `jsonb_agg`: no join, one sort) and adds each sum into its bucket as
 * `UPSERT_BUCKETS_SQL` does, in the same key order. One statement, so the deltas it deletes are
 * exactly the ones it adds. `= ANY(ARRAY(…))`, not `IN`:
 * the planner, which cannot know how few systems are due, otherwise hash-joins a scan of the whole
 * table (measured: 22 ms instead of 7 for 1,900 rows of 49,000).
 */
const FOLD_SQL = (q: string) => `WITH due AS (
         SELECT system_id FROM ${q}.bucket_deltas WHERE system_id = ANY($1::text[])
          GROUP BY system_id HAVING count(*) >= $2::int
          ORDER BY count(*) DESC, system_id LIMIT $3::int
       ), d AS (
         DELETE FROM ${q}.bucket_deltas WHERE system_id = ANY(ARRAY(SELECT system_id FROM due))
         RETURNING system_id, check_id, environment_id, coalesce(':' || environment_id, '') AS environment_key, start_ms, ${BUCKET_MEASURES}
       )
       INSERT INTO ${q}.buckets AS b (${BUCKET_COLUMNS})
       SELECT system_id, check_id, min(environment_id), 'hour', start_ms, sum(runs), sum(healthy), sum(degraded), sum(unhealthy),
              sum(latency_count), sum(latency_sum), min(latency_min), max(latency_max), sum(sketch_zero),
              (SELECT coalesce(jsonb_object_agg(bin.key, bin.n), '{}'::jsonb)
                 FROM (SELECT e.key, sum(e.value::numeric) AS n
                         FROM jsonb_array_elements(jsonb_agg(d.sketch_bins)) AS x(bins) CROSS JOIN LATERAL jsonb_each_text(x.bins) AS e
                        GROUP BY e.key) AS bin)
         FROM d GROUP BY system_id, check_id, environment_key, start_ms
        ORDER BY system_id, start_ms, check_id, environment_key
       ON CONFLICT (system_id, granularity, start_ms, check_id, environment_key) DO UPDATE${ADD_INTO_STORED_BUCKET}`;

/**
 * Buckets from rows of `buckets` and `bucket_deltas` read together: the rows of one key (a bucket
 * and its pending deltas, or deltas alone) merged into one bucket with `mergeBuckets`.
 */
function mergeBucketRows(rows: readonly BucketRow[]): RunBucket[] {
  const groups = new Map<string, RunBucket[]>();
  for (const row of rows) {
    const bucket = toBucket(row);
    const key = compositeKey(row.system_id, row.check_id, row.environment_id, row.granularity, toInt(row.start_ms));
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [bucket]);
    else group.push(bucket);
  }
  return [...groups.values()].map((group) => (group.length === 1 ? (group[0] as RunBucket) : mergeBuckets(group[0] as RunBucket, group)));
}

/**
 * Oldest first, then by slice; `COLLATE "C"` compares bytes (code points), the memory adapter
 * compares UTF-16 code units: the two differ only between characters above U+FFFF and those in
 * U+E000–U+FFFF, which is why results are sorted once more in TypeScript.
 */
const BUCKET_ORDER = `start_ms, system_id COLLATE "C", check_id COLLATE "C", environment_key COLLATE "C"`;

interface BucketRow {
  system_id: string;
  check_id: string;
  environment_id: string | null;
  granularity: BucketGranularity;
  start_ms: unknown;
  runs: unknown;
  healthy: unknown;
  degraded: unknown;
  unhealthy: unknown;
  latency_count: unknown;
  latency_sum: unknown;
  latency_min: unknown;
  latency_max: unknown;
  sketch_zero: unknown;
  sketch_bins: Record<string, unknown>;
}

interface AssignmentRow {
  system_id: string;
  check_id: string;
  thresholds: Thresholds;
  environment_ids: string[] | null;
  enabled: boolean;
  paused: boolean;
  flapping: FlappingOverride | null;
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
    ...(row.history === null ? {} : { history: row.history }),
    ...(row.flapping_from === null ? {} : { flappingFrom: row.flapping_from === "" ? null : row.flapping_from }),
  };
}

function toMaintenance(row: MaintenanceRow): MaintenanceRecord {
  return {
    maintenanceId: row.maintenance_id,
    entityId: row.entity_id,
    systemId: row.system_id,
    environmentId: row.environment_id,
    start: msToIso(row.start_ms),
    end: msToIso(row.end_ms),
    reason: row.reason,
    startedEntities: row.started_entities,
    ended: row.ended,
    createdAt: msToIso(row.created_at_ms),
  };
}

/** Earliest start first, then by maintenance id (code units). */
function compareWindows(a: MaintenanceRecord, b: MaintenanceRecord): number {
  return Date.parse(a.start) - Date.parse(b.start) || compareStrings(a.maintenanceId, b.maintenanceId);
}

/** Oldest start first, then by slice (system, check, environment with env-less first): the memory adapter's order. */
function compareBuckets(a: RunBucket, b: RunBucket): number {
  return (
    Date.parse(a.start) - Date.parse(b.start) ||
    compareStrings(a.systemId, b.systemId) ||
    compareStrings(a.checkId, b.checkId) ||
    compareStrings(a.environmentId ?? "", b.environmentId ?? "") ||
    (a.environmentId === null ? 0 : 1) - (b.environmentId === null ? 0 : 1)
  );
}

function toBucket(row: BucketRow): RunBucket {
  const bins: Record<string, number> = {};
  for (const [key, count] of Object.entries(row.sketch_bins)) bins[key] = toInt(count);
  return {
    systemId: row.system_id,
    checkId: row.check_id,
    environmentId: row.environment_id,
    granularity: row.granularity,
    start: msToIso(row.start_ms),
    runs: toInt(row.runs),
    healthy: toInt(row.healthy),
    degraded: toInt(row.degraded),
    unhealthy: toInt(row.unhealthy),
    latencyCount: toInt(row.latency_count),
    latencySum: toFloat(row.latency_sum),
    latencyMin: row.latency_min === null ? null : toFloat(row.latency_min),
    latencyMax: row.latency_max === null ? null : toFloat(row.latency_max),
    sketch: { zero: toInt(row.sketch_zero), bins },
  };
}

/**
 * The parameter rows of `addToBuckets`: every bucket validated (granularity, start), and those
 * naming one key (the start compared as an instant) merged with `mergeBuckets`, since one upsert
 * statement may not touch a row twice. Rows are built field by field: a spread (`{ ...bucket }`)
 * cost more than the rest of this function together on a batch of 1,000.
 */
function bucketRows(buckets: readonly RunBucket[]): Record<string, unknown>[] {
  const groups = new Map<string, { startMs: number; buckets: RunBucket[] }>();
  for (const bucket of buckets) {
    if (bucket.granularity !== "hour" && bucket.granularity !== "day") {
      throw new TypeError(`postgres adapter: bucket granularity must be "hour" or "day", got ${JSON.stringify(bucket.granularity)}`);
    }
    const startMs = isoToMs(bucket.start, "bucket start");
    const key = compositeKey(bucket.systemId, bucket.checkId, bucket.environmentId, bucket.granularity, startMs);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { startMs, buckets: [bucket] });
    else group.buckets.push(bucket);
  }
  const rows: Record<string, unknown>[] = [];
  for (const { startMs, buckets: group } of groups.values()) {
    const [first] = group as [RunBucket, ...RunBucket[]];
    const bucket = group.length === 1 ? first : mergeBuckets(first, group);
    rows.push({
      system_id: bucket.systemId,
      check_id: bucket.checkId,
      environment_id: bucket.environmentId,
      granularity: bucket.granularity,
      start_ms: startMs,
      runs: bucket.runs,
      healthy: bucket.healthy,
      degraded: bucket.degraded,
      unhealthy: bucket.unhealthy,
      latency_count: bucket.latencyCount,
      latency_sum: bucket.latencySum,
      latency_min: bucket.latencyMin,
      latency_max: bucket.latencyMax,
      sketch_zero: bucket.sketch.zero,
      sketch_bins: bucket.sketch.bins,
    });
  }
  return rows;
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
