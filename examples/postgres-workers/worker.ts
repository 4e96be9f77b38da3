/**
 * One worker process of examples/postgres-workers/main.ts (forked by it, not run by hand): its
 * own pg Pool, adapter and engine on the shared schema. It records its runs as fast as it can,
 * concurrently with the other workers and for the same systems, and runs the webhook sender in
 * the shared subscription group. Talks to the parent over the IPC channel.
 */
import pg from "pg";
import { createHealthEngine } from "healthstate";
import { createPostgresAdapter } from "healthstate/adapters/postgres";
import { WEBHOOK_GROUP, WORKER_ENGINE_OPTIONS, plannedRuns, recordAll, webhookSender } from "./fleet.js";

/** What the parent passes as the first argument, as JSON. */
export interface WorkerConfig {
  readonly index: number;
  readonly name: string;
  readonly databaseUrl: string;
  readonly schema: string;
  readonly webhookUrl: string;
  readonly runs: number;
}

/** Messages a worker sends to the parent. */
export type WorkerMessage =
  | { readonly type: "ready" }
  | { readonly type: "progress"; readonly recorded: number }
  | { readonly type: "recorded"; readonly recorded: number; readonly failed: number }
  /** `uncertain`: events whose webhook attempt failed without an answer (it may have been applied). */
  | { readonly type: "flushed"; readonly uncertain: string[] };

/** Messages the parent sends to a worker. */
export type ParentMessage = { readonly type: "start" } | { readonly type: "stop" };

const config = JSON.parse(process.argv[2] ?? "") as WorkerConfig;
const send = (message: WorkerMessage) => process.send?.(message);
const nextMessage = (type: ParentMessage["type"]) =>
  new Promise<void>((resolve) => {
    const listener = (message: ParentMessage) => {
      if (message.type !== type) return;
      process.off("message", listener);
      resolve();
    };
    process.on("message", listener);
  });
const started = nextMessage("start");
const stopped = nextMessage("stop");

const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 4 });
const adapter = createPostgresAdapter({ client: pool, schema: config.schema });
const engine = createHealthEngine({ ...adapter, ...WORKER_ENGINE_OPTIONS });
const uncertain = new Set<string>();
engine.subscribe(webhookSender(config.webhookUrl, config.name, (eventId) => uncertain.add(eventId)), { group: WEBHOOK_GROUP });
send({ type: "ready" });

await started;
const { recorded, failed } = await recordAll(engine, plannedRuns(config.index, config.name, config.runs), (count) =>
  send({ type: "progress", recorded: count }),
);
send({ type: "recorded", recorded, failed });

// Once every worker has stopped writing: deliver what is left (including what a dead worker had
// claimed, once its lease expires), then shut down.
await stopped;
await engine.flush();
await engine.close();
await adapter.close();
await pool.end();
send({ type: "flushed", uncertain: [...uncertain] });
process.disconnect();
