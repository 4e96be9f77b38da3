// Time per run of the kernel alone (SystemWorkspace: step the slice, evaluate the entities, list
// the changes, take the snapshot), no store, no engine: batches of 1,000 runs over 1,000 systems
// of the bench's topology, each system's workspace made from the snapshot of its last batch, as
// the engine's state cache does. Prints the median of 5 repetitions in µs per run; for a profile:
// node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-kernel.ts
import { validateThresholds, type AssignmentRecord, type StoredRun } from "healthstate";
import { SystemWorkspace, type SystemSnapshot } from "../src/kernel/system-workspace";
import { RunStream, topologyOf } from "./workload";

const SYSTEMS = 1000;
const BATCH = 1000;
const BATCHES = 250;
const T0 = "2026-11-30T00:00:00.000Z";

const snapshots = new Map<string, SystemSnapshot>();
for (const spec of topologyOf(0, SYSTEMS).systems) {
  const workspace = new SystemWorkspace(spec.systemId);
  workspace.setSystem({ systemId: spec.systemId, environmentIds: spec.environmentIds });
  for (const check of spec.checks) {
    const assignment: AssignmentRecord = {
      systemId: spec.systemId,
      checkId: check.checkId,
      thresholds: validateThresholds(check.thresholds)._unsafeUnwrap(),
      environmentIds: null,
      enabled: true,
      paused: false,
    };
    workspace.setAssignment(assignment);
  }
  workspace.applyTopologyChange(T0);
  snapshots.set(spec.systemId, workspace.snapshot());
}

const stream = new RunStream({ systems: SYSTEMS, seed: 1, prefix: "k" });
const stored = (count: number): StoredRun[] =>
  stream.take(count).map((run) => ({
    runId: run.runId as string,
    systemId: run.systemId,
    checkId: run.checkId,
    environmentId: run.environmentId ?? null,
    status: run.status,
    latencyMs: run.latencyMs ?? null,
    timestamp: run.timestamp as string,
    message: run.message ?? null,
    recordedAt: run.timestamp as string,
  }));

/** One unit of work's kernel part; returns a count so that nothing is optimized away. */
function unitOfWork(runs: readonly StoredRun[]): number {
  const workspaces = new Map<string, SystemWorkspace>();
  for (const run of runs) {
    if (workspaces.has(run.systemId)) continue;
    workspaces.set(run.systemId, SystemWorkspace.fromSnapshot(run.systemId, snapshots.get(run.systemId) as SystemSnapshot, []));
  }
  let produced = 0;
  for (const run of runs) produced += (workspaces.get(run.systemId) as SystemWorkspace).applyRun(run).length;
  for (const [systemId, workspace] of workspaces) {
    const changes = workspace.changes();
    produced += changes.slices.length + changes.entities.length;
    snapshots.set(systemId, workspace.snapshot());
  }
  return produced;
}

// Runs made up front: the stream's own cost is not the kernel's.
const batches = Array.from({ length: BATCHES }, () => stored(BATCH));
for (const batch of batches.slice(0, 50)) unitOfWork(batch);
const perRun: number[] = [];
let produced = 0;
for (let repetition = 0; repetition < 5; repetition += 1) {
  const started = performance.now();
  for (const batch of batches.slice(50)) produced += unitOfWork(batch);
  perRun.push(((performance.now() - started) * 1000) / ((BATCHES - 50) * BATCH));
}
perRun.sort((a, b) => a - b);
console.log(
  `kernel: ${(perRun[2] as number).toFixed(2)} µs per run (median of 5; min ${(perRun[0] as number).toFixed(2)}, max ${(perRun[4] as number).toFixed(2)}); ${produced} changes and events`,
);
