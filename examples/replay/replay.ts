/**
 * Try thresholds on recorded runs before rolling them out: feed a JSONL file of runs (one
 * `RunInput` per line, in the order they were accepted) through `replay()` under two threshold
 * settings and print how the transitions, and so the notifications, would differ.
 *
 *   npx tsx examples/replay/replay.ts [runs.jsonl]
 *
 * The topology is derived from the file: each system's environments and checks in order of first
 * appearance, each check scoped to the environments it reported from (or none, when it ran
 * env-less). `replay` is pure and synchronous: the same file always gives the same output.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { replay, type HealthTransitionEvent, type RunInput, type Thresholds, type TopologyDoc } from "healthstate";

const SETTINGS: ReadonlyArray<{ readonly name: string; readonly label: string; readonly thresholds: Thresholds }> = [
  {
    name: "A",
    label: "consecutive: degraded after 2 failures in a row, unhealthy after 5 (the default)",
    thresholds: { mode: "consecutive", healthy: { minSuccessCount: 1 }, degraded: { minFailureCount: 2 }, unhealthy: { minFailureCount: 5 } },
  },
  {
    name: "B",
    label: "window of 10 runs: degraded at 3 failures, unhealthy at 6",
    thresholds: { mode: "window", windowSize: 10, degraded: { minFailureCount: 3 }, unhealthy: { minFailureCount: 6 } },
  },
];

const file = process.argv[2] ?? fileURLToPath(new URL("./runs.jsonl", import.meta.url));
const runs = readJsonl(file);
const systems = deriveSystems(runs);
console.log(`Replaying ${runs.length} runs from ${basename(file)} (${systems.length} systems) under two threshold settings.\n`);

const results = SETTINGS.map((setting) => {
  const topology: TopologyDoc = {
    systems: systems.map((system) => ({
      systemId: system.systemId,
      environmentIds: system.environmentIds,
      checks: system.checks.map((check) => ({ ...check, thresholds: setting.thresholds })),
    })),
  };
  const result = replay({ topology, runs });
  for (const rejection of result.rejected) {
    console.log(`${setting.name}: run ${rejection.index} rejected: ${rejection.issues.map((issue) => issue.message).join("; ")}`);
  }
  const transitions = result.transitions.filter((event): event is HealthTransitionEvent => event.type === "health.transition");
  console.log(`${setting.name}  ${setting.label}\n   → ${transitions.length} transitions`);
  return { ...setting, transitions };
});

// Per entity, the two transition chains side by side, where they differ.
const [a, b] = results as [(typeof results)[number], (typeof results)[number]];
const chain = (transitions: readonly HealthTransitionEvent[], entityId: string) =>
  transitions
    .filter((event) => event.entityId === entityId)
    .map((event) => `${event.occurredAt.slice(11, 16)} ${event.previousStatus}→${event.newStatus}`);
const entityIds = [...new Set([...a.transitions, ...b.transitions].map((event) => event.entityId))].sort();
let differing = 0;
console.log("\nWhere the settings disagree:");
for (const entityId of entityIds) {
  const underA = chain(a.transitions, entityId);
  const underB = chain(b.transitions, entityId);
  if (underA.join() === underB.join()) continue;
  differing += 1;
  console.log(`  ${entityId}`);
  console.log(`    A: ${underA.join(", ") || "(no transition)"}`);
  console.log(`    B: ${underB.join(", ") || "(no transition)"}`);
}
if (differing === 0) console.log("  nowhere: both settings produce the same transitions.");
const delta = b.transitions.length - a.transitions.length;
console.log(
  `\nA: ${a.transitions.length} transitions, B: ${b.transitions.length} transitions ` +
    `(${delta === 0 ? "as many" : `${Math.abs(delta)} ${delta < 0 ? "fewer" : "more"}`} under B), ${differing} entities differ.`,
);

/** One run per non-empty line; a line that is not JSON stops the script with its line number. */
function readJsonl(path: string): RunInput[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .flatMap((line, index) => {
      if (line.trim() === "") return [];
      try {
        return [JSON.parse(line) as RunInput];
      } catch (error) {
        throw new Error(`${path}:${index + 1}: not JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
      }
    });
}

interface DerivedSystem {
  systemId: string;
  environmentIds: string[];
  checks: Array<{ checkId: string; environmentIds: string[] }>;
}

/** The topology the runs imply: environments and checks in order of first appearance. */
function deriveSystems(input: readonly RunInput[]): DerivedSystem[] {
  const systems = new Map<string, DerivedSystem>();
  for (const run of input) {
    let system = systems.get(run.systemId);
    if (system === undefined) {
      system = { systemId: run.systemId, environmentIds: [], checks: [] };
      systems.set(run.systemId, system);
    }
    let check = system.checks.find((candidate) => candidate.checkId === run.checkId);
    if (check === undefined) {
      check = { checkId: run.checkId, environmentIds: [] };
      system.checks.push(check);
    }
    const environmentId = run.environmentId ?? null;
    if (environmentId === null) continue;
    if (!system.environmentIds.includes(environmentId)) system.environmentIds.push(environmentId);
    if (!check.environmentIds.includes(environmentId)) check.environmentIds.push(environmentId);
  }
  return [...systems.values()];
}
