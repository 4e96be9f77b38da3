/**
 * Three worker processes share one Postgres schema, record runs concurrently for the same
 * systems, and run a webhook sender in one subscription group, so each transition is delivered
 * by exactly one of them. Midway, this script kills one worker with SIGKILL; the survivors
 * deliver everything it had committed. At the end the receiver's ledger is checked against the
 * transition log: "N transitions, N delivered, 0 duplicates, 0 lost".
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx examples/postgres-workers/main.ts
 *
 * It works in its own schema (healthstate_workers_<pid>), dropped at the end. For the variant
 * without a server, see embedded.ts.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createHealthEngine } from "healthstate";
import { createPostgresAdapter, migrate } from "healthstate/adapters/postgres";
import { TOPOLOGY, checkLedger, committedTransitions, printReport, startWebhookReceiver } from "./fleet.js";
import type { ParentMessage, WorkerConfig, WorkerMessage } from "./worker.js";

const RUNS_PER_WORKER = 80;
const VICTIM = 1;
const TIMEOUT_MS = 60_000;

const databaseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
const schema = `healthstate_workers_${process.pid}`;
const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
const children: ChildProcess[] = [];
const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

try {
  await migrate(pool, { schema });
  // The parent only applies the topology and reads the transition log at the end.
  const adapter = createPostgresAdapter({ client: pool, schema, listen: false });
  const engine = createHealthEngine({ ...adapter, timers: false });
  const applied = await engine.applyTopology(TOPOLOGY);
  if (applied.isErr()) throw applied.error;
  const receiver = await startWebhookReceiver();

  const workerFile = fileURLToPath(new URL("./worker.ts", import.meta.url));
  const names = ["worker-1", "worker-2", "worker-3"];
  const victim = names[VICTIM] as string;
  const progress = new Map<string, number>();
  let killedAfter = 0;
  const uncertain = new Set<string>();
  const recorded: Array<Promise<unknown>> = [];
  const flushed: Array<Promise<unknown>> = [];
  for (const [index, name] of names.entries()) {
    const config: WorkerConfig = { index, name, databaseUrl, schema, webhookUrl: receiver.url, runs: RUNS_PER_WORKER };
    const child = fork(workerFile, [JSON.stringify(config)], { execArgv: ["--import", "tsx"] });
    children.push(child);
    const message = (type: WorkerMessage["type"]) =>
      new Promise<void>((resolve, reject) => {
        child.on("message", (received: WorkerMessage) => {
          if (received.type === type) resolve();
        });
        child.once("exit", (code, signal) => reject(new Error(`${name} exited (${signal ?? code}) before "${type}"`)));
      });
    child.on("message", (received: WorkerMessage) => {
      if (received.type === "flushed") for (const eventId of received.uncertain) uncertain.add(eventId);
      if (received.type !== "progress") return;
      progress.set(name, received.recorded);
      if (name === victim && received.recorded === RUNS_PER_WORKER / 2 && alive(child)) {
        killedAfter = received.recorded;
        child.kill("SIGKILL");
        console.log(`killed ${name} (SIGKILL) after ${killedAfter} of its ${RUNS_PER_WORKER} runs`);
      }
    });
    if (name !== victim) {
      recorded.push(message("recorded"));
      flushed.push(message("flushed"));
    }
    await message("ready");
  }
  const within = <T>(promise: Promise<T>, what: string) =>
    Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS).unref())]);

  console.log(`${names.length} workers on schema ${schema}, ${RUNS_PER_WORKER} runs each, for the same ${TOPOLOGY.systems.length} systems`);
  for (const child of children) child.send({ type: "start" } satisfies ParentMessage);
  await within(Promise.all(recorded), "the surviving workers to record their runs");
  for (const child of children.filter(alive)) child.send({ type: "stop" } satisfies ParentMessage);
  await within(Promise.all(flushed), "the surviving workers to deliver every event");

  const report = checkLedger(await committedTransitions(engine), receiver.arrivals, { crashedWorker: victim, uncertain });
  process.exitCode = printReport(report, {
    crashedWorker: victim,
    crash: `was killed with SIGKILL after ${killedAfter} of its runs`,
    refused: receiver.refused(),
  });
  await engine.close();
  await adapter.close();
  await receiver.close();
} finally {
  const running = children.filter(alive);
  for (const child of running) child.kill("SIGKILL");
  await Promise.all(running.map((child) => once(child, "exit")));
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch((error: unknown) => console.error(`could not drop schema ${schema}:`, error));
  await pool.end();
}
