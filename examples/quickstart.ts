/**
 * healthstate in about forty lines, in memory: a topology, runs, a subscriber, `getHealth`.
 *
 *   npx tsx examples/quickstart.ts
 */
import { createHealthEngine, type RunInput } from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";

const adapter = createMemoryAdapter();
const engine = createHealthEngine({ ...adapter, timers: false });

// One system in two environments with one HTTP check, default thresholds: degraded after
// 2 failures in a row, unhealthy after 5, healthy again after 1 success.
const topology = await engine.applyTopology({
  systems: [{ systemId: "checkout", environmentIds: ["prod", "staging"], checks: [{ checkId: "http" }] }],
});
if (topology.isErr()) throw topology.error;

// Each transition is published once; the prod entity and the system's rollup change together.
engine.subscribe(
  (event) => {
    if (event.type === "health.transition") {
      console.log(`${event.entityId.padEnd(15)} ${event.previousStatus} → ${event.newStatus} (${event.classification})`);
    }
  },
  { group: "quickstart" },
);

// Prod fails nine times, succeeds once, fails twice more (one run a minute); staging is fine.
const runs: RunInput[] = [..."uuuuuuuuuhuu"].map((letter, minute) => ({
  systemId: "checkout",
  checkId: "http",
  environmentId: "prod",
  status: letter === "h" ? "healthy" : "unhealthy",
  timestamp: new Date(Date.UTC(2026, 10, 30, 8, minute)),
}));
runs.push({ systemId: "checkout", checkId: "http", environmentId: "staging", status: "healthy" });
const recorded = await engine.recordRuns(runs);
if (recorded.isErr()) throw recorded.error;
await engine.flush();

for (const entityId of ["checkout", "checkout::prod", "checkout::staging"]) {
  const health = await engine.getHealth(entityId);
  if (health.isErr()) throw health.error;
  const state = health.value;
  console.log(`getHealth(${JSON.stringify(entityId)}) → ${state ? `${state.status}, ${state.healthyChecks}/${state.totalChecks} checks healthy` : "absent"}`);
}

await engine.close();
await adapter.close();
