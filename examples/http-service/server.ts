/**
 * healthstate behind a small HTTP service (node:http, no framework).
 *
 *   POST /runs                                 record one run (object) or a batch (array)
 *   GET  /health                               every known entity's state
 *   GET  /health/:entityId                     one entity's state (the id URL-encoded)
 *   GET  /health/:entityId/availability?from&to   availability over [from, to) (default: last 24 h)
 *   GET  /events                               transitions as Server-Sent Events
 *   GET  /                                     a live status page (status-page.html)
 *
 * Bad input is always a 4xx with a JSON body, never a 500: malformed JSON is a 400, a body the
 * engine's validation rejects is a 400 carrying every issue (`{ path, message }`), an unknown
 * entity is a 404.
 *
 * Run it on the in-memory adapter with a small topology (add `--simulate` for random runs):
 *
 *   npx tsx examples/http-service/server.ts [--simulate]
 *   curl -X POST localhost:3000/runs -d '{"systemId":"checkout","checkId":"http","environmentId":"prod","status":"unhealthy"}'
 *   curl localhost:3000/health/checkout%3A%3Aprod
 */
import { randomUUID } from "node:crypto";
import { readFileSync, realpathSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import {
  createHealthEngine,
  encodeHealthEntityId,
  type HealthEngine,
  type HealthError,
  type HealthStatus,
  type RunInput,
  type TopologyDoc,
} from "healthstate";
import { createMemoryAdapter } from "healthstate/adapters/memory";

/** Options of `startServer`. */
export interface ServerOptions {
  readonly engine: HealthEngine;
  /** `0` picks a free port. @default 0 */
  readonly port?: number;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /**
   * The topology the engine serves, so the status page can list every entity from the start
   * (the engine answers for ids, it does not list them). Entities of posted runs and of
   * published events are added as they appear.
   */
  readonly topology?: TopologyDoc;
  /**
   * Subscription group of this server's event stream. Each server needs its own group, since every
   * server must see every event. With a durable store, give each replica a stable name (its host
   * name, say): a group that never comes back keeps its undelivered events from being pruned.
   * @default `http-sse-<random uuid>`
   */
  readonly sseGroup?: string;
  /** Largest accepted request body, in bytes. @default 1048576 */
  readonly maxBodyBytes?: number;
}

/** A running server. */
export interface RunningServer {
  /** Base URL, without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Ends event streams, stops the subscription and the server. Does not close the engine. */
  close(): Promise<void>;
}

/** Starts the service; resolves once it listens. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { engine, port = 0, host = "127.0.0.1", maxBodyBytes = 1_048_576 } = options;
  const page = readFileSync(new URL("./status-page.html", import.meta.url));
  const known = new Set<string>(entityIdsOf(options.topology));
  const streams = new Set<ServerResponse>();

  // One subscription per server, fanned out to every connected client. It starts "now": a page
  // reads the current state from GET /health and only needs the changes after it.
  const subscription = engine.subscribe(
    (event) => {
      known.add(event.entityId);
      const frame = `id: ${event.eventId}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
      for (const stream of streams) stream.write(frame);
    },
    { group: options.sseGroup ?? `http-sse-${randomUUID()}`, from: "now" },
  );
  const heartbeat = setInterval(() => {
    for (const stream of streams) stream.write(": heartbeat\n\n");
  }, 15_000);
  heartbeat.unref();

  const routes: Route[] = [
    {
      pattern: [],
      GET: (_request, response) => {
        response.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-cache",
          "content-security-policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        });
        response.end(page);
      },
    },
    {
      pattern: ["runs"],
      POST: async (request, response) => {
        const body = await readJson(request, maxBodyBytes);
        if (!body.ok) return sendJson(response, body.status, { error: body.error });
        const input: unknown = body.value;
        const outcome = Array.isArray(input)
          ? await engine.recordRuns(input as RunInput[])
          : await engine.recordRun(input as RunInput);
        if (outcome.isErr()) return sendError(response, outcome.error);
        for (const run of [input].flat() as RunInput[]) {
          known.add(encode(run.systemId, null));
          if (typeof run.environmentId === "string") known.add(encode(run.systemId, run.environmentId));
        }
        sendJson(response, 200, outcome.value);
      },
    },
    {
      pattern: ["health"],
      GET: async (_request, response) => {
        const states = await engine.getManyHealth([...known].sort());
        if (states.isErr()) return sendError(response, states.error);
        sendJson(response, 200, { entities: states.value });
      },
    },
    {
      pattern: ["health", ":entityId"],
      GET: async (_request, response, { entityId = "" }) => {
        const state = await engine.getHealth(entityId);
        if (state.isErr()) return sendError(response, state.error);
        if (state.value === undefined) return sendJson(response, 404, notFound(entityId));
        sendJson(response, 200, { entityId, ...state.value });
      },
    },
    {
      pattern: ["health", ":entityId", "availability"],
      GET: async (_request, response, { entityId = "" }, query) => {
        const to = query.get("to") ?? new Date().toISOString();
        const from = query.get("from") ?? new Date(Date.parse(to) - 24 * 3_600_000).toISOString();
        const availability = await engine.availability({ entityId, from, to });
        if (availability.isErr()) return sendError(response, availability.error);
        sendJson(response, 200, { entityId, from, to, ...availability.value });
      },
    },
    {
      pattern: ["events"],
      GET: (request, response) => {
        response.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          connection: "keep-alive",
        });
        // Reconnect after a second; the comment line makes clients see the stream as open at once.
        response.write("retry: 1000\n: connected\n\n");
        streams.add(response);
        request.on("close", () => streams.delete(response));
      },
    },
  ];

  const server = createServer((request, response) => {
    handle(routes, request, response).catch((error: unknown) => {
      // Only a bug gets here: every expected failure is answered by its route.
      console.error(error);
      if (!response.headersSent) sendJson(response, 500, { error: { code: "ERR_INTERNAL", message: "internal error" } });
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () => {
      closing ??= (async () => {
        clearInterval(heartbeat);
        for (const stream of streams) stream.end();
        streams.clear();
        await subscription.unsubscribe();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

type Handler = (
  request: IncomingMessage,
  response: ServerResponse,
  params: Record<string, string>,
  query: URLSearchParams,
) => void | Promise<void>;

interface Route {
  /** Path segments; `:name` captures one URL-decoded segment. */
  readonly pattern: readonly string[];
  readonly GET?: Handler;
  readonly POST?: Handler;
}

