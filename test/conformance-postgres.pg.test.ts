import { PGlite } from "@electric-sql/pglite";
import type pg from "pg";
import { afterAll, afterEach, beforeAll } from "vitest";
import type { HealthAdapter } from "healthstate";
import { describeAdapterConformance } from "healthstate/testing";
import { createPostgresAdapter, migrate, type PostgresAdapterOptions, type PostgresClient } from "healthstate/adapters/postgres";
import { DATABASE_URL, dropSchema, openPool, schemaNameFor } from "./helpers/pg";

// Our Postgres adapter, certified through the published entry, as a third party would: on PGlite
// always, and on the real server (with a second pool as the "other process") when DATABASE_URL
// is set. Every adapter the kit creates gets a fresh, migrated schema, dropped after the test
// (not when the adapter closes: the kit checks that data outlives the adapter that wrote it).

let counter = 0;
const schemas = new WeakMap<HealthAdapter, string>();
let created: { client: PostgresClient; schema: string }[] = [];

async function freshAdapter(client: PostgresClient, label: string, options: Partial<PostgresAdapterOptions> = {}): Promise<HealthAdapter> {
  counter += 1;
  const schema = schemaNameFor(`conformance ${label} ${counter}`);
  created.push({ client, schema });
  await migrate(client, { schema });
  const adapter = createPostgresAdapter({ client, schema, ...options });
  schemas.set(adapter, schema);
  return adapter;
}

// Registered before the kit's hooks, so it runs after the kit has closed the test's adapters.
afterEach(async () => {
  const done = created;
  created = [];
  for (const { client, schema } of done) await dropSchema(client, schema);
});

let pglite: PGlite | undefined;
beforeAll(async () => {
  pglite = await PGlite.create();
});
afterAll(async () => {
  await pglite?.close();
});

describeAdapterConformance({
  name: "postgres on PGlite",
  // Bucket deltas folded every third append of a system: the kit's buckets are read both pending
  // and folded (the default, 64, leaves them pending in every kit test).
  create: () => freshAdapter(pglite as PGlite, "pglite", { foldBucketDeltasAfter: 3 }),
  capabilities: { durable: false, crossProcess: false },
  numRuns: 10,
});

if (DATABASE_URL !== undefined) {
  let pool: pg.Pool | undefined;
  let peerPool: pg.Pool | undefined;
  beforeAll(() => {
    pool = openPool({ max: 6 });
    peerPool = openPool({ max: 6 });
  });
  afterAll(async () => {
    await Promise.all([pool?.end(), peerPool?.end()]);
  });

  describeAdapterConformance({
    name: "postgres on a real server",
    // Bucket deltas folded often, by each process at its own pace: folds run concurrently.
    create: () => freshAdapter(pool as pg.Pool, "server", { foldBucketDeltasAfter: 4 }),
    capabilities: { durable: true, crossProcess: true },
    // Another process: a second pool on the same schema, with its own in-process lock.
    createPeer: (adapter) => {
      const schema = schemas.get(adapter);
      if (schema === undefined) throw new Error("createPeer: not an adapter of this file");
      return createPostgresAdapter({ client: peerPool as pg.Pool, schema, foldBucketDeltasAfter: 2 });
    },
    numRuns: 10,
  });
}
