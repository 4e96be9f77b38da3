// The three backends the benchmark runs on: the memory adapter, PGlite in memory, and the real
// Postgres server of DATABASE_URL. Each can open any number of fresh environments (a new memory
// adapter, or a new migrated schema), all dropped when the backend closes.
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { createHealthEngine, type HealthAdapter, type HealthEngine, type HealthEngineOptions } from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";
import { createPostgresAdapter, migrate } from "healthstate/adapters/postgres";

export type BackendName = "memory" | "pglite" | "postgres";

/** Raw SQL on the backend's database, for the naive baseline and the ceiling. */
export interface SqlRunner {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on a throw) on one connection. */
  transaction<T>(fn: (query: SqlRunner["query"]) => Promise<T>): Promise<T>;
}

/** One engine over a fresh, empty store. */
export interface EngineEnv {
  readonly engine: HealthEngine;
  readonly adapter: HealthAdapter;
  /** The schema holding its tables (SQL backends). */
  readonly schema: string | undefined;
  /** Errors the engine reported from background work. */
  readonly backgroundErrors: unknown[];
  /** Bytes the store's tables take on disk (SQL backends), indexes and TOAST included. */
  storeBytes(): Promise<number | undefined>;
  /**
   * Another engine on the same store, as another process would have: on SQL backends with its
   * own adapter (its own in-process lock), so the database's advisory locks alone keep the
   * engines apart; on the memory adapter sharing the adapter (one process). Closed by `dispose`.
   */
  peer(): HealthEngine;
  /** Refreshes planner statistics after a bulk setup (SQL backends), as autovacuum would in time. */
  settle(): Promise<void>;
  /** Closes the engines and the adapters, and drops the schema. */
  dispose(): Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  readonly sql: SqlRunner | undefined;
  /** Connections the engine and the baseline share (SQL backends). */
  readonly poolSize: number | undefined;
  /** Server version and settings worth reporting. */
  readonly info: Record<string, string>;
  /**
   * A fresh engine environment; `label` names its schema (`healthstate_bench_<label>`). `tuning`
   * goes to every engine of it (the defaults otherwise).
   */
  openEnv(label: string, tuning?: EngineTuning): Promise<EngineEnv>;
  /** Registers a schema created outside `openEnv` (the baseline's), dropped by `close`. */
  trackSchema(schema: string): void;
  /** Drops every schema it created or tracks, then closes the pool or the PGlite instance. */
  close(): Promise<void>;
}

export const SCHEMA_PREFIX = "healthstate_bench";
export const schemaOf = (label: string): string => (label === "" ? SCHEMA_PREFIX : `${SCHEMA_PREFIX}_${label}`);

/** Engine options a scenario may set. */
export type EngineTuning = Pick<HealthEngineOptions, "stateCacheSystems">;

const engineOf = (adapter: Parameters<typeof createHealthEngine>[0], backgroundErrors: unknown[], tuning: EngineTuning = {}): HealthEngine =>
  createHealthEngine({
    ...adapter,
    ...tuning,
    timers: false,
    onBackgroundError: (error) => {
      backgroundErrors.push(error);
    },
  });

export function memoryBackend(): Backend {
  return {
    name: "memory",
    sql: undefined,
    poolSize: undefined,
    info: {},
    openEnv: (_label, tuning) => {
      const adapter = createMemoryAdapter();
      const backgroundErrors: unknown[] = [];
      const engine = engineOf(adapter, backgroundErrors, tuning);
      const peers: HealthEngine[] = [];
      return Promise.resolve({
        engine,
        adapter,
        schema: undefined,
        backgroundErrors,
        storeBytes: () => Promise.resolve(undefined),
        peer: () => {
          const peer = engineOf(adapter, backgroundErrors, tuning);
          peers.push(peer);
          return peer;
        },
        settle: () => Promise.resolve(),
        dispose: async () => {
          for (const peer of peers) await peer.close();
          await engine.close();
          await adapter.close();
        },
      });
    },
    trackSchema: () => undefined,
    close: () => Promise.resolve(),
  };
}

/** PGlite in memory (one connection: concurrent transactions run one after another). */
export async function pgliteBackend(): Promise<Backend> {
  const db = await PGlite.create();
  const query: SqlRunner["query"] = async (text, params = []) => (await db.query(text, [...params])).rows as never;
  const sql: SqlRunner = {
    query,
    transaction: (fn) => db.transaction((tx) => fn(async (text, params = []) => (await tx.query(text, [...params])).rows as never)),
  };
  const [version] = await query<{ version: string }>("SELECT version()");
  return sqlBackend("pglite", db, sql, undefined, { version: version?.version ?? "?" }, () => db.close());
}

/** The real server of `connectionString`, through one pg Pool of `poolSize` connections. */
export async function postgresBackend(connectionString: string, poolSize: number): Promise<Backend> {
  const pool = new pg.Pool({ connectionString, max: poolSize });
  pool.on("error", () => undefined);
  const query: SqlRunner["query"] = async (text, params = []) => (await pool.query(text, [...params])).rows as never;
  const sql: SqlRunner = {
    query,
    transaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn(async (text, params = []) => (await client.query(text, [...params])).rows as never);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
  };
  const settings = await query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings
      WHERE name IN ('server_version', 'shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'wal_sync_method')`,
  );
  const info = Object.fromEntries(settings.map((row) => [row.name, row.setting]));
  return sqlBackend("postgres", pool, sql, poolSize, info, () => pool.end());
}

function sqlBackend(
  name: "pglite" | "postgres",
  client: PGlite | pg.Pool,
  sql: SqlRunner,
  poolSize: number | undefined,
  info: Record<string, string>,
  end: () => Promise<void>,
): Backend {
  const schemas = new Set<string>();
  return {
    name,
    sql,
    poolSize,
    info,
    async openEnv(label, tuning) {
      const schema = schemaOf(label);
      await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      schemas.add(schema);
      await migrate(client, { schema });
      const adapter = createPostgresAdapter({ client, schema });
      const backgroundErrors: unknown[] = [];
      const engine = engineOf(adapter, backgroundErrors, tuning);
      const peers: { engine: HealthEngine; close(): Promise<void> }[] = [];
      return {
        engine,
        adapter,
        schema,
        backgroundErrors,
        storeBytes: async () => {
          const [row] = await sql.query<{ bytes: string | number | bigint | null }>(
            `SELECT sum(pg_total_relation_size(c.oid)) AS bytes
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind = 'r'`,
            [schema],
          );
          return row?.bytes === null || row?.bytes === undefined ? undefined : Number(row.bytes);
        },
        peer: () => {
          // No LISTEN connection per peer: the pool is shared, and the bench subscribes on the main engine only.
          const peerAdapter = createPostgresAdapter({ client, schema, listen: false });
          const peer = engineOf(peerAdapter, backgroundErrors, tuning);
          peers.push({ engine: peer, close: () => peerAdapter.close() });
          return peer;
        },
        settle: async () => {
          const tables = await sql.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = $1", [schema]);
          for (const { tablename } of tables) await sql.query(`VACUUM ANALYZE ${schema}."${tablename}"`);
        },
        dispose: async () => {
          for (const peer of peers) {
            await peer.engine.close();
            await peer.close();
          }
          await engine.close();
          await adapter.close();
          await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          schemas.delete(schema);
        },
      };
    },
    trackSchema(schema) {
      schemas.add(schema);
    },
    async close() {
      for (const schema of schemas) await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await end();
    },
  };
}