async function handle(routes: readonly Route[], request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? "/", "http://localhost");
  // Split before decoding, so an id may contain an encoded "/" (%2F).
  const segments = url.pathname.split("/").filter((segment) => segment !== "");
  for (const route of routes) {
    if (route.pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const matches = route.pattern.every((part, index) => {
      const segment = segments[index] as string;
      if (!part.startsWith(":")) return part === segment;
      params[part.slice(1)] = segment;
      return true;
    });
    if (!matches) continue;
    for (const [name, raw] of Object.entries(params)) {
      try {
        params[name] = decodeURIComponent(raw);
      } catch {
        return sendJson(response, 400, {
          error: { code: "ERR_BAD_URL", message: `${name} is not valid percent-encoding: ${JSON.stringify(raw)}` },
        });
      }
    }
    const handler = request.method === "GET" ? route.GET : request.method === "POST" ? route.POST : undefined;
    if (handler === undefined) {
      const allow = (["GET", "POST"] as const).filter((name) => route[name] !== undefined).join(", ");
      response.setHeader("allow", allow);
      return sendJson(response, 405, { error: { code: "ERR_METHOD_NOT_ALLOWED", message: `use ${allow}` } });
    }
    return handler(request, response, params, url.searchParams);
  }
  sendJson(response, 404, { error: { code: "ERR_NO_ROUTE", message: `no route for ${request.method ?? "?"} ${url.pathname}` } });
}

type JsonBody =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly status: number; readonly error: { code: string; message: string } };

