import { createHealthEngine } from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";
import { RunStream, topologyOf } from "./workload";
const systems = Number(process.env.SYSTEMS ?? 250);
const engine = createHealthEngine({ ...createMemoryAdapter(), timers: false, stateCacheSystems: Math.max(systems, 10_000) });
for (let from = 0; from < systems; from += 2500) (await engine.applyTopology(topologyOf(from, Math.min(systems, from + 2500))))._unsafeUnwrap();
const stream = new RunStream({ systems, seed: 5, prefix: "s" });
for (let i = 0; i < 20; i += 1) (await engine.recordRuns(stream.spread(250, 4)))._unsafeUnwrap();
for (const round of [1, 2, 3]) {
  let busy = 0; let runs = 0;
  const start = performance.now();
  while (performance.now() - start < 1500) {
    const [run] = stream.spread(1, 1);
    const t = performance.now();
    (await engine.recordRun(run!))._unsafeUnwrap();
    busy += performance.now() - t; runs += 1;
  }
  console.log(`systems ${systems} round ${round}: ${(busy * 1000 / runs).toFixed(1)} µs/run over ${runs}`);
}
await engine.close();
