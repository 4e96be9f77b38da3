// Statement-level profile of the Postgres write path: times every statement the adapter sends
// for single recordRun calls and recordRuns batches of 1,000, grouped by statement kind.
// Usage: DATABASE_URL=postgres://… npx tsx bench/profile-pg.ts
import pg from "pg";
import { createHealthEngine } from "healthstate";
import { createPostgresAdapter, migrate } from "healthstate/adapters/postgres";
import { tapPool } from "./pg-tap";
import { RunStream, topologyOf } from "./workload";

const url = process.env.DATABASE_URL;
if (url === undefined) throw new Error("DATABASE_URL is required");
const SYSTEMS = 1000;
const pool = new pg.Pool({ connectionString: url, max: 16 });
const schema = "healthstate_profile";
await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await migrate(pool, { schema });

const timings = new Map<string, { count: number; ms: number }>();
let recording = false;
const kindOf = (text: string) => text.replace(/\s+/gu, " ").replace(/"?healthstate_profile"?\./gu, "").slice(0, 70);
tapPool(pool, async ({ text }, send) => {
  const started = performance.now();
  try {
    return await send();
  } finally {
    if (recording) {
      const key = kindOf(text);
      const entry = timings.get(key) ?? { count: 0, ms: 0 };
      entry.count += 1;
      entry.ms += performance.now() - started;
      timings.set(key, entry);
    }
  }
});

const adapter = createPostgresAdapter({ client: pool, schema });
const engine = createHealthEngine({ ...adapter, timers: false });
(await engine.applyTopology(topologyOf(0, SYSTEMS)))._unsafeUnwrap();
const stream = new RunStream({ systems: SYSTEMS, seed: 7, prefix: "p" });
for (let i = 0; i < 3; i += 1) (await engine.recordRuns(stream.take(1000)))._unsafeUnwrap();

async function measure(label: string, rounds: number, runsPerRound: number, work: () => Promise<void>) {
  timings.clear();
  recording = true;
  const started = performance.now();
  for (let i = 0; i < rounds; i += 1) await work();
  const wall = performance.now() - started;
  recording = false;
  const runs = rounds * runsPerRound;
  console.log(`\n## ${label}: ${(runs / (wall / 1000)).toFixed(0)} runs/s, wall ${(wall / rounds).toFixed(2)} ms per round`);
  const rows = [...timings.entries()].sort((a, b) => b[1].ms - a[1].ms);
  let total = 0;
  for (const [key, { count, ms }] of rows) {
    total += ms;
    console.log(`${(ms / rounds).toFixed(2).padStart(8)} ms/round  ${(count / rounds).toFixed(2).padStart(5)}×  ${key}`);
  }
  console.log(`${(total / rounds).toFixed(2).padStart(8)} ms/round  SQL total`);
}

await measure("recordRuns 1000", 8, 1000, async () => {
  (await engine.recordRuns(stream.take(1000)))._unsafeUnwrap();
});
await measure("recordRun c=1", 300, 1, async () => {
  (await engine.recordRun(stream.next()))._unsafeUnwrap();
});
await measure("recordRun c=16", 40, 16, async () => {
  const results = await Promise.all(stream.take(16).map((run) => engine.recordRun(run)));
  for (const result of results) result._unsafeUnwrap();
});
await engine.close();
await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await pool.end();
