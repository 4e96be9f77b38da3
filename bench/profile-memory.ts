// CPU profile of the memory adapter's write path: recordRuns batches of 1,000 (or single calls
// with PROFILE_MODE=single) over 1,000 systems, for PROFILE_MS milliseconds.
// Usage: node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-memory.ts
import { createHealthEngine } from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";
import { RunStream, topologyOf } from "./workload";

const mode = process.env.PROFILE_MODE ?? "batch";
const ms = Number(process.env.PROFILE_MS ?? 5000);
const engine = createHealthEngine({ ...createMemoryAdapter(), timers: false });
(await engine.applyTopology(topologyOf(0, 1000)))._unsafeUnwrap();
const stream = new RunStream({ systems: 1000, seed: 1, prefix: "p" });
for (let i = 0; i < 5; i += 1) (await engine.recordRuns(stream.take(1000)))._unsafeUnwrap();
let runs = 0;
let busy = 0;
const start = performance.now();
while (performance.now() - start < ms) {
  if (mode === "single") {
    const batch = stream.take(1000);
    const t = performance.now();
    for (const run of batch) (await engine.recordRun(run))._unsafeUnwrap();
    busy += performance.now() - t;
    runs += batch.length;
  } else {
    const batch = stream.take(1000);
    const t = performance.now();
    (await engine.recordRuns(batch))._unsafeUnwrap();
    busy += performance.now() - t;
    runs += batch.length;
  }
}
console.log(`${mode}: ${Math.round((runs / busy) * 1000)} runs/s over ${runs} runs`);
await engine.close();
