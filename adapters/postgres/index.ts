// Entry of healthstate/adapters/postgres: the Postgres and PGlite reference adapter.
import { ValidationError, type AdapterCapabilities, type ConfigurationIssue, type HealthAdapter } from "healthstate";
import { BucketDeltaCounter, Lifecycle, barrierKeyOf, type AdapterContext } from "./context";
import { KeyedMutex } from "./keyed-mutex";
import { AvailabilityHub, pgListen, pgliteListen, type ListenStarter } from "./notifications";
import { PostgresEmitter } from "./postgres-emitter";
import { PostgresStore } from "./postgres-store";
import { DEFAULT_TRANSACTION_RETRY, type TransactionRetryOptions } from "./retry";
import { DEFAULT_SCHEMA, schemaNames } from "./schema-name";
import { isPgPool, isPglite, sqlState, toSqlClient, type PostgresClient, type QueryOptions, type SqlClient, type SqlQueryable } from "./sql-client";

export { KeyedMutex } from "./keyed-mutex";
export { advisoryLockKey } from "./lock-keys";
export { MIGRATIONS, MigrationChecksumError, migrate, migrationChecksum, type MigrateOptions, type Migration } from "./migrations";
export type { PostgresEmitter } from "./postgres-emitter";
export type { PostgresStore, PostgresStoreTransaction } from "./postgres-store";
export { TransactionRetriesExhaustedError, type TransactionRetryOptions } from "./retry";
export { DEFAULT_SCHEMA, SCHEMA_NAME_PATTERN } from "./schema-name";
export {
  CommitOutcomeUnknownError,
  type PGliteLike,
  type PGliteTransactionLike,
  type PgPoolClientLike,
  type PgPoolLike,
  type PostgresClient,
} from "./sql-client";

/** Options of `createPostgresAdapter`. */
export interface PostgresAdapterOptions {
  /**
   * A `pg` Pool or a PGlite instance, detected structurally. The adapter borrows it and never ends
   * or closes it: close the adapter first, then end the pool.
   */
  readonly client: PostgresClient;
  /** Schema holding the tables (see `migrate`). Must match `^[a-z_][a-z0-9_]{0,62}$`. @default "healthstate" */
  readonly schema?: string;
  /**
   * Clock stamping the enqueue time of outbox events, which `emitter.prune({ olderThan })`
   * compares with. Lease and retry times come from the engine's clock, never the database's.
   * @default () => new Date()
   */
  readonly clock?: () => Date;
  /** `lock_timeout` of store transactions, in ms; `0` waits forever. @default 10000 */
  readonly lockTimeoutMs?: number;
  /**
   * `idle_in_transaction_session_timeout` of store transactions, in ms, so a stalled process
   * cannot hold entity locks forever; `0` disables it. @default 60000
   */
  readonly idleInTransactionTimeoutMs?: number;
  /**
   * `statement_timeout` of store transactions, in ms, so one runaway statement cannot hold entity
   * locks; `0` disables it. A statement cancelled by it (57014) fails the call with a
   * `StoreError` and is not retried. @default 30000
   */
  readonly statementTimeoutMs?: number;
  /**
   * A transaction with more distinct lock keys than this takes one exclusive barrier lock instead
   * of one advisory lock per key (it then excludes every other keyed transaction of the schema
   * while it runs), so huge batches cannot exhaust the server's lock table.
   * @default 64
   */
  readonly maxLockKeys?: number;
  /**
   * Whether a pg Pool's connections keep the adapter's write statements whose plan cannot depend
   * on the tables' contents (the inserts and upserts of a unit of work, a few fixed texts) as named
   * prepared statements with generic plans, so the server parses and plans each once per
   * connection instead of once per call. Reads and deletes are never prepared (docs/postgres.md). Turn it off behind a pooler that
   * does not carry prepared statements across transactions (PgBouncer in transaction mode before
   * 1.21, or with `max_prepared_statements = 0`). Ignored for PGlite. @default true
   */
  readonly preparedStatements?: boolean;
  /**
   * How many hourly bucket delta rows of one system may be pending before they are folded into
   * its buckets. Every run adds into its slice's hourly bucket; an upsert per bucket on every
   * write was the costliest statement of a batch, so additions are appended as plain rows
   * (`bucket_deltas`), folded in bulk in a writing transaction that finds at least this many of
   * its system's pending (it looks on its adapter's first append of the system, and after every
   * this many more), and reads add what is pending (docs/postgres.md, *Bucket deltas*). Higher:
   * cheaper writes, more rows per read and in the table. `1` folds at every write (other values
   * fold at most 32 systems per transaction, those with the most pending). @default 64
   */
  readonly foldBucketDeltasAfter?: number;
  /** Retries of a transaction after a deadlock, lock timeout, serialization failure or lost connection. */
  readonly retry?: Partial<TransactionRetryOptions>;
  /**
   * Whether `onAvailable` listeners are woken by LISTEN/NOTIFY. For a pg Pool this holds one
   * pooled connection while a listener (an engine) is registered, so it is off for a pool whose
   * `max` is below 2; turn it off behind PgBouncer in transaction mode. Delivery then relies on
   * polling alone (the engine's `delivery.pollIntervalMs`). @default true
   */
  readonly listen?: boolean;
  /** Receives failures of the LISTEN connection (it reconnects by itself). @default ignore */
  readonly onBackgroundError?: (error: unknown) => void;
}

