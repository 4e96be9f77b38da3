import { createHash } from "node:crypto";
import { ValidationError } from "healthstate";

/** A result row: column name → value, with `int8` already normalized (see `SqlQueryable.query`). */
export type Row = Record<string, unknown>;

/**
 * The structural seam between the adapter and a driver: a query with `$n` parameters and a
 * multi-statement `exec`. Parameters are only ever strings, numbers, booleans or `null`.
 */
export interface SqlQueryable {
  /**
   * Runs one statement. `int8` values come back as decimal strings whatever the driver. With
   * `prepare`, a `pg` connection keeps the statement prepared (named after a hash of its text)
   * and later runs it without parsing and planning it again; for the adapter's own statements
   * only, whose texts are few and fixed (see `preparedName`).
   */
  query<R extends object = Row>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<{ rows: R[] }>;
  /** Runs statements without parameters (simple protocol). */
  exec(text: string): Promise<void>;
}

/** How one statement is run. */
export interface QueryOptions {
  /** Keep the statement prepared on the connection (pg Pools whose adapter allows it). */
  readonly prepare?: boolean;
}

/** Per-transaction settings, applied with `SET LOCAL` right after `BEGIN`. */
export interface TransactionSettings {
  /** `lock_timeout` in milliseconds (0 = wait forever). */
  readonly lockTimeoutMs: number;
  /** `idle_in_transaction_session_timeout` in milliseconds (0 = none). */
  readonly idleInTransactionTimeoutMs: number;
  /** `statement_timeout` in milliseconds (0 = none). Absent: the server's setting. */
  readonly statementTimeoutMs?: number;
  /**
   * Statements without parameters to run right after the settings, in the same message as
   * `BEGIN` (one round trip): the adapter takes its advisory locks this way. A failure there (a
   * lock timeout, say) rolls the transaction back and rejects like a failure of `fn`.
   */
  readonly prelude?: string;
}

/** A pooled or embedded database the adapter can run transactions on. */
export interface SqlClient extends SqlQueryable {
  readonly kind: "pg" | "pglite";
  /**
   * Runs `fn` in one transaction at READ COMMITTED on one connection and commits; rolls back and
   * rethrows when `fn` rejects. A connection failure while COMMIT was in flight rejects with a
   * `CommitOutcomeUnknownError`: the transaction may or may not have committed.
   */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>, settings: TransactionSettings): Promise<T>;
}

/** The parts of a `pg` `PoolClient` the adapter uses. */
export interface PgPoolClientLike {
  query(text: string, values?: unknown[]): Promise<{ rows: Row[]; command?: string }>;
  query(config: { readonly name: string; readonly text: string; readonly values: unknown[] }): Promise<{ rows: Row[]; command?: string }>;
  release(destroy?: boolean | Error): void;
  on(event: "notification", listener: (message: { channel: string; payload?: string | undefined }) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  removeAllListeners(event?: string): unknown;
  removeListener?(event: "error", listener: (error: Error) => void): unknown;
}

/** The parts of a `pg` `Pool` the adapter uses. The adapter never ends it: it belongs to the caller. */
export interface PgPoolLike {
  query(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
  connect(): Promise<PgPoolClientLike>;
  readonly totalCount: number;
  /** The pool's configuration (`max` is read to keep LISTEN from taking the last connection). */
  readonly options?: { readonly max?: number | undefined } | undefined;
}

/** The parts of a PGlite transaction the adapter uses. */
export interface PGliteTransactionLike {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
  exec(text: string): Promise<unknown>;
}

/** The parts of a PGlite instance the adapter uses. The adapter never closes it. */
export interface PGliteLike {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
  exec(text: string): Promise<unknown>;
  transaction<T>(callback: (tx: PGliteTransactionLike) => Promise<T>): Promise<T>;
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
  /** Absent (or `memory://…`) for an in-memory database. */
  readonly dataDir?: string | undefined;
}

/** What `createPostgresAdapter` and `migrate` accept as `client`. */
export type PostgresClient = PgPoolLike | PGliteLike;

/**
 * COMMIT was sent but the connection failed before its answer arrived: the transaction may have
 * committed or not. Never retried automatically; the caller decides (the engine's operations are
 * idempotent by run id, so re-sending the same run is safe).
 */
export class CommitOutcomeUnknownError extends Error {
  constructor(cause: unknown) {
    super(`the connection failed while COMMIT was in flight; the transaction may or may not have committed: ${messageOf(cause)}`, { cause });
    this.name = "CommitOutcomeUnknownError";
  }
}

/** Whether `client` looks like a PGlite instance. */
export function isPglite(client: unknown): client is PGliteLike {
  const candidate = client as Partial<PGliteLike> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.transaction === "function" &&
    typeof candidate.exec === "function" &&
    typeof candidate.listen === "function" &&
    typeof candidate.query === "function"
  );
}

/** Whether `client` looks like a `pg` Pool (a single `pg.Client` does not: it has no pool counters). */
export function isPgPool(client: unknown): client is PgPoolLike {
  const candidate = client as Partial<PgPoolLike> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.connect === "function" &&
    typeof candidate.query === "function" &&
    typeof candidate.totalCount === "number"
  );
}