/** Reads and parses a JSON body; an oversized or malformed one is an error value, never a throw. */
async function readJson(request: IncomingMessage, maxBytes: number): Promise<JsonBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Keep reading (and dropping) the rest, so the client gets the answer instead of a reset.
    if (size <= maxBytes) chunks.push(chunk);
  }
  if (size > maxBytes) {
    return { ok: false, status: 413, error: { code: "ERR_BODY_TOO_LARGE", message: `the body exceeds ${maxBytes} bytes` } };
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString("utf8")) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, status: 400, error: { code: "ERR_BAD_JSON", message: `the body is not valid JSON: ${reason}` } };
  }
}

const STATUS_OF_ERROR: Record<HealthError["type"], number> = {
  validation: 400,
  not_found: 404,
  conflict: 409,
  store: 503,
  closed: 503,
};

/** Answers an engine error: its stable code, message and, for validation, every issue. */
function sendError(response: ServerResponse, error: HealthError): void {
  const body: Record<string, unknown> = { type: error.type, code: error.code, message: error.message };
  if (error.type === "validation") body.issues = error.issues;
  sendJson(response, STATUS_OF_ERROR[error.type], { error: body });
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  response.end(JSON.stringify(body));
}

function notFound(entityId: string) {
  return { error: { code: "ERR_NOT_FOUND", message: `no entity ${JSON.stringify(entityId)}` } };
}

function encode(systemId: string, environmentId: string | null): string {
  return encodeHealthEntityId({ systemId, environmentId }).unwrapOr(systemId);
}

/** Every entity id a topology can have: each system's rollup and each member environment. */
function entityIdsOf(topology: TopologyDoc | undefined): string[] {
  return (topology?.systems ?? []).flatMap((system) => [
    encode(system.systemId, null),
    ...system.environmentIds.map((environmentId) => encode(system.systemId, environmentId)),
  ]);
}

/** The demo service: memory adapter, a small topology, optionally random runs every second. */
async function main(): Promise<void> {
  const adapter = createMemoryAdapter();
  const engine = createHealthEngine(adapter);
  const topology: TopologyDoc = {
    systems: [
      { systemId: "checkout", environmentIds: ["prod", "staging"], checks: [{ checkId: "http" }, { checkId: "postgres" }] },
      { systemId: "search", environmentIds: ["prod"], checks: [{ checkId: "api" }] },
      { systemId: "billing", environmentIds: [], checks: [{ checkId: "cron" }] },
    ],
  };
  const applied = await engine.applyTopology(topology);
  if (applied.isErr()) throw applied.error;
  const server = await startServer({ engine, topology, port: Number(process.env.PORT ?? 3000) });
  console.log(`healthstate http-service on ${server.url} (status page: ${server.url}/)`);
  console.log(
    `try: curl -X POST ${server.url}/runs -d '{"systemId":"checkout","checkId":"http","environmentId":"prod","status":"unhealthy"}'`,
  );

  let simulation: ReturnType<typeof setInterval> | undefined;
  if (process.argv.includes("--simulate")) {
    const slices: Array<[string, string, string | null]> = [
      ["checkout", "http", "prod"],
      ["checkout", "postgres", "prod"],
      ["checkout", "http", "staging"],
      ["search", "api", "prod"],
      ["billing", "cron", null],
    ];
    const statuses: HealthStatus[] = ["healthy", "healthy", "healthy", "degraded", "unhealthy"];
    simulation = setInterval(() => {
      const [systemId, checkId, environmentId] = slices[Math.floor(Math.random() * slices.length)] as [string, string, string | null];
      const status = statuses[Math.floor(Math.random() * statuses.length)] as HealthStatus;
      void engine.recordRun({ systemId, checkId, environmentId, status, latencyMs: Math.round(Math.random() * 200) });
    }, 250);
  }

  const shutdown = async () => {
    clearInterval(simulation);
    await server.close();
    await engine.close();
    await adapter.close();
  };
  process.once("SIGINT", () => void shutdown());
  process.once("SIGTERM", () => void shutdown());
}

const executedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (executedDirectly) await main();
