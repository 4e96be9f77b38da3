// The status page of examples/http-service in a real browser: the system's Chromium driven by
// playwright-core (which downloads nothing). Runs that make an entity unhealthy are POSTed, and
// the page must show the new status within one second, through its Server-Sent Events stream.
//
// Needs /usr/bin/chromium (Debian: `apt-get install -y chromium`). Without it this test fails;
// it is never skipped.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHealthEngine, type HealthEngine, type TopologyDoc } from "healthstate";
import { createMemoryAdapter, type MemoryAdapter } from "healthstate/adapters/memory";
import { startServer, type RunningServer } from "../../examples/http-service/server";

// The little DOM the page functions below touch; they run in the browser, and the repository's
// tsconfig has no DOM library.
interface PageRow {
  readonly dataset: { readonly entityId?: string; readonly status?: string };
  readonly cells: ArrayLike<{ readonly textContent: string | null }>;
}
declare const document: {
  readonly body: { readonly dataset: { readonly ready?: string } };
  querySelectorAll(selector: string): Iterable<PageRow>;
};

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** How soon after the POST the page must show the change: a bound on behaviour, not a benchmark. */
const LIVE_UPDATE_MS = 1_000;

const TOPOLOGY: TopologyDoc = {
  systems: [
    { systemId: "checkout", environmentIds: ["prod", "staging"], checks: [{ checkId: "http" }] },
    { systemId: "search", environmentIds: ["prod"], checks: [{ checkId: "api" }] },
  ],
};

let userDataDir: string | undefined;
let browser: BrowserContext | undefined;
let adapter: MemoryAdapter;
let engine: HealthEngine;
let server: RunningServer;
let page: Page;
let pageErrors: string[];

/**
 * Launches the browser once for the file. Called from `beforeEach`, so that a missing Chromium
 * fails every test with this message (a failing `beforeAll` would only mark them skipped).
 */
async function launchBrowser(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: the status page end-to-end test drives the system's browser. ` +
        "Install it with `apt-get update && apt-get install -y chromium`.",
    );
  }
  userDataDir = mkdtempSync(join(tmpdir(), "healthstate-chromium-"));
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
}

afterAll(async () => {
  await browser?.close();
  if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
});

beforeEach(async () => {
  browser ??= await launchBrowser();
  adapter = createMemoryAdapter();
  engine = createHealthEngine({ ...adapter, timers: false });
  (await engine.applyTopology(TOPOLOGY))._unsafeUnwrap();
  server = await startServer({ port: 0, engine, topology: TOPOLOGY });
  page = await browser.newPage();
  pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(server.url);
  // The page has its snapshot and its event stream.
  await page.waitForFunction(() => document.body.dataset.ready === "true", undefined, { timeout: 5_000 });
});

afterEach(async () => {
  await page?.close();
  await server?.close();
  await engine?.close();
  await adapter?.close();
  expect(pageErrors).toEqual([]);
});

/** The row of an entity as the page shows it. */
function row(entityId: string) {
  return page.evaluate((id) => {
    const tr = [...document.querySelectorAll("tr[data-entity-id]")].find((candidate) => candidate.dataset.entityId === id);
    if (tr === undefined) return undefined;
    return { status: tr.dataset.status, shown: tr.cells[1]?.textContent, checks: tr.cells[2]?.textContent };
  }, entityId);
}

/** Resolves once the page shows `status` for the entity; fails after `LIVE_UPDATE_MS`. */
async function waitForStatus(entityId: string, status: string): Promise<void> {
  await page.waitForFunction(
    ([id, expected]) =>
      [...document.querySelectorAll("tr[data-entity-id]")].some(
        (tr) => tr.dataset.entityId === id && tr.dataset.status === expected,
      ),
    [entityId, status] as const,
    { timeout: LIVE_UPDATE_MS },
  );
}

async function postRuns(runs: unknown): Promise<void> {
  const response = await fetch(`${server.url}/runs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(runs) });
  expect(response.status).toBe(200);
}

const runs = (status: string, count: number, environmentId = "prod") =>
  Array.from({ length: count }, () => ({ systemId: "checkout", checkId: "http", environmentId, status }));

describe("status page", () => {
  it("lists every entity with its status", async () => {
    const ids = await page.evaluate(() => [...document.querySelectorAll("tr[data-entity-id]")].map((tr) => tr.dataset.entityId));
    expect(ids).toEqual(["checkout", "checkout::prod", "checkout::staging", "search", "search::prod"]);
    expect(await row("checkout::prod")).toEqual({ status: "healthy", shown: "healthy", checks: "1 / 1" });
  });

  it("shows an entity turning unhealthy within a second of the POST, and its recovery", async () => {
    // Five failures in a row: unhealthy under the default thresholds.
    await postRuns(runs("unhealthy", 5));
    await waitForStatus("checkout::prod", "unhealthy");
    await waitForStatus("checkout", "unhealthy");
    expect(await row("checkout::prod")).toEqual({ status: "unhealthy", shown: "unhealthy", checks: "0 / 1" });
    expect(await row("checkout::staging")).toMatchObject({ status: "healthy" });

    await postRuns(runs("healthy", 1));
    await waitForStatus("checkout::prod", "healthy");
    expect(await row("checkout::prod")).toEqual({ status: "healthy", shown: "healthy", checks: "1 / 1" });
  });

  it("shows changes recorded by anyone writing to the engine, not only through POST /runs", async () => {
    (await engine.recordRuns(runs("degraded", 2, "staging").map((run) => ({ ...run, status: "degraded" as const }))))._unsafeUnwrap();
    await waitForStatus("checkout::staging", "degraded");
  });
});
