/**
 * What the postgres-workers example shares between its two variants (main.ts: processes on a
 * Postgres server; embedded.ts: engines on one PGlite): the topology, each worker's runs, the
 * webhook sender every worker runs in one subscription group, a webhook receiver that keeps a
 * ledger, and the final check of that ledger against the transition log.
 */
import { createServer } from "node:http";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { AddressInfo } from "node:net";
import {
  encodeHealthEntityId,
  type HealthEngine,
  type HealthEngineOptions,
  type HealthEventHandler,
  type HealthStatus,
  type HealthTransitionEvent,
  type RunInput,
  type Thresholds,
  type TopologyDoc,
} from "healthstate";

/** Every worker subscribes its webhook sender with this group: each event goes to one of them. */
export const WEBHOOK_GROUP = "webhook-sender";

/** Quick to change in both directions, so that random runs make plenty of transitions. */
const TOUCHY: Thresholds = {
  mode: "consecutive",
  healthy: { minSuccessCount: 1 },
  degraded: { minFailureCount: 1 },
  unhealthy: { minFailureCount: 3 },
};

const SYSTEMS = ["checkout", "search", "billing"];
const ENVIRONMENTS = ["prod", "staging"];
const CHECKS = ["http", "db"];

/** Three systems in two environments with two checks each: nine entities, twelve slices. */
export const TOPOLOGY: TopologyDoc = {
  systems: SYSTEMS.map((systemId) => ({
    systemId,
    environmentIds: ENVIRONMENTS,
    checks: CHECKS.map((checkId) => ({ checkId, thresholds: TOUCHY })),
  })),
};

/** Every entity of the topology: each system's rollup and its (system, environment) views. */
export const ENTITY_IDS: readonly string[] = SYSTEMS.flatMap((systemId) =>
  [null, ...ENVIRONMENTS].map((environmentId) => encodeHealthEntityId({ systemId, environmentId }).unwrapOr(systemId)),
);

/**
 * Engine options of every worker. A lease of 3 s lets the survivors take over what a killed
 * worker had claimed but not acknowledged, soon; the webhook's timeout stays well below it, so a
 * live worker's delivery (and its acknowledgement) ends before its lease does.
 */
export const WORKER_ENGINE_OPTIONS = {
  timers: false,
  delivery: { leaseMs: 3_000, pollIntervalMs: 100 },
  retry: { initialDelayMs: 50, maxDelayMs: 500 },
} satisfies Partial<HealthEngineOptions>;

const WEBHOOK_TIMEOUT_MS = 1_000;

/** The runs worker `index` records: random slices and statuses, the same for every execution. */
export function plannedRuns(index: number, name: string, count: number): RunInput[] {
  let seed = 0x9e3779b9 ^ (index * 0x85ebca6b);
  const random = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const statuses: HealthStatus[] = ["healthy", "healthy", "healthy", "degraded", "unhealthy"];
  return Array.from({ length: count }, (_, run) => ({
    runId: `${name}-${run}`,
    systemId: pick(SYSTEMS),
    checkId: pick(CHECKS),
    environmentId: pick(ENVIRONMENTS),
    status: pick(statuses),
    latencyMs: Math.round(random() * 300),
  }));
}

/**
 * Records runs one after the other, calling `onProgress` after each, as a worker taking results
 * off a queue would. Stops early when `stop()` says so. A run the store could not take is counted and skipped: nothing of it was written.
 */
export async function recordAll(
  engine: HealthEngine,
  runs: readonly RunInput[],
  onProgress: (recorded: number) => void = () => undefined,
  stop: () => boolean = () => false,
): Promise<{ recorded: number; failed: number }> {
  let recorded = 0;
  let failed = 0;
  for (const run of runs) {
    if (stop()) break;
    const outcome = await engine.recordRun(run);
    if (outcome.isErr()) {
      if (outcome.error.type === "closed" || stop()) break;
      failed += 1;
      console.error(`recordRun failed: ${outcome.error.message}`);
      continue;
    }
    recorded += 1;
    onProgress(recorded);
    // Let I/O in: on PGlite every query settles within microtasks, so a loop of nothing but
    // writes would hold the event loop (and the webhook sender's HTTP responses) until it ends.
    await nextTurn();
  }
  return { recorded, failed };
}

/**
 * The webhook every worker runs: POSTs each transition with its `eventId` as the Idempotency-Key.
 * A non-2xx answer or a failed request throws, so the engine retries it with backoff (any worker
 * of the group may take it). A request that failed without an answer (a timeout) may still have
 * been applied: `onUncertain` hears of it, so the final check can tell the redelivery that follows
 * from a duplicate. Other event types (flapping) are acknowledged without a webhook.
 */
export function webhookSender(url: string, worker: string, onUncertain: (eventId: string) => void): HealthEventHandler {
  return async (event) => {
    if (event.type !== "health.transition") return;
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": event.eventId, "x-worker": worker },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
    } catch (error) {
      onUncertain(event.eventId);
      throw error;
    }
    if (!response.ok) throw new Error(`webhook answered ${response.status}`);
  };
}

/** One webhook the receiver accepted. */
export interface Arrival {
  readonly eventId: string;
  readonly entityId: string;
  readonly sequence: number;
  readonly worker: string;
}

/** An HTTP endpoint standing in for the webhook's consumer. */
export interface WebhookReceiver {
  readonly url: string;
  /** Every accepted request, repeats included, in arrival order. */
  readonly arrivals: Arrival[];
  /** Requests answered 503 on purpose, to show the senders retry. */
  readonly refused: () => number;
  close(): Promise<void>;
}

