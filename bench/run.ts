// `npm run bench`: every scenario on the memory adapter, PGlite (in memory) and, when
// DATABASE_URL is set, the real Postgres server. Prints a table, writes bench/results.json,
// and exits non-zero when exactly-once is broken or a scenario fails.
//
//   BENCH_QUICK=1       smaller run (fewer systems, shorter repetitions, scale up to 10k)
//   BENCH_REPEATS=n     repetitions per scenario (default 5; fewer is refused)
//   BENCH_BACKENDS=…    comma list among memory,pglite,postgres
//   BENCH_SCENARIOS=…   comma list among ingest,read,contention,scale
//   BENCH_POOL=n        pg Pool size (default 16)
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { memoryBackend, pgliteBackend, postgresBackend, schemaOf, type Backend, type BackendName } from "./backends";
import { selfTest, type ExactlyOnceReport } from "./exactly-once";
import { NaiveBaseline } from "./naive";
import { formatReport, evaluateTargets, type BackendResult } from "./report";
import { applyTopology, contentionScenario, ingestScenario, readScenario, scaleScenario, type BenchConfig } from "./scenarios";
import { memorySnapshot, now } from "./stats";
import { RunStream } from "./workload";

const env = process.env;
const quick = env.BENCH_QUICK === "1" || env.BENCH_QUICK === "true";
const repeats = Number(env.BENCH_REPEATS ?? 5);
if (!Number.isInteger(repeats) || repeats < 5) {
  console.error(`BENCH_REPEATS must be an integer ≥ 5 (medians need at least five repetitions), got ${env.BENCH_REPEATS}`);
  process.exit(2);
}
const config: BenchConfig = {
  quick,
  repeats,
  repMs: quick ? 250 : 700,
  systems: quick ? 250 : 1000,
  scaleEntities: quick ? [1_000, 10_000] : [1_000, 10_000, 100_000],
  naiveSystems: quick ? 50 : 200,
  naiveHistory: 100,
};
const listOf = (value: string | undefined, all: readonly string[]): string[] =>
  value === undefined || value.trim() === "" ? [...all] : value.split(",").map((item) => item.trim()).filter((item) => all.includes(item));
const databaseUrl = env.DATABASE_URL || undefined;
const backendNames = listOf(env.BENCH_BACKENDS, ["memory", "pglite", ...(databaseUrl === undefined ? [] : ["postgres"])]) as BackendName[];
const scenarios = new Set(listOf(env.BENCH_SCENARIOS, ["ingest", "read", "contention", "scale"]));
const poolSize = Number(env.BENCH_POOL ?? 16);

const log = (message: string) => {
  process.stderr.write(`[bench ${(process.uptime()).toFixed(0).padStart(4)} s] ${message}\n`);
};

async function openBackend(name: BackendName): Promise<Backend> {
  switch (name) {
    case "memory":
      return memoryBackend();
    case "pglite":
      return pgliteBackend();
    case "postgres":
      if (databaseUrl === undefined) throw new Error("DATABASE_URL is not set");
      return postgresBackend(databaseUrl, poolSize);
  }
}