/**
 * Wraps a `pg` Pool or a PGlite instance, detected structurally.
 * @throws ValidationError when `client` is neither.
 */
export function toSqlClient(client: unknown, options: { readonly prepare?: boolean } = {}): SqlClient {
  if (isPglite(client)) return fromPglite(client);
  if (isPgPool(client)) return fromPgPool(client, options.prepare ?? false);
  throw new ValidationError([{ path: ["client"], message: "must be a pg Pool or a PGlite instance" }]);
}

/** Distinct statement texts kept prepared per process; past it statements are no longer prepared. */
const MAX_PREPARED_TEXTS = 256;
const preparedNames = new Map<string, string>();

/**
 * The name a statement is prepared under: `healthstate_` and 40 hex digits of the SHA-256 of its
 * text, so two texts never share a name (pg refuses a name reused for another text) and every
 * connection of every pool agrees on it. `undefined` once `MAX_PREPARED_TEXTS` texts are named
 * (a bound on what each connection keeps prepared on the server).
 */
export function preparedName(text: string): string | undefined {
  const known = preparedNames.get(text);
  if (known !== undefined || preparedNames.size >= MAX_PREPARED_TEXTS) return known;
  const name = `healthstate_${createHash("sha256").update(text, "utf8").digest("hex").slice(0, 40)}`;
  preparedNames.set(text, name);
  return name;
}

/**
 * With prepared statements, transactions plan them once (generic plans): under the default
 * `auto` the server kept re-planning the write statement of every call (custom plans), which took
 * a third of the server's time at 16 concurrent single calls.
 */
const GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan; ";

