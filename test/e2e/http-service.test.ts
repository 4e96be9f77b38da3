// The HTTP API of examples/http-service, without a browser: status codes and bodies for good and
// bad input, URL-decoding of entity ids, and the Server-Sent Events stream.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createHealthEngine,
  type Availability,
  type ConfigurationIssue,
  type HealthEngine,
  type HealthEntityState,
  type HealthTransitionEvent,
  type RecordOutcome,
  type TopologyDoc,
} from "healthstate";
import { createMemoryAdapter, type MemoryAdapter } from "healthstate/adapters/memory";
import { startServer, type RunningServer } from "../../examples/http-service/server";

const TOPOLOGY: TopologyDoc = {
  systems: [
    { systemId: "checkout", environmentIds: ["prod", "staging"], checks: [{ checkId: "http" }] },
    // Ids with ":" and "%" are escaped inside entity ids ("a%3Ab"), and URL-encoded again in paths.
    { systemId: "a:b", environmentIds: ["50%"], checks: [{ checkId: "ping" }] },
  ],
};

const failing = (count: number, environmentId = "prod") =>
  Array.from({ length: count }, () => ({ systemId: "checkout", checkId: "http", environmentId, status: "unhealthy" }));

let adapter: MemoryAdapter;
let engine: HealthEngine;
let server: RunningServer;

beforeEach(async () => {
  adapter = createMemoryAdapter();
  engine = createHealthEngine({ ...adapter, timers: false });
  (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
  server = await startServer({ port: 0, engine, topology: TOPOLOGY, maxBodyBytes: 4_096 });
});

afterEach(async () => {
  await server.close();
  await engine.close();
  await adapter.close();
});

/** The error body every 4xx carries. */
interface ErrorBody {
  readonly error: { readonly type?: string; readonly code: string; readonly message: string; readonly issues: ConfigurationIssue[] };
}

async function post<T = ErrorBody>(path: string, body: string): Promise<{ status: number; json: T }> {
  const response = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
  return { status: response.status, json: (await response.json()) as T };
}

async function get<T = ErrorBody>(path: string): Promise<{ status: number; json: T }> {
  const response = await fetch(`${server.url}${path}`);
  return { status: response.status, json: (await response.json()) as T };
}

describe("POST /runs", () => {
  it("records a run and returns the engine's outcome", async () => {
    const first = await post("/runs", JSON.stringify({ runId: "r1", systemId: "checkout", checkId: "http", environmentId: "prod", status: "unhealthy" }));
    expect(first).toMatchObject({ status: 200, json: { runId: "r1", duplicate: false, events: [] } });
    const again = await post("/runs", JSON.stringify({ runId: "r1", systemId: "checkout", checkId: "http", environmentId: "prod", status: "unhealthy" }));
    expect(again).toMatchObject({ status: 200, json: { runId: "r1", duplicate: true } });
  });

  it("records a batch and returns one outcome per run", async () => {
    const { status, json } = await post<RecordOutcome[]>("/runs", JSON.stringify(failing(2)));
    expect(status).toBe(200);
    expect(json).toHaveLength(2);
    expect(json[1]?.events.map((event) => [event.entityId, event.type === "health.transition" ? event.newStatus : event.type])).toEqual([
      ["checkout", "degraded"],
      ["checkout::prod", "degraded"],
    ]);
  });

  it("answers a body that fails validation with 400 and every issue", async () => {
    const { status, json } = await post("/runs", JSON.stringify({ systemId: "", checkId: "http", status: "broken", extra: 1 }));
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ type: "validation", code: "ERR_HEALTH_VALIDATION" });
    expect(json.error.issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining([["systemId"], ["status"], ["extra"]]),
    );
    for (const issue of json.error.issues) expect(typeof issue.message).toBe("string");
  });

  it("rejects a whole batch with 400, the run's index first in each path, and writes nothing", async () => {
    const { status, json } = await post("/runs", JSON.stringify([...failing(1), { systemId: "checkout", checkId: "http", status: 42 }]));
    expect(status).toBe(400);
    expect(json.error.issues).toContainEqual(expect.objectContaining({ path: [1, "status"] }));
    expect((await get<HealthEntityState>("/health/checkout%3A%3Aprod")).json.status).toBe("healthy");
    // The same run alone counts as the first failure: the rejected batch left no trace.
    expect((await post<RecordOutcome>("/runs", JSON.stringify(failing(1)[0]))).json.events).toEqual([]);
  });

  it("answers a run that does not fit the topology with 400", async () => {
    const { status, json } = await post("/runs", JSON.stringify({ systemId: "nope", checkId: "http", status: "healthy" }));
    expect(status).toBe(400);
    expect(json.error.issues).toEqual([expect.objectContaining({ path: ["systemId"] })]);
  });

  it.each([
    ["malformed JSON", "{bad"],
    ["an empty body", ""],
  ])("answers %s with 400", async (_name, body) => {
    const { status, json } = await post("/runs", body);
    expect(status).toBe(400);
    expect(json.error.code).toBe("ERR_BAD_JSON");
  });

  it.each([
    ["null", "null"],
    ["a number", "42"],
    ["a string", '"run"'],
  ])("answers %s with 400 and an issue, never 500", async (_name, body) => {
    const { status, json } = await post("/runs", body);
    expect(status).toBe(400);
    expect(json.error.issues.length).toBeGreaterThan(0);
  });

  it("answers an oversized body with 413", async () => {
    const { status, json } = await post("/runs", JSON.stringify(failing(200)));
    expect(status).toBe(413);
    expect(json.error.code).toBe("ERR_BODY_TOO_LARGE");
  });
});

