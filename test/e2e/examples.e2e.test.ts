// Runs the examples as a user would (`node --import tsx examples/…`, a child process each) and
// checks what they print. Inside the repository `healthstate` resolves to the sources through
// tsconfig.json's `paths`, which tsx applies.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DATABASE_URL = process.env.DATABASE_URL || undefined;

interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs an example to its end (killed after `timeoutMs`). */
function runExample(file: string, args: readonly string[] = [], timeoutMs = 60_000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", file, ...args], { cwd: ROOT, env: process.env, timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Fails with the example's output, which says more than an exit code. */
function expectSuccess(outcome: Outcome): void {
  if (outcome.code !== 0) {
    throw new Error(`exited with ${outcome.signal ?? outcome.code}\n--- stdout\n${outcome.stdout}\n--- stderr\n${outcome.stderr}`);
  }
}

/** The transition lines an example printed for one entity, in order. */
function transitionsOf(stdout: string, entityId: string): string[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith(`${entityId} `) && line.includes("→"))
    .map((line) => line.slice(entityId.length).trim());
}

const FLEET_LINE = /^(\d+) transitions, (\d+) delivered, (\d+) duplicates, (\d+) lost$/mu;

describe("examples/quickstart.ts", () => {
  it("prints each transition once per entity, in order, then the states", async () => {
    const outcome = await runExample("examples/quickstart.ts");
    expectSuccess(outcome);
    const chain = [
      "healthy → degraded (escalation)",
      "degraded → unhealthy (escalation)",
      "unhealthy → healthy (recovery)",
      "healthy → degraded (escalation)",
    ];
    expect(transitionsOf(outcome.stdout, "checkout::prod")).toEqual(chain);
    expect(transitionsOf(outcome.stdout, "checkout")).toEqual(chain);
    expect(transitionsOf(outcome.stdout, "checkout::staging")).toEqual([]);
    expect(outcome.stdout).toContain('getHealth("checkout::prod") → degraded, 0/1 checks healthy');
    expect(outcome.stdout).toContain('getHealth("checkout::staging") → healthy, 1/1 checks healthy');
    expect(outcome.stderr).toBe("");
  });
});

describe("examples/replay", () => {
  it("compares two threshold settings on the shipped runs", async () => {
    const outcome = await runExample("examples/replay/replay.ts");
    expectSuccess(outcome);
    expect(outcome.stdout).toContain("Replaying 128 runs from runs.jsonl (3 systems)");
    // The window setting ignores isolated blips and rides out short bursts, but catches the
    // dense cluster of search failures that never fails twice in a row.
    expect(outcome.stdout).toMatch(/ {2}search::prod\n {4}A: \(no transition\)\n {4}B: 09:22 healthy→degraded, 09:26 degraded→healthy\n/u);
    expect(outcome.stdout).toContain("A: 16 transitions, B: 12 transitions (4 fewer under B), 6 entities differ.");
  });

  it("reads any JSONL file given as argument, deriving the topology from it (env-less checks too)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "healthstate-replay-"));
    try {
      const file = join(dir, "cron.jsonl");
      const statuses = ["healthy", "unhealthy", "unhealthy", "healthy"];
      const lines = statuses.map((status, minute) =>
        JSON.stringify({ systemId: "billing", checkId: "cron", status, timestamp: `2026-11-02T09:0${minute}:00Z` }),
      );
      writeFileSync(file, `${lines.join("\n")}\n\n`);
      const outcome = await runExample("examples/replay/replay.ts", [file]);
      expectSuccess(outcome);
      expect(outcome.stdout).toContain("Replaying 4 runs from cron.jsonl (1 systems)");
      expect(outcome.stdout).toContain("    A: 09:02 healthy→degraded, 09:03 degraded→healthy\n    B: (no transition)");
      expect(outcome.stdout).toContain("A: 2 transitions, B: 0 transitions (2 fewer under B), 1 entities differ.");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the line of a file that is not JSON Lines", async () => {
    const dir = mkdtempSync(join(tmpdir(), "healthstate-replay-"));
    try {
      const file = join(dir, "broken.jsonl");
      writeFileSync(file, '{"systemId":"a","checkId":"b","status":"healthy"}\n{oops\n');
      const outcome = await runExample("examples/replay/replay.ts", [file]);
      expect(outcome.code).not.toBe(0);
      expect(outcome.stderr).toContain(`${file}:2: not JSON`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("examples/postgres-workers", () => {
  it("embedded (PGlite, three engines in one process, one crashed): every transition delivered once", async () => {
    const outcome = await runExample("examples/postgres-workers/embedded.ts");
    expectSuccess(outcome);
    expect(outcome.stdout).toContain("crashed worker-2 (adapter closed) after 15 of its 30 runs");
    const [, transitions, delivered] = FLEET_LINE.exec(outcome.stdout) ?? [];
    expect(Number(transitions)).toBeGreaterThan(0);
    expect(delivered).toBe(transitions);
    expect(outcome.stdout).toMatch(/, 0 duplicates, 0 lost$/mu);
  }, 90_000);

  // Three worker processes need a server: PGlite is one connection in one process.
  it.runIf(DATABASE_URL !== undefined)(
    "on a Postgres server (three processes, one killed with SIGKILL): every transition delivered once, schema dropped",
    async () => {
      const outcome = await runExample("examples/postgres-workers/main.ts");
      expectSuccess(outcome);
      expect(outcome.stdout).toContain("killed worker-2 (SIGKILL) after 40 of its 80 runs");
      const [, transitions, delivered] = FLEET_LINE.exec(outcome.stdout) ?? [];
      expect(Number(transitions)).toBeGreaterThan(0);
      expect(delivered).toBe(transitions);
      expect(outcome.stdout).toMatch(/, 0 duplicates, 0 lost$/mu);

      const schema = /on schema (healthstate_workers_\d+)/u.exec(outcome.stdout)?.[1];
      expect(schema).toBeDefined();
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        const { rows } = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
        expect(rows).toEqual([]);
      } finally {
        await client.end();
      }
    },
    90_000,
  );
});
