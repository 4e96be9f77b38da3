// Postgres test backends: one PGlite per test file (always), one small pg Pool per file when
// DATABASE_URL is set, and a fresh, migrated schema per test, dropped after it.
import { createHash, randomBytes } from "node:crypto";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, expect } from "vitest";
import type { HealthEvent, HealthTransitionEvent } from "healthstate";
import {
  createPostgresAdapter,
  migrate,
  type PgPoolClientLike,
  type PgPoolLike,
  type PostgresAdapter,
  type PostgresAdapterOptions,
  type PostgresClient,
} from "healthstate/adapters/postgres";

/** Connection string of the real server, when the server tier runs. */
export const DATABASE_URL: string | undefined = process.env.DATABASE_URL || undefined;

export type BackendName = "pglite" | "postgres";

/** The backends this run covers: PGlite always, the real server when DATABASE_URL is set. */
export const BACKENDS: readonly BackendName[] = DATABASE_URL === undefined ? ["pglite"] : ["pglite", "postgres"];

/** A unique, valid schema name derived from a test's name (readable prefix, hash, random suffix). */
export function schemaNameFor(testName: string): string {
  const slug = testName
    .toLowerCase()
    .replace(/[^a-z0-9]+/gu, "_")
    .replace(/^_+|_+$/gu, "")
    .slice(0, 32);
  const hash = createHash("sha256").update(testName).digest("hex").slice(0, 8);
  return `t_${slug}_${hash}${randomBytes(3).toString("hex")}`;
}

/** Opens a pg Pool on DATABASE_URL. Idle-client errors are swallowed (a test kills backends on purpose). */
export function openPool(config: pg.PoolConfig = {}): pg.Pool {
  if (DATABASE_URL === undefined) throw new Error("DATABASE_URL is not set");
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4, ...config });
  pool.on("error", () => undefined);
  return pool;
}

/** Drops a schema and everything in it. */
export async function dropSchema(client: PostgresClient, schema: string): Promise<void> {
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** What a test of one backend gets. */
export interface PgFixture {
  readonly backend: BackendName;
  /** The file's shared client (PGlite instance or pg Pool). */
  readonly client: PostgresClient;
  /** This test's migrated schema. */
  readonly schema: string;
  /** A raw query on the shared client, for assertions. */
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Creates an adapter on this test's schema; closed after the test. */
  adapter(options?: Partial<PostgresAdapterOptions>): PostgresAdapter;
  /** Opens another pool on the server (closed after the file); server tier only. */
  extraPool(config?: pg.PoolConfig): pg.Pool;
  /** Registers a cleanup to run after the test, before the schema is dropped. */
  defer(cleanup: () => Promise<void> | void): void;
}

/**
 * Registers the hooks of one backend in the enclosing `describe` and returns the current test's
 * fixture (valid inside tests). Each test gets a fresh schema, migrated unless `migrate: false`.
 * After the file, the PGlite instance is closed and every pool ended; a test fails when an adapter
 * it created is still open or a pooled connection is still checked out.
 */
export function usePgBackend(backend: BackendName, options: { readonly migrate?: boolean } = {}): () => PgFixture {
  let client: PostgresClient | undefined;
  let pglite: PGlite | undefined;
  let pool: pg.Pool | undefined;
  const extraPools: pg.Pool[] = [];
  let current: PgFixture | undefined;
  let cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    if (backend === "pglite") {
      pglite = await PGlite.create();
      client = pglite;
    } else {
      pool = openPool({ max: 4 });
      client = pool;
    }
  });

  afterAll(async () => {
    await Promise.all(extraPools.map((extra) => extra.end()));
    if (pool !== undefined) {
      expect(pool.totalCount - pool.idleCount, "pooled connections still checked out after the file").toBe(0);
      await pool.end();
    }
    await pglite?.close();
  });

  beforeEach(async (context) => {
    const shared = client as PostgresClient;
    const schema = schemaNameFor(context.task.name);
    if (options.migrate !== false) await migrate(shared, { schema });
    cleanups = [];
    current = {
      backend,
      client: shared,
      schema,
      query: async <R>(text: string, params: unknown[] = []) => (await shared.query(text, params)).rows as R[],
      adapter: (adapterOptions = {}) => {
        const adapter = createPostgresAdapter({ client: shared, schema, ...adapterOptions });
        cleanups.push(() => adapter.close());
        return adapter;
      },
      extraPool: (config = {}) => {
        const extra = openPool(config);
        extraPools.push(extra);
        return extra;
      },
      defer: (cleanup) => {
        cleanups.push(cleanup);
      },
    };
  });

  afterEach(async () => {
    const fixture = current;
    current = undefined;
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
    if (fixture !== undefined) await dropSchema(fixture.client, fixture.schema);
  });

  return () => {
    if (current === undefined) throw new Error("the pg fixture is only available inside a test");
    return current;
  };
}

const EVENT_T0 = Date.parse("2026-11-30T10:00:00Z");

/** A minimal transition event for direct store/emitter tests: odd sequences fail, even ones recover, `sequence` seconds after 10:00. */
export function transitionEvent(entityId: string, sequence: number, overrides: Partial<HealthTransitionEvent> = {}): HealthTransitionEvent {
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
    occurredAt: new Date(EVENT_T0 + sequence * 1000).toISOString(),
    cause: { runId: `run-${sequence}` },
    ...overrides,
  };
}

/** Enqueues events in one transaction holding their entities' lock keys. */
export async function enqueue(adapter: PostgresAdapter, events: HealthEvent[]): Promise<void> {
  await adapter.store.transaction({ lockKeys: [...new Set(events.map((event) => `health:${event.entityId}`))] }, (tx) => tx.enqueueEvents(events));
}

/** A statement as the adapter hands it to a pg connection: text alone, or named (prepared) with its values. */
export type ClientStatement = string | { readonly name: string; readonly text: string; readonly values: unknown[] };
type ClientResult = ReturnType<PgPoolClientLike["query"]>;

/**
 * `pool` as the adapter sees it, with every statement of its checked-out connections run through
 * `around` (which calls `send` to run it) and every `pool.query` text given to `onPoolQuery`: for
 * recording statements, or for failing one on purpose.
 */
export function interceptedPool(
  pool: PgPoolLike,
  around: (statement: ClientStatement, values: unknown[] | undefined, send: () => ClientResult) => ClientResult,
  options: { readonly max: number; readonly onPoolQuery?: (text: string) => void },
): PgPoolLike {
  return {
    query: (text, values) => {
      options.onPoolQuery?.(text);
      return pool.query(text, values);
    },
    connect: async () => {
      const connection = await pool.connect();
      return {
        query: (statement: ClientStatement, values?: unknown[]) =>
          around(statement, values, () => (typeof statement === "string" ? connection.query(statement, values) : connection.query(statement))),
        release: (destroy?: boolean | Error) => connection.release(destroy),
        on: ((event: "error", listener: (error: Error) => void) => connection.on(event, listener)) as PgPoolClientLike["on"],
        removeAllListeners: (event?: string) => connection.removeAllListeners(event),
        removeListener: (event: "error", listener: (error: Error) => void) => connection.removeListener?.(event, listener),
      };
    },
    get totalCount() {
      return pool.totalCount;
    },
    options: { max: options.max },
  };
}
