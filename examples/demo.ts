/**
 * healthstate demo: a small fleet on the in-memory adapter.
 *
 * Three systems in up to three environments, a scripted timeline of check results (a database
 * that fails in prod only, a flaky API whose blips stay below its thresholds, a queue that
 * degrades and recovers), and a subscriber that prints every transition as it is published.
 *
 *   npm run demo
 */
import { createHealthEngine, type HealthEvent, type HealthStatus, type RunInput } from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";

const START = Date.parse("2026-11-30T08:00:00Z");
const MINUTE = 60_000;

const adapter = createMemoryAdapter();
const engine = createHealthEngine({ ...adapter, timers: false });

const topology = await engine.applyTopology({
  systems: [
    {
      systemId: "checkout",
      environmentIds: ["prod", "staging"],
      checks: [
        { checkId: "http" },
        { checkId: "postgres", thresholds: { mode: "consecutive", degraded: { minFailureCount: 2 }, unhealthy: { minFailureCount: 3 } } },
      ],
    },
    {
      systemId: "search",
      environmentIds: ["prod", "staging", "dev"],
      checks: [{ checkId: "api", thresholds: { mode: "window", windowSize: 6, degraded: { minFailureCount: 3 }, unhealthy: { minFailureCount: 5 } } }],
    },
    { systemId: "billing", environmentIds: ["prod"], checks: [{ checkId: "queue-depth" }, { checkId: "cron", environmentIds: [] }] },
  ],
});
if (topology.isErr()) throw topology.error;

const colour: Record<HealthStatus, string> = { healthy: "\u001b[32m", degraded: "\u001b[33m", unhealthy: "\u001b[31m" };
const paint = (status: HealthStatus) => (process.stdout.isTTY ? `${colour[status]}${status}\u001b[0m` : status);
const published: HealthEvent[] = [];

engine.subscribe(
  (event) => {
    if (event.type !== "health.transition") return;
    published.push(event);
    const where = event.environmentId === null ? `${event.systemId} (rollup)` : `${event.systemId} @ ${event.environmentId}`;
    console.log(
      `${event.occurredAt.slice(11, 16)}  #${String(event.sequence).padEnd(2)} ${where.padEnd(26)} ${paint(event.previousStatus)} → ${paint(event.newStatus)}` +
        `  ${event.healthyChecks}/${event.totalChecks} healthy  [${event.classification}; caused by ${event.cause.checkId ?? "topology"}]`,
    );
  },
  { group: "console" },
);

// One scripted result per minute per slice: h healthy, d degraded, u unhealthy.
const script: Array<[system: string, check: string, env: string | null, results: string]> = [
  ["checkout", "http", "prod", "hhhhhhhhhhhhhhhh"],
  ["checkout", "postgres", "prod", "hhhuuuuuhhhhhhhh"],
  ["checkout", "postgres", "staging", "hhhhhhhhhhhhhhhh"],
  ["checkout", "http", "staging", "hhudhhhhhhhuhhhh"],
  ["search", "api", "prod", "hhdhhdhhhhhhhhhh"],
  ["search", "api", "dev", "hhuuuuuuuuuuuhhh"],
  ["billing", "queue-depth", "prod", "hhhhddddhhhhhhhh"],
  ["billing", "cron", null, "hhhhhhhhhhuuuuuh"],
];
const letters: Record<string, HealthStatus> = { h: "healthy", d: "degraded", u: "unhealthy" };

let runs = 0;
for (let minute = 0; minute < 16; minute += 1) {
  const batch: RunInput[] = script.map(([systemId, checkId, environmentId, results]) => ({
    runId: `${systemId}/${checkId}/${environmentId ?? "-"}/${minute}`,
    systemId,
    checkId,
    environmentId,
    status: letters[results[minute] as string] as HealthStatus,
    latencyMs: 20 + ((minute * 37) % 90),
    timestamp: new Date(START + minute * MINUTE),
  }));
  const outcome = await engine.recordRuns(batch);
  if (outcome.isErr()) throw outcome.error;
  runs += batch.length;
  await engine.flush();
}

// Recording the same runs again is a no-op: run ids make ingestion idempotent.
const again = await engine.recordRun({
  runId: "checkout/postgres/prod/4",
  systemId: "checkout",
  checkId: "postgres",
  environmentId: "prod",
  status: "unhealthy",
});
const duplicate = again.isOk() && again.value.duplicate;

const health = await engine.getManyHealth(["checkout", "checkout::prod", "search::dev", "billing"]);
if (health.isErr()) throw health.error;
console.log("\nFinal state:");
for (const [id, state] of Object.entries(health.value)) {
  console.log(`  ${id.padEnd(16)} ${paint(state.status)}  ${state.healthyChecks}/${state.totalChecks} checks healthy`);
}

const rejected = await engine.recordRun({ systemId: "checkout", checkId: "http", environmentId: "dev", status: "healthy" });
if (rejected.isErr()) console.log(`\nA run for an environment the check does not cover is rejected: ${rejected.error.message}`);

await engine.close();
await adapter.close();
const distinct = new Set(published.map((event) => event.eventId)).size;
console.log(
  `\n${runs} runs recorded, ${published.length} transitions published (${distinct} distinct event ids), duplicate run ignored: ${duplicate ? "yes" : "no"}.`,
);