function fromPgPool(pool: PgPoolLike, prepare: boolean): SqlClient {
  return {
    kind: "pg",
    async query<R extends object>(text: string, params: readonly unknown[] = []) {
      const result = await pool.query(text, [...params]);
      return { rows: result.rows as R[] };
    },
    async exec(text: string) {
      await pool.query(text);
    },
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>, settings: TransactionSettings): Promise<T> {
      const client = await pool.connect();
      // Destroy the connection instead of returning it to the pool when its state is unknown.
      let destroy: Error | undefined;
      // A checked-out client emits "error" when its connection dies between queries (the server
      // terminated it while the transaction waited on something else); unheard, that error would
      // crash the process. It is recorded instead, and the next query on the client fails.
      const onError = (error: Error) => {
        destroy ??= error;
      };
      client.on("error", onError);
      try {
        try {
          await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED; ${prepare ? GENERIC_PLANS : ""}${settingsSql(settings)}${preludeSql(settings)}`);
        } catch (error) {
          // A statement the server refused (a lock timeout in the prelude) left an aborted transaction
          // on a healthy connection: roll it back. Anything else leaves the connection in doubt.
          if (isConnectionError(error) || sqlState(error) === undefined) destroy = asError(error);
          else {
            try {
              await client.query("ROLLBACK");
            } catch (rollbackError) {
              destroy = asError(rollbackError);
            }
          }
          throw error;
        }
        let result: T;
        const tx = queryable(client, prepare);
        try {
          result = await fn(tx);
        } catch (error) {
          // Statements `fn` started and did not wait for must reach the server before ROLLBACK, or a
          // later one would run after it, outside the transaction.
          await tx.drain();
          tx.close();
          try {
            await client.query("ROLLBACK");
          } catch (rollbackError) {
            destroy = asError(rollbackError);
          }
          throw error;
        }
        let commit: { command?: string };
        // Likewise before COMMIT: every statement of the transaction is answered first.
        await tx.drain();
        tx.close();
        try {
          commit = await client.query("COMMIT");
        } catch (error) {
          destroy = asError(error);
          if (isConnectionError(error)) throw new CommitOutcomeUnknownError(error);
          throw error;
        }
        // COMMIT of a transaction that failed earlier (an error the callback swallowed) rolls back.
        if (commit.command === "ROLLBACK") throw new Error("the transaction was rolled back by the server (a statement in it failed)");
        return result;
      } finally {
        client.removeListener?.("error", onError);
        client.release(destroy);
      }
    },
  };
}

/**
 * The statements of one transaction, run one after the other: callers may issue several at once
 * (the engine loads a workspace with `Promise.all`), and a `pg` client must not be handed a query
 * while another one is running.
 */
function queryable(client: PgPoolClientLike, prepare: boolean): SqlQueryable & { drain(): Promise<void>; close(): void } {
  let tail: Promise<unknown> = Promise.resolve();
  let closed = false;
  const serialize = <T>(run: () => Promise<T>): Promise<T> => {
    // After ROLLBACK or COMMIT the connection is no longer this transaction's.
    if (closed) return Promise.reject(new Error("postgres adapter: a statement came after its transaction ended"));
    const next = tail.then(run, run);
    tail = next.catch(() => undefined);
    return next;
  };
  return {
    async query<R extends object>(text: string, params: readonly unknown[] = [], options?: QueryOptions) {
      const name = prepare && options?.prepare === true ? preparedName(text) : undefined;
      const values = [...params];
      const result = await serialize(() => (name === undefined ? client.query(text, values) : client.query({ name, text, values })));
      return { rows: result.rows as R[] };
    },
    async exec(text: string) {
      await serialize(() => client.query(text));
    },
    /** Refuses every later statement (called before ROLLBACK or COMMIT, after `drain`). */
    close() {
      closed = true;
    },
    /** Resolves once every statement handed to this queryable so far has settled. */
    async drain() {
      let current: Promise<unknown>;
      do {
        current = tail;
        await current;
      } while (current !== tail);
    },
  };
}

function fromPglite(db: PGliteLike): SqlClient {
  const wrap = (target: PGliteTransactionLike): SqlQueryable => ({
    async query<R extends object>(text: string, params: readonly unknown[] = []) {
      const result = await target.query(text, [...params]);
      return { rows: (result.rows as Row[]).map(normalizeRow) as R[] };
    },
    async exec(text: string) {
      await target.exec(text);
    },
  });
  const outside = wrap(db);
  return {
    kind: "pglite",
    query: (text, params) => outside.query(text, params),
    exec: (text) => outside.exec(text),
    transaction<T>(fn: (tx: SqlQueryable) => Promise<T>, settings: TransactionSettings): Promise<T> {
      // PGlite has one connection; `transaction` holds it exclusively (queries from elsewhere wait).
      return db.transaction(async (tx) => {
        await tx.exec(`SET TRANSACTION ISOLATION LEVEL READ COMMITTED; ${settingsSql(settings)}${preludeSql(settings)}`);
        return fn(wrap(tx));
      });
    },
  };
}

/** PGlite returns `int8` as a number when it is safe, else as a `bigint`; `pg` as a string. Make it a string. */
function normalizeRow(row: Row): Row {
  let copy: Row | undefined;
  for (const [key, value] of Object.entries(row)) {
    if (typeof value !== "bigint") continue;
    copy ??= { ...row };
    copy[key] = value.toString();
  }
  return copy ?? row;
}

function preludeSql(settings: TransactionSettings): string {
  return settings.prelude === undefined || settings.prelude === "" ? "" : `; ${settings.prelude}`;
}

/**
 * The transaction's settings as `SET LOCAL`s. `jit = off`: the cost estimates of statements over
 * set-returning functions (`jsonb_to_recordset`, `jsonb_each_text`: 100 rows each, whatever the
 * document) cross `jit_above_cost` on big batches, and compiling the plan then took 0.9 s of a
 * 1.2 s bucket fold; a transaction's statements are short and run once, JIT never pays here.
 */
function settingsSql(settings: TransactionSettings): string {
  const ms = (value: number) => `'${Math.max(0, Math.floor(value))}ms'`;
  const statement = settings.statementTimeoutMs === undefined ? "" : `; SET LOCAL statement_timeout = ${ms(settings.statementTimeoutMs)}`;
  return `SET LOCAL jit = off; SET LOCAL lock_timeout = ${ms(settings.lockTimeoutMs)}; SET LOCAL idle_in_transaction_session_timeout = ${ms(settings.idleInTransactionTimeoutMs)}${statement}`;
}

const CONNECTION_ERROR_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "57P01", // admin_shutdown (pg_terminate_backend)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
  "08007",
]);

/** Whether `error` means the connection is gone (rather than that the server refused a statement). */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && CONNECTION_ERROR_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : "";
  return /Connection terminated|not queryable|connection error|Client was closed/iu.test(message);
}

/** The SQLSTATE of a database error, if it has one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
