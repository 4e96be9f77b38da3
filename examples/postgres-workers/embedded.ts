/**
 * The embedded variant of the postgres-workers example, on PGlite (PostgreSQL in WebAssembly, no
 * server). PGlite is one connection in one process, so this variant runs ONE PROCESS WITH THREE
 * ENGINES sharing one PGlite database, each through its own adapter, standing in for the three
 * worker processes of main.ts. They record runs concurrently for the same systems and run the
 * webhook sender in one subscription group.
 *
 * A process cannot SIGKILL part of itself, so the crash is simulated: midway, worker-2 stops
 * recording and its adapter is closed, which cuts it off from the database exactly where it is.
 * What it had claimed and not acknowledged is taken over by the others once its lease expires.
 *
 *   npx tsx examples/postgres-workers/embedded.ts
 */
import { PGlite } from "@electric-sql/pglite";
import { createHealthEngine } from "healthstate";
import { createPostgresAdapter, migrate } from "healthstate/adapters/postgres";
import {
  TOPOLOGY,
  WEBHOOK_GROUP,
  WORKER_ENGINE_OPTIONS,
  checkLedger,
  committedTransitions,
  plannedRuns,
  printReport,
  recordAll,
  startWebhookReceiver,
  webhookSender,
} from "./fleet.js";

const RUNS_PER_WORKER = 30;
const VICTIM = 1;

const db = await PGlite.create();
await migrate(db, { schema: "healthstate" });
const receiver = await startWebhookReceiver();
const uncertain = new Set<string>();

const workers = ["worker-1", "worker-2", "worker-3"].map((name, index) => {
  const adapter = createPostgresAdapter({ client: db, schema: "healthstate" });
  const crashed = { value: false };
  const engine = createHealthEngine({
    ...adapter,
    ...WORKER_ENGINE_OPTIONS,
    // After the simulated crash, the dead worker's delivery loop only sees a closed adapter.
    onBackgroundError: (error) => {
      if (!crashed.value) console.error(`${name}:`, error);
    },
  });
  engine.subscribe(webhookSender(receiver.url, name, (eventId) => uncertain.add(eventId)), { group: WEBHOOK_GROUP });
  return { name, index, adapter, engine, crashed };
});
const [first, victim] = [workers[0], workers[VICTIM]] as [(typeof workers)[number], (typeof workers)[number]];

const applied = await first.engine.applyTopology(TOPOLOGY);
if (applied.isErr()) throw applied.error;
console.log(`embedded variant: 1 process, ${workers.length} engines on one PGlite, ${RUNS_PER_WORKER} runs each, for the same ${TOPOLOGY.systems.length} systems`);

let crashedAfter = 0;
await Promise.all(
  workers.map((worker) =>
    recordAll(
      worker.engine,
      plannedRuns(worker.index, worker.name, RUNS_PER_WORKER),
      (recorded) => {
        if (worker !== victim || recorded !== RUNS_PER_WORKER / 2) return;
        crashedAfter = recorded;
        worker.crashed.value = true;
        void worker.adapter.close();
        console.log(`crashed ${worker.name} (adapter closed) after ${recorded} of its ${RUNS_PER_WORKER} runs`);
      },
      () => worker.crashed.value,
    ),
  ),
);

// Every worker has stopped writing: the survivors deliver what is left, the dead worker's leased
// events included, once their leases expire.
const survivors = workers.filter((worker) => worker !== victim);
await Promise.all(survivors.map((worker) => worker.engine.flush()));

const report = checkLedger(await committedTransitions(first.engine), receiver.arrivals, { crashedWorker: victim.name, uncertain });
process.exitCode = printReport(report, {
  crashedWorker: victim.name,
  crash: `crashed (simulated: its adapter was closed) after ${crashedAfter} of its runs`,
  refused: receiver.refused(),
});

for (const worker of workers) {
  await worker.engine.close();
  await worker.adapter.close();
}
await receiver.close();
await db.close();