/**
 * Starts the receiver. Like any webhook consumer it must be idempotent, since delivery is at
 * least once: a worker killed after sending but before acknowledging is redelivered by another.
 * It applies each Idempotency-Key once (a repeat is answered 2xx and not applied again), takes
 * `latencyMs` to answer (so that a killed worker always has webhooks in flight), and answers 503
 * to the first attempt of every `refuseEvery`-th new event, as a flaky consumer would.
 */
export async function startWebhookReceiver(
  options: { readonly refuseEvery?: number; readonly latencyMs?: number } = {},
): Promise<WebhookReceiver> {
  const { refuseEvery = 7, latencyMs = 100 } = options;
  const arrivals: Arrival[] = [];
  const applied = new Set<string>();
  const refusedOnce = new Set<string>();
  let fresh = 0;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      let event: HealthTransitionEvent;
      try {
        event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as HealthTransitionEvent;
      } catch {
        response.writeHead(400).end();
        return;
      }
      const key = String(request.headers["idempotency-key"]);
      if (!applied.has(key) && !refusedOnce.has(key) && ++fresh % refuseEvery === 0) {
        refusedOnce.add(key);
        response.writeHead(503).end();
        return;
      }
      applied.add(key);
      arrivals.push({ eventId: key, entityId: event.entityId, sequence: event.sequence, worker: String(request.headers["x-worker"]) });
      setTimeout(() => response.writeHead(204).end(), latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    arrivals,
    refused: () => refusedOnce.size,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The transitions the store committed, as `entityId#sequence`, from the transition log. */
export async function committedTransitions(engine: HealthEngine): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const entityId of ENTITY_IDS) {
    const log = await engine.listTransitions({ entityId });
    if (log.isErr()) throw log.error;
    for (const transition of log.value) keys.add(`${transition.entityId}#${transition.sequence}`);
  }
  return keys;
}

/** The final check: every committed transition delivered, once, in per-entity order. */
export interface FleetReport {
  readonly transitions: number;
  readonly delivered: number;
  /**
   * Repeated deliveries that nothing explains: neither the crash (the first delivery came from
   * the dead worker, which could not acknowledge it) nor a failed attempt (a timeout after which
   * the request may have been applied). Any would mean two workers were handed the same event.
   */
  readonly duplicates: number;
  /** Committed transitions that never arrived. */
  readonly lost: number;
  /** Arrivals of events that were never committed. */
  readonly phantoms: number;
  /** Repeats of events the dead worker had sent but not acknowledged. */
  readonly redeliveredAfterCrash: number;
  /** Repeats of events whose earlier attempt failed without an answer. */
  readonly redeliveredAfterTimeout: number;
  /** Events first applied out of their entity's sequence order. */
  readonly outOfOrder: number;
  readonly ok: boolean;
  readonly line: string;
}

export function checkLedger(
  committed: ReadonlySet<string>,
  arrivals: readonly Arrival[],
  explanations: { readonly crashedWorker: string; readonly uncertain: ReadonlySet<string> },
): FleetReport {
  const firstFrom = new Map<string, string>();
  const lastSequence = new Map<string, number>();
  let duplicates = 0;
  let redeliveredAfterCrash = 0;
  let redeliveredAfterTimeout = 0;
  let outOfOrder = 0;
  for (const arrival of arrivals) {
    const key = `${arrival.entityId}#${arrival.sequence}`;
    const first = firstFrom.get(key);
    if (first === undefined) {
      firstFrom.set(key, arrival.worker);
      if (arrival.sequence <= (lastSequence.get(arrival.entityId) ?? 0)) outOfOrder += 1;
      lastSequence.set(arrival.entityId, arrival.sequence);
    } else if (first === explanations.crashedWorker) {
      redeliveredAfterCrash += 1;
    } else if (explanations.uncertain.has(arrival.eventId)) {
      redeliveredAfterTimeout += 1;
    } else {
      duplicates += 1;
    }
  }
  const delivered = [...committed].filter((key) => firstFrom.has(key)).length;
  const lost = committed.size - delivered;
  const phantoms = [...firstFrom.keys()].filter((key) => !committed.has(key)).length;
  return {
    transitions: committed.size,
    delivered,
    duplicates,
    lost,
    phantoms,
    redeliveredAfterCrash,
    redeliveredAfterTimeout,
    outOfOrder,
    ok: duplicates === 0 && lost === 0 && phantoms === 0 && outOfOrder === 0,
    line: `${committed.size} transitions, ${delivered} delivered, ${duplicates} duplicates, ${lost} lost`,
  };
}

/** Prints the report; returns the process exit code. */
export function printReport(
  report: FleetReport,
  details: { readonly crashedWorker: string; readonly crash: string; readonly refused: number },
): number {
  const lines = [
    "",
    report.line,
    `${details.crashedWorker} ${details.crash}; the others delivered every transition it had committed.`,
    "Delivery is at least once; the receiver applies each Idempotency-Key (the eventId) once:",
    `  ${report.redeliveredAfterCrash} webhook(s) ${details.crashedWorker} had sent but not acknowledged were sent again once its lease expired,`,
    `  ${report.redeliveredAfterTimeout} webhook(s) were sent again after an attempt timed out,`,
    `  ${details.refused} first attempt(s) answered 503 on purpose were retried.`,
    report.outOfOrder === 0 ? "Per-entity order kept." : `Per-entity order broken for ${report.outOfOrder} event(s).`,
  ];
  if (report.phantoms > 0) lines.push(`${report.phantoms} delivered event(s) were never committed.`);
  console.log(lines.join("\n"));
  return report.ok ? 0 : 1;
}