async function benchBackend(name: BackendName): Promise<BackendResult> {
  const result: BackendResult = { name, info: {}, errors: [] };
  const started = now();
  log(`${name}: opening`);
  const backend = await openBackend(name);
  result.info = { ...backend.info, ...(backend.poolSize === undefined ? {} : { pool: String(backend.poolSize) }) };
  const attempt = async (label: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      log(`${name}: ${label} FAILED: ${message}`);
      result.errors.push(`${label}: ${message}`);
    }
  };
  try {
    if (scenarios.has("ingest") || scenarios.has("read")) {
      const main = await backend.openEnv("");
      try {
        const setupMs = await applyTopology(main.engine, config.systems);
        await main.settle();
        result.setupSeconds = setupMs / 1000;
        log(`${name}: topology of ${config.systems} systems in ${(setupMs / 1000).toFixed(1)} s`);
        const stream = new RunStream({ systems: config.systems, seed: 1, prefix: `${name}-ingest` });
        if (scenarios.has("ingest")) {
          await attempt("ingest", async () => {
            let sql: { naive: NaiveBaseline; naiveStream: RunStream } | undefined;
            if (backend.sql !== undefined) {
              const naive = new NaiveBaseline(backend, schemaOf("naive"));
              const t = now();
              await naive.setup(config.naiveSystems, config.naiveHistory);
              result.naiveSetupSeconds = (now() - t) / 1000;
              log(`${name}: naive baseline: ${config.naiveSystems} systems, ${config.naiveHistory} runs of history per slice, in ${result.naiveSetupSeconds.toFixed(1)} s`);
              sql = { naive, naiveStream: new RunStream({ systems: config.naiveSystems, seed: 1, prefix: `${name}-naive` }) };
            }
            result.ingest = await ingestScenario(config, main, stream, sql);
            if (sql !== undefined) result.naiveCounts = await sql.naive.counts();
            log(`${name}: ingest done`);
          });
        }
        if (scenarios.has("read")) {
          await attempt("read", async () => {
            result.read = await readScenario(config, main);
            log(`${name}: read done`);
          });
        }
        if (main.backgroundErrors.length > 0) result.errors.push(`background errors: ${main.backgroundErrors.map(String).slice(0, 3).join("; ")}`);
      } finally {
        await main.dispose();
      }
    }
    if (scenarios.has("contention")) {
      await attempt("contention", async () => {
        const hot = await backend.openEnv("contention");
        try {
          const contention = await contentionScenario(config, hot);
          result.contention = contention.measured;
          result.exactlyOnce = contention.exactlyOnce;
          log(`${name}: contention done; exactly-once ${contention.exactlyOnce.ok ? "ok" : "BROKEN"}`);
        } finally {
          await hot.dispose();
        }
      });
    }
    if (scenarios.has("scale")) {
      result.scale = [];
      for (const entities of config.scaleEntities) {
        await attempt(`scale ${entities}`, async () => {
          const scaled = await scaleScenario(config, backend, entities);
          result.scale?.push(scaled);
          log(`${name}: scale ${entities} entities done (setup ${scaled.setupSeconds.toFixed(1)} s)`);
        });
      }
    }
  } finally {
    await backend.close();
  }
  result.seconds = (now() - started) / 1000;
  return result;
}

function gitCommit(): string {
  try {
    const root = fileURLToPath(new URL("..", import.meta.url));
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "adapters", "bench"], { cwd: root, encoding: "utf8" }).trim();
    return dirty === "" ? head : `${head}+uncommitted`;
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  selfTest();
  const started = now();
  const cpu = cpus();
  const meta = {
    date: new Date().toISOString(),
    command: `${quick ? "BENCH_QUICK=1 " : ""}${databaseUrl === undefined ? "" : "DATABASE_URL=… "}npm run bench`,
    commit: gitCommit(),
    node: process.version,
    cpu: `${cpu.length} × ${cpu[0]?.model ?? "?"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    baselineMemory: memorySnapshot(),
  };
  log(`config ${JSON.stringify(config)}; backends ${backendNames.join(", ")}; scenarios ${[...scenarios].join(", ")}`);
  const results: BackendResult[] = [];
  for (const name of backendNames) {
    try {
      results.push(await benchBackend(name));
    } catch (error) {
      results.push({ name, info: {}, errors: [`backend: ${error instanceof Error ? error.message : String(error)}`] });
    }
  }
  const targets = evaluateTargets(results);
  const broken = results.filter((result) => result.exactlyOnce !== undefined && !result.exactlyOnce.ok);
  const failed = results.filter((result) => result.errors.length > 0);
  const output = { meta: { ...meta, seconds: (now() - started) / 1000 }, config, results, targets };
  const path = fileURLToPath(new URL("./results.json", import.meta.url));
  writeFileSync(path, `${JSON.stringify(output, null, 2)}\n`);
  console.log(formatReport(output));
  console.log(`\nwrote ${path}`);
  if (broken.length > 0) {
    for (const result of broken) {
      const report = result.exactlyOnce as ExactlyOnceReport;
      console.error(`EXACTLY-ONCE BROKEN on ${result.name}:\n  ${report.problems.join("\n  ")}`);
    }
    process.exitCode = 1;
  }
  if (failed.length > 0) {
    for (const result of failed) console.error(`${result.name}: ${result.errors.join("; ")}`);
    process.exitCode = 1;
  }
}

await main();