/** The Postgres adapter: the three ports, typed as their Postgres implementations. */
export interface PostgresAdapter extends HealthAdapter {
  readonly store: PostgresStore;
  readonly lock: KeyedMutex;
  readonly emitter: PostgresEmitter;
  /**
   * Stops the LISTEN connection (released back to the pool destroyed) and drops listeners; every
   * later store or emitter call rejects with a `ClosedError`. Never ends the caller's pool or
   * closes the caller's PGlite. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Creates the Postgres adapter over a `pg` Pool or a PGlite instance. Runs no SQL: call
 * `migrate(client, { schema })` once before (at deploy or at startup; it is idempotent and safe
 * to run concurrently from every process).
 *
 * Capabilities: a pg Pool is `{ durable: true, crossProcess: true }`; PGlite is
 * `{ durable: <it has a filesystem data directory>, crossProcess: false }` (one connection, one
 * process).
 *
 * @throws ValidationError for an invalid schema name, client or option, before any SQL runs.
 * @example
 * const pool = new pg.Pool({ connectionString, max: 10 });
 * await migrate(pool, { schema: "healthstate" });
 * const adapter = createPostgresAdapter({ client: pool });
 * const engine = createHealthEngine(adapter);
 */
export function createPostgresAdapter(options: PostgresAdapterOptions): PostgresAdapter {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError([{ path: [], message: "expected an options object { client, schema? }" }]);
  }
  const names = schemaNames(options.schema === undefined ? DEFAULT_SCHEMA : options.schema);
  const sql = withMigrationHint(toSqlClient(options.client, { prepare: options.preparedStatements ?? true }), names.schema);
  const issues: ConfigurationIssue[] = [];
  const lockTimeoutMs = nonNegativeInt(options.lockTimeoutMs, 10_000, "lockTimeoutMs", issues);
  const idleInTransactionTimeoutMs = nonNegativeInt(options.idleInTransactionTimeoutMs, 60_000, "idleInTransactionTimeoutMs", issues);
  const statementTimeoutMs = nonNegativeInt(options.statementTimeoutMs, 30_000, "statementTimeoutMs", issues);
  const maxLockKeys = nonNegativeInt(options.maxLockKeys, 64, "maxLockKeys", issues);
  const foldBucketDeltasAfter = nonNegativeInt(options.foldBucketDeltasAfter, 64, "foldBucketDeltasAfter", issues, 1);
  const retry: TransactionRetryOptions = {
    maxAttempts: nonNegativeInt(options.retry?.maxAttempts, DEFAULT_TRANSACTION_RETRY.maxAttempts, "retry.maxAttempts", issues, 1),
    initialDelayMs: nonNegativeInt(options.retry?.initialDelayMs, DEFAULT_TRANSACTION_RETRY.initialDelayMs, "retry.initialDelayMs", issues),
    maxDelayMs: nonNegativeInt(options.retry?.maxDelayMs, DEFAULT_TRANSACTION_RETRY.maxDelayMs, "retry.maxDelayMs", issues),
  };
  if (options.clock !== undefined && typeof options.clock !== "function") issues.push({ path: ["clock"], message: "must be a function" });
  if (options.preparedStatements !== undefined && typeof options.preparedStatements !== "boolean") {
    issues.push({ path: ["preparedStatements"], message: "must be a boolean" });
  }
  if (issues.length > 0) throw new ValidationError(issues);

