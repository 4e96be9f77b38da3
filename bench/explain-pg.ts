// EXPLAIN ANALYZE of the write statements of one recordRuns batch of 1,000, run again in the same
// order in a transaction that is rolled back. Usage: DATABASE_URL=postgres://… npx tsx bench/explain-pg.ts
import pg from "pg";
import { createHealthEngine } from "healthstate";
import { createPostgresAdapter, migrate } from "healthstate/adapters/postgres";
import { tapPool } from "./pg-tap";
import { RunStream, topologyOf } from "./workload";

const url = process.env.DATABASE_URL;
if (url === undefined) throw new Error("DATABASE_URL is required");
const pool = new pg.Pool({ connectionString: url, max: 4 });
const schema = "healthstate_explain";
await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await migrate(pool, { schema });
const captured: { text: string; params: unknown[] }[] = [];
let capture = false;
tapPool(pool, ({ text, values }, send) => {
  if (capture && (text.startsWith("WITH w0") || text.startsWith("INSERT INTO"))) captured.push({ text, params: [...values] });
  return send();
});
const engine = createHealthEngine({ ...createPostgresAdapter({ client: pool, schema }), timers: false });
(await engine.applyTopology(topologyOf(0, 1000)))._unsafeUnwrap();
const stream = new RunStream({ systems: 1000, seed: 7, prefix: "p" });
for (let i = 0; i < 5; i += 1) (await engine.recordRuns(stream.take(1000)))._unsafeUnwrap();
capture = true;
(await engine.recordRuns(stream.take(1000)))._unsafeUnwrap();
capture = false;
if (captured.length === 0) throw new Error("no write statement captured");
const client = await pool.connect();
await client.query(`SET search_path = ${schema}`);
for (let i = 0; i < 3; i += 1) {
  await client.query("BEGIN; SET LOCAL healthstate.state_version = 'explain'");
  const plans: string[][] = [];
  for (const statement of captured) {
    // Fresh run ids each time, so the runs insert does not conflict with the batch that was committed.
    const params = statement.params.map((param) => (typeof param === "string" ? param.replaceAll('"p-', `"q${i}-`) : param));
    const plan = await client.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`, params);
    plans.push(plan.rows.map((row) => row["QUERY PLAN"]));
  }
  await client.query("ROLLBACK");
  if (i === 2) {
    captured.forEach((statement, index) => {
      console.log(`\n## statement ${index + 1} of ${captured.length}: ${statement.text.replace(/\s+/gu, " ").slice(0, 160)}`);
      for (const line of plans[index] ?? []) console.log(line);
    });
  }
}
const stats = await client.query(
  `SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, pg_relation_size(relid) AS bytes FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname`,
  [schema],
);
console.table(stats.rows);
client.release();
await engine.close();
await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await pool.end();