describe("GET /health", () => {
  it("lists every entity of the topology", async () => {
    const { status, json } = await get<{ entities: Record<string, HealthEntityState> }>("/health");
    expect(status).toBe(200);
    expect(Object.keys(json.entities).sort()).toEqual(["a%3Ab", "a%3Ab::50%25", "checkout", "checkout::prod", "checkout::staging"]);
  });

  it("serves one entity, its id URL-decoded", async () => {
    await post("/runs", JSON.stringify(failing(2)));
    for (const path of ["/health/checkout%3A%3Aprod", "/health/checkout::prod"]) {
      expect(await get(path)).toEqual({
        status: 200,
        json: { entityId: "checkout::prod", status: "degraded", healthyChecks: 0, totalChecks: 1 },
      });
    }
    // System "a:b" in environment "50%": entity id "a%3Ab::50%25", URL-encoded once more.
    const escaped = await get(`/health/${encodeURIComponent("a%3Ab::50%25")}`);
    expect(escaped).toMatchObject({ status: 200, json: { entityId: "a%3Ab::50%25", status: "healthy" } });
  });

  it("answers an unknown entity with 404", async () => {
    expect(await get("/health/nope")).toMatchObject({ status: 404, json: { error: { code: "ERR_NOT_FOUND" } } });
    expect((await get("/health/checkout%3A%3Adev")).status).toBe(404);
  });

  it("answers a malformed entity id with 400 and the reason", async () => {
    const { status, json } = await get("/health/a%3Ab");
    expect(status).toBe(400);
    expect(json.error.issues[0]?.message).toContain("a:b");
    expect((await get("/health/x%3A%3Ay%3A%3Az")).status).toBe(400);
  });

  it("answers broken percent-encoding with 400", async () => {
    expect(await get("/health/%E0%A4%A")).toMatchObject({ status: 400, json: { error: { code: "ERR_BAD_URL" } } });
  });

  it("serves availability over a window, 400 for a bad range, 404 for an unknown entity", async () => {
    await post("/runs", JSON.stringify(failing(2)));
    const { status, json } = await get<Availability & { entityId: string }>("/health/checkout%3A%3Aprod/availability");
    expect(status).toBe(200);
    expect(json).toMatchObject({ entityId: "checkout::prod", incidents: 1, successRate: 0 });
    expect(json.healthy + json.degraded + json.unhealthy).toBeCloseTo(1, 9);

    const from = "2026-01-01T00:00:00Z";
    expect((await get(`/health/checkout/availability?from=${from}&to=${from}`)).status).toBe(400);
    expect((await get("/health/checkout/availability?from=yesterday")).status).toBe(400);
    expect((await get("/health/nope/availability")).status).toBe(404);
  });
});

describe("routing", () => {
  it("answers an unknown route with 404 and a wrong method with 405", async () => {
    expect((await get("/nowhere")).status).toBe(404);
    const response = await fetch(`${server.url}/runs`, { method: "PUT", body: "{}" });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST");
  });

  it("serves the status page", async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expect(await response.text()).toContain('new EventSource("/events")');
  });
});

describe("GET /events", () => {
  it("streams each transition as a Server-Sent Event", async () => {
    const response = await fetch(`${server.url}/events`);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const reader = (response.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${String(pattern)}; got ${JSON.stringify(text)}`);
        text += value;
      }
    };
    await readUntil(/: connected\n\n/u);
    await post("/runs", JSON.stringify(failing(2)));
    await readUntil(/id: checkout::prod#1\nevent: [^\n]+\ndata: [^\n]+\n\n/u);
    const frames = text.split("\n\n").filter((frame) => frame.includes("event: health.transition"));
    const events = frames.map((frame) => JSON.parse(/^data: (.*)$/mu.exec(frame)?.[1] ?? "null") as HealthTransitionEvent);
    expect(events.find((event) => event.entityId === "checkout::prod")).toMatchObject({
      type: "health.transition",
      eventId: "checkout::prod#1",
      previousStatus: "healthy",
      newStatus: "degraded",
    });
    await reader.cancel();
  });
});