  const onBackgroundError = options.onBackgroundError ?? (() => undefined);
  const client: unknown = options.client;
  let capabilities: AdapterCapabilities;
  let starter: ListenStarter | undefined;
  if (isPglite(client)) {
    const dataDir = client.dataDir;
    capabilities = Object.freeze({ durable: typeof dataDir === "string" && dataDir !== "" && !dataDir.startsWith("memory://"), crossProcess: false });
    starter = pgliteListen(client, names.channel, onBackgroundError);
  } else {
    capabilities = Object.freeze({ durable: true, crossProcess: true });
    // LISTEN holds a connection; on a pool of one it would starve every query, so polling alone it is.
    const max = isPgPool(client) ? (client.options?.max ?? 10) : 0;
    starter = isPgPool(client) && max >= 2 ? pgListen(client, names.channel, names.quotedChannel, onBackgroundError) : undefined;
  }
  const hub = new AvailabilityHub(options.listen === false ? undefined : starter);
  const lifecycle = new Lifecycle();
  const ctx: AdapterContext = {
    sql,
    names,
    capabilities,
    clock: options.clock ?? (() => new Date()),
    retry,
    settings: { lockTimeoutMs, idleInTransactionTimeoutMs, statementTimeoutMs },
    maxLockKeys,
    barrierKey: barrierKeyOf(names.schema),
    hub,
    lifecycle,
    bucketDeltas: new BucketDeltaCounter(foldBucketDeltasAfter),
  };
  return {
    store: new PostgresStore(ctx),
    lock: new KeyedMutex(),
    emitter: new PostgresEmitter(ctx),
    close: async () => {
      lifecycle.close();
      await hub.close();
    },
  };
}

function nonNegativeInt(
  value: number | undefined,
  fallback: number,
  name: string,
  issues: ConfigurationIssue[],
  min = 0,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    issues.push({ path: name.split("."), message: `must be an integer ≥ ${min}` });
    return fallback;
  }
  return value;
}

/**
 * Adds "did you run migrate?" to the errors a missing schema or table produces (SQLSTATE kept),
 * since `createPostgresAdapter` does not migrate by itself.
 */
function withMigrationHint(sql: SqlClient, schema: string): SqlClient {
  const hint = (error: unknown): unknown => {
    const state = sqlState(error);
    if (state !== "42P01" && state !== "3F000") return error;
    const message = error instanceof Error ? error.message : String(error);
    return Object.assign(
      new Error(`${message} (schema "${schema}" is missing or not migrated: call migrate(client, { schema: "${schema}" }) first)`, { cause: error }),
      { code: state },
    );
  };
  const wrap = (target: SqlQueryable): SqlQueryable => ({
    async query<R extends object>(text: string, params?: readonly unknown[], queryOptions?: QueryOptions) {
      try {
        return await target.query<R>(text, params, queryOptions);
      } catch (error) {
        throw hint(error);
      }
    },
    async exec(text: string) {
      try {
        await target.exec(text);
      } catch (error) {
        throw hint(error);
      }
    },
  });
  const outside = wrap(sql);
  return {
    kind: sql.kind,
    query: (text, params, queryOptions) => outside.query(text, params, queryOptions),
    exec: (text) => outside.exec(text),
    transaction: (fn, settings) => sql.transaction((tx) => fn(wrap(tx)), settings),
  };
}
