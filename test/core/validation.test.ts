import { fc, test } from "@fast-check/vitest";
import {
  MAX_ID_LENGTH,
  MAX_MESSAGE_LENGTH,
  ValidationError,
  assignCheckSchema,
  idSchema,
  parseIsoTimestamp,
  retentionSchema,
  runInputSchema,
  topologyDocSchema,
  upsertSystemSchema,
} from "healthstate";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { timeSchema, toIso } from "../../src/time";
import {
  MAX_REASON_LENGTH,
  addMaintenanceSchema,
  applyTopologyOptionsSchema,
  endMaintenanceSchema,
  flappingOverrideSchema,
  flappingSchema,
  inputFlappingIssues,
  maintenanceIdSchema,
  parseWith,
  subscribeOptionsSchema,
  timeRangeSchema,
  toConfigurationIssues,
  topologyInputFlappingIssues,
  unassignCheckSchema,
} from "../../src/validation";
import { isWellFormedText } from "../../src/validation/ids";

function issues(schema: z.ZodType, input: unknown) {
  const result = parseWith(schema, input);
  expect(result.isErr()).toBe(true);
  const error = result._unsafeUnwrapErr();
  expect(error).toBeInstanceOf(ValidationError);
  return error.issues;
}

function paths(schema: z.ZodType, input: unknown) {
  return issues(schema, input).map((issue) => issue.path);
}

const run = { systemId: "sys", checkId: "http", status: "healthy" } as const;

describe("idSchema (§13)", () => {
  it("accepts any non-control unicode, : and % included", () => {
    for (const id of ["a", "sys-1", "a:b", "%", "::", "système 🚀", "x".repeat(MAX_ID_LENGTH), "🚀".repeat(MAX_ID_LENGTH)]) {
      expect(idSchema.safeParse(id).success).toBe(true);
    }
  });

  it.each([
    ["", /must not be empty/],
    ["x".repeat(MAX_ID_LENGTH + 1), /at most 256 characters \(got 257\)/],
    ["a\u0000", /control/],
    ["a\nb", /control/],
    ["\u007f", /control/],
    ["\u0080", /control/],
    ["\u009f", /control/],
    ["a\uD800b", /well-formed/],
    ["\uDC00", /well-formed/],
  ])("rejects %j", (id, message) => {
    const parsed = idSchema.safeParse(id);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toMatch(message);
  });

  it("reports length and control characters together", () => {
    const parsed = idSchema.safeParse(`${"x".repeat(300)}\u0001`);
    expect(parsed.error?.issues.map((issue) => issue.message)).toEqual([
      expect.stringMatching(/at most 256/),
      expect.stringMatching(/control/),
    ]);
  });

  it("rejects non-strings", () => {
    expect(idSchema.safeParse(1).success).toBe(false);
    expect(idSchema.safeParse(null).success).toBe(false);
  });

  it("isWellFormedText detects lone surrogates only", () => {
    expect(isWellFormedText("🚀 ok")).toBe(true);
    expect(isWellFormedText("\uD83D")).toBe(false);
    expect(isWellFormedText("\uDE80\uD83D")).toBe(false);
  });
});

describe("runInputSchema (§13)", () => {
  it("accepts a minimal run and a full run", () => {
    expect(parseWith(runInputSchema, run)._unsafeUnwrap()).toEqual(run);
    const full = parseWith(runInputSchema, {
      ...run,
      runId: "r-1",
      environmentId: "prod",
      latencyMs: 0,
      timestamp: "2026-11-30T12:00:00Z",
      message: "ok",
    })._unsafeUnwrap();
    expect(full.timestamp).toEqual(new Date("2026-11-30T12:00:00Z"));
    expect(parseWith(runInputSchema, { ...run, environmentId: null, latencyMs: 12.5 })._unsafeUnwrap()).toMatchObject({
      environmentId: null,
      latencyMs: 12.5,
    });
  });

  it.each(["healthy", "degraded", "unhealthy"])("accepts status %s", (status) => {
    expect(parseWith(runInputSchema, { ...run, status }).isOk()).toBe(true);
  });

  it.each([["ok"], ["HEALTHY"], [""], [null], [1], [undefined]])("rejects status %j", (status) => {
    const found = issues(runInputSchema, { ...run, status });
    expect(found).toEqual([{ path: ["status"], message: "must be one of healthy, degraded, unhealthy" }]);
  });

  it.each([
    [-1, /at least 0/],
    [-0.001, /at least 0/],
    [Number.NaN, /number|finite/],
    [Number.POSITIVE_INFINITY, /number|finite/],
    [Number.NEGATIVE_INFINITY, /number|finite|at least/],
    ["12", /number/],
  ])("rejects latencyMs %s", (latencyMs, message) => {
    const found = issues(runInputSchema, { ...run, latencyMs });
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toEqual(["latencyMs"]);
    expect(found[0]?.message).toMatch(message);
  });

  it.each([
    ["2026-11-30T12:00:00Z", "2026-11-30T12:00:00.000Z"],
    ["2026-11-30T12:00:00.123Z", "2026-11-30T12:00:00.123Z"],
    ["2026-11-30T12:00:00.123456789Z", "2026-11-30T12:00:00.123Z"],
    ["2026-11-30T14:00:00+02:00", "2026-11-30T12:00:00.000Z"],
    ["2026-11-30T07:00:00-05:00", "2026-11-30T12:00:00.000Z"],
    ["2026-11-30 12:00:00Z", "2026-11-30T12:00:00.000Z"],
    ["2026-11-30T12:00Z", "2026-11-30T12:00:00.000Z"],
    ["2026-11-30", "2026-11-30T00:00:00.000Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"],
    ["0050-06-01T00:00:00Z", "0050-06-01T00:00:00.000Z"],
  ])("accepts the ISO 8601 timestamp %s", (timestamp, iso) => {
    const parsed = parseWith(runInputSchema, { ...run, timestamp })._unsafeUnwrap();
    expect(parsed.timestamp?.toISOString()).toBe(iso);
  });

  it("accepts a valid Date", () => {
    const date = new Date("2026-11-30T12:00:00Z");
    expect(parseWith(runInputSchema, { ...run, timestamp: date })._unsafeUnwrap().timestamp?.getTime()).toBe(date.getTime());
  });

  it.each([
    ["yesterday"],
    ["now"],
    [""],
    ["12/01/2026"],
    ["2026-02-30"],
    ["2026-02-30T00:00:00Z"],
    ["2025-02-29T00:00:00Z"],
    ["2026-13-01T00:00:00Z"],
    ["2026-00-10T00:00:00Z"],
    ["2026-11-30T12:00:00"],
    ["2026-11-30T12:00"],
    ["2026-11-30T24:00:00Z"],
    ["2026-11-30T12:60:00Z"],
    ["2026-11-30T12:00:60Z"],
    ["2026-11-30T12:00:00+25:00"],
    ["2026-11-30T12:00:00+0200"],
    ["1764504000000"],
    [" 2026-11-30T12:00:00Z"],
  ])("rejects the timestamp %j", (timestamp) => {
    const found = issues(runInputSchema, { ...run, timestamp });
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toEqual(["timestamp"]);
    expect(found[0]?.message).toMatch(/not an ISO 8601 timestamp with offset/);
  });

  it.each([[new Date(Number.NaN)], [1764504000000], [null], [{}]])("rejects the timestamp value %s", (timestamp) => {
    expect(paths(runInputSchema, { ...run, timestamp })).toEqual([["timestamp"]]);
  });

  it("rejects bad ids with their paths", () => {
    const found = issues(runInputSchema, {
      runId: "",
      systemId: "x".repeat(MAX_ID_LENGTH + 1),
      checkId: "a\u0007",
      environmentId: "",
      status: "healthy",
    });
    expect(found).toEqual([
      { path: ["runId"], message: "must not be empty" },
      { path: ["systemId"], message: `must be at most ${MAX_ID_LENGTH} characters (got ${MAX_ID_LENGTH + 1})` },
      { path: ["checkId"], message: "must not contain control characters" },
      { path: ["environmentId"], message: "must not be empty" },
    ]);
    expect(paths(runInputSchema, { status: "healthy" })).toEqual([["systemId"], ["checkId"]]);
  });

  it("rejects unknown keys, one issue at each key", () => {
    expect(issues(runInputSchema, { ...run, latency: 5 })).toEqual([{ path: ["latency"], message: 'unknown key "latency"' }]);
    expect(issues(runInputSchema, { ...run, enviromentId: "prod", latency: 5 })).toEqual([
      { path: ["enviromentId"], message: 'unknown key "enviromentId"' },
      { path: ["latency"], message: 'unknown key "latency"' },
    ]);
  });

  it("limits the message", () => {
    expect(parseWith(runInputSchema, { ...run, message: "m".repeat(MAX_MESSAGE_LENGTH) }).isOk()).toBe(true);
    expect(paths(runInputSchema, { ...run, message: "m".repeat(MAX_MESSAGE_LENGTH + 1) })).toEqual([["message"]]);
    expect(issues(runInputSchema, { ...run, message: "a\u0000b" })[0]?.message).toMatch(/NUL/);
    expect(issues(runInputSchema, { ...run, message: "a\uD800" })[0]?.message).toMatch(/well-formed/);
    expect(parseWith(runInputSchema, { ...run, message: "line 1\nline 2\ttab" }).isOk()).toBe(true);
  });

  it("reports every problem at once", () => {
    const found = issues(runInputSchema, { systemId: "", checkId: "c", status: "ok", latencyMs: -1, timestamp: "yesterday", extra: 1 });
    expect(found.map((issue) => issue.path)).toEqual([["systemId"], ["status"], ["latencyMs"], ["timestamp"], ["extra"]]);
  });

  it("rejects non-objects", () => {
    expect(paths(runInputSchema, null)).toEqual([[]]);
    expect(paths(runInputSchema, "run")).toEqual([[]]);
  });
});

describe("parseIsoTimestamp and timeSchema", () => {
  it("parses strictly", () => {
    expect(parseIsoTimestamp("2026-11-30T12:00:00Z")?.toISOString()).toBe("2026-11-30T12:00:00.000Z");
    expect(parseIsoTimestamp("2026-11-30T12:00:00")).toBeUndefined();
    expect(parseIsoTimestamp("2026-02-29")).toBeUndefined();
    expect(parseIsoTimestamp("0000-01-01")?.getUTCFullYear()).toBe(0);
    expect(parseIsoTimestamp("0099-12-31T23:59:59Z")?.toISOString()).toBe("0099-12-31T23:59:59.000Z");
  });

  test.prop([fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true })])(
    "round-trips every Date through its ISO string",
    (date) => {
      expect(parseIsoTimestamp(toIso(date))?.getTime()).toBe(date.getTime());
      expect(timeSchema.parse(toIso(date)).getTime()).toBe(date.getTime());
    },
  );

  it("toIso is UTC with milliseconds", () => {
    expect(toIso(new Date(Date.UTC(2026, 10, 30, 12, 0, 0, 5)))).toBe("2026-11-30T12:00:00.005Z");
  });
});

describe("timeRangeSchema (§15)", () => {
  it("accepts a non-empty half-open range", () => {
    const parsed = timeRangeSchema.parse({ from: "2026-01-01T00:00:00Z", to: new Date("2026-01-02T00:00:00Z") });
    expect(parsed.from.toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(parsed.to.toISOString()).toBe("2026-01-02T00:00:00.000Z");
  });

  it("rejects empty and inverted ranges at `to`", () => {
    expect(paths(timeRangeSchema, { from: "2026-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z" })).toEqual([["to"]]);
    expect(paths(timeRangeSchema, { from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z" })).toEqual([["to"]]);
    expect(paths(timeRangeSchema, { from: "soon", to: "2026-01-01T00:00:00Z" })).toEqual([["from"]]);
  });
});

describe("retentionSchema (§9, §13)", () => {
  it("defaults to 7 / 30 / 365 days", () => {
    expect(parseWith(retentionSchema, {})._unsafeUnwrap()).toEqual({ rawRetentionDays: 7, hourlyRetentionDays: 30, dailyRetentionDays: 365 });
    expect(parseWith(retentionSchema, { rawRetentionDays: 1 })._unsafeUnwrap()).toEqual({
      rawRetentionDays: 1,
      hourlyRetentionDays: 30,
      dailyRetentionDays: 365,
    });
  });

  it("accepts the range bounds", () => {
    expect(parseWith(retentionSchema, { rawRetentionDays: 1, hourlyRetentionDays: 7, dailyRetentionDays: 30 }).isOk()).toBe(true);
    expect(parseWith(retentionSchema, { rawRetentionDays: 30, hourlyRetentionDays: 90, dailyRetentionDays: 1095 }).isOk()).toBe(true);
  });

  it.each([
    [{ rawRetentionDays: 0 }, ["rawRetentionDays"]],
    [{ rawRetentionDays: 31, hourlyRetentionDays: 60 }, ["rawRetentionDays"]],
    [{ rawRetentionDays: 2.5 }, ["rawRetentionDays"]],
    [{ hourlyRetentionDays: 6, rawRetentionDays: 1 }, ["hourlyRetentionDays"]],
    [{ hourlyRetentionDays: 91 }, ["hourlyRetentionDays"]],
    [{ rawRetentionDays: 1, hourlyRetentionDays: 7, dailyRetentionDays: 29 }, ["dailyRetentionDays"]],
    [{ dailyRetentionDays: 1096 }, ["dailyRetentionDays"]],
    [{ dailyRetentionDays: "365" }, ["dailyRetentionDays"]],
    [{ weeklyRetentionDays: 10 }, ["weeklyRetentionDays"]],
  ])("rejects %j at its path", (input, path) => {
    expect(paths(retentionSchema, input)).toEqual([path]);
  });

  it("requires raw < hourly < daily", () => {
    expect(issues(retentionSchema, { rawRetentionDays: 10, hourlyRetentionDays: 10 })).toEqual([
      { path: ["rawRetentionDays"], message: "must be less than hourlyRetentionDays" },
    ]);
    expect(issues(retentionSchema, { hourlyRetentionDays: 30, dailyRetentionDays: 30 })).toEqual([
      { path: ["hourlyRetentionDays"], message: "must be less than dailyRetentionDays" },
    ]);
    expect(paths(retentionSchema, { rawRetentionDays: 30, hourlyRetentionDays: 30, dailyRetentionDays: 30 })).toEqual([
      ["rawRetentionDays"],
      ["hourlyRetentionDays"],
    ]);
  });
});

describe("topology inputs (§4, §13)", () => {
  const doc = {
    systems: [
      {
        systemId: "checkout",
        environmentIds: ["prod", "staging"],
        checks: [
          { checkId: "http" },
          { checkId: "db", thresholds: { mode: "window", windowSize: 5, degraded: { minFailureCount: 2 }, unhealthy: { minFailureCount: 4 } } },
          { checkId: "cron", environmentIds: [], enabled: false, paused: true },
          { checkId: "dns", environmentIds: null },
        ],
      },
      { systemId: "search", environmentIds: [], checks: [] },
    ],
  };

  it("accepts a valid document and fills thresholds defaults", () => {
    const parsed = parseWith(topologyDocSchema, doc)._unsafeUnwrap();
    expect(parsed.systems).toHaveLength(2);
    expect(parsed.systems[0]?.checks[1]?.thresholds).toEqual({
      mode: "window",
      windowSize: 5,
      degraded: { minFailureCount: 2 },
      unhealthy: { minFailureCount: 4 },
    });
    expect(parseWith(topologyDocSchema, { systems: [] }).isOk()).toBe(true);
  });

  it("rejects duplicate system, check and environment ids with their paths", () => {
    const found = issues(topologyDocSchema, {
      systems: [
        { systemId: "a", environmentIds: ["prod", "staging", "prod"], checks: [{ checkId: "c" }, { checkId: "d" }, { checkId: "c" }] },
        { systemId: "b", environmentIds: [], checks: [{ checkId: "c", environmentIds: ["prod", "prod"] }] },
        { systemId: "a", environmentIds: [], checks: [] },
      ],
    });
    expect(found).toEqual(
      expect.arrayContaining([
        { path: ["systems", 0, "environmentIds", 2], message: 'duplicate environment id "prod"' },
        { path: ["systems", 0, "checks", 2, "checkId"], message: 'duplicate check id "c"' },
        { path: ["systems", 1, "checks", 0, "environmentIds", 1], message: 'duplicate environment id "prod"' },
        { path: ["systems", 2, "systemId"], message: 'duplicate system id "a"' },
      ]),
    );
    expect(found).toHaveLength(4);
  });

  it("reports nested threshold problems with their full path", () => {
    const found = issues(topologyDocSchema, {
      systems: [
        {
          systemId: "a",
          environmentIds: [],
          checks: [
            { checkId: "ok" },
            { checkId: "bad", thresholds: { mode: "consecutive", degraded: { minFailureCount: 9 } } },
            { checkId: "worse", thresholds: { mode: "window", windowSize: 200 } },
          ],
        },
      ],
    });
    expect(found).toEqual([
      { path: ["systems", 0, "checks", 1, "thresholds", "degraded", "minFailureCount"], message: expect.stringMatching(/at most unhealthy/) as string },
      { path: ["systems", 0, "checks", 2, "thresholds", "windowSize"], message: "must be at most 100" },
    ]);
  });

  it("rejects unknown keys, bad ids and missing fields at every level", () => {
    expect(issues(topologyDocSchema, { systems: [], extra: 1 })).toEqual([{ path: ["extra"], message: 'unknown key "extra"' }]);
    expect(paths(topologyDocSchema, {})).toEqual([["systems"]]);
    expect(paths(topologyDocSchema, { systems: [{ systemId: "a", environmentIds: [], checks: [], owner: "x" }] })).toEqual([["systems", 0, "owner"]]);
    expect(paths(topologyDocSchema, { systems: [{ systemId: "a", environmentIds: [""], checks: [{ checkId: "c", retries: 1 }] }] })).toEqual([
      ["systems", 0, "environmentIds", 0],
      ["systems", 0, "checks", 0, "retries"],
    ]);
    expect(paths(topologyDocSchema, { systems: [{ systemId: "", checks: [{ checkId: "c", enabled: "yes" }] }] })).toEqual([
      ["systems", 0, "systemId"],
      ["systems", 0, "environmentIds"],
      ["systems", 0, "checks", 0, "enabled"],
    ]);
  });

  it("upsertSystemSchema keeps order and rejects duplicates", () => {
    expect(parseWith(upsertSystemSchema, { systemId: "s", environmentIds: ["b", "a"] })._unsafeUnwrap()).toEqual({
      systemId: "s",
      environmentIds: ["b", "a"],
    });
    expect(issues(upsertSystemSchema, { systemId: "s", environmentIds: ["a", "b", "a"] })).toEqual([
      { path: ["environmentIds", 2], message: 'duplicate environment id "a"' },
    ]);
    expect(paths(upsertSystemSchema, { systemId: "s" })).toEqual([["environmentIds"]]);
  });

  it("assignCheckSchema and unassignCheckSchema", () => {
    expect(parseWith(assignCheckSchema, { systemId: "s", checkId: "c" }).isOk()).toBe(true);
    expect(parseWith(assignCheckSchema, { systemId: "s", checkId: "c", environmentIds: null, thresholds: { mode: "window" } }).isOk()).toBe(true);
    expect(paths(assignCheckSchema, { systemId: "s", checkId: "c", paused: 1, thresholds: { mode: "x" } })).toEqual([
      ["thresholds", "mode"],
      ["paused"],
    ]);
    expect(parseWith(unassignCheckSchema, { systemId: "s", checkId: "c" }).isOk()).toBe(true);
    expect(paths(unassignCheckSchema, { systemId: "s", checkId: "c", environmentIds: [] })).toEqual([["environmentIds"]]);
  });

  it("applyTopologyOptionsSchema and subscribeOptionsSchema", () => {
    expect(parseWith(applyTopologyOptionsSchema, {}).isOk()).toBe(true);
    expect(parseWith(applyTopologyOptionsSchema, { prune: true }).isOk()).toBe(true);
    expect(paths(applyTopologyOptionsSchema, { prune: "yes" })).toEqual([["prune"]]);
    expect(parseWith(subscribeOptionsSchema, { group: "mailer", from: "now" }).isOk()).toBe(true);
    expect(paths(subscribeOptionsSchema, { group: "" })).toEqual([["group"]]);
    expect(paths(subscribeOptionsSchema, { group: "g", from: "latest" })).toEqual([["from"]]);
  });
});

describe("maintenance inputs (§11)", () => {
  const window = { entityId: "sys::prod", start: "2026-11-30T10:00:00+01:00", end: "2026-11-30T12:00:00Z" } as const;

  it("addMaintenanceSchema parses times to UTC and keeps the reason", () => {
    expect(parseWith(addMaintenanceSchema, window)._unsafeUnwrap()).toEqual({
      entityId: "sys::prod",
      start: new Date("2026-11-30T09:00:00.000Z"),
      end: new Date("2026-11-30T12:00:00.000Z"),
    });
    expect(parseWith(addMaintenanceSchema, { ...window, entityId: "sys", reason: "r".repeat(MAX_REASON_LENGTH) }).isOk()).toBe(true);
    // A millisecond is a window.
    expect(parseWith(addMaintenanceSchema, { ...window, start: "2026-11-30T11:59:59.999Z" }).isOk()).toBe(true);
  });

  it("addMaintenanceSchema requires start < end and a canonical entity id", () => {
    expect(issues(addMaintenanceSchema, { ...window, start: "2026-11-30T12:00:00Z" })).toEqual([{ path: ["end"], message: "must be after start" }]);
    expect(issues(addMaintenanceSchema, { ...window, start: "2026-11-30T13:00:00Z" })).toEqual([{ path: ["end"], message: "must be after start" }]);
    expect(issues(addMaintenanceSchema, { ...window, entityId: "a::b::c" })).toEqual([
      { path: ["entityId"], message: 'invalid entity id "a::b::c": more than one "::" separator' },
    ]);
    expect(paths(addMaintenanceSchema, { ...window, entityId: "a::", start: "2026-11-30T13:00:00Z" })).toEqual([["entityId"], ["end"]]);
    expect(paths(addMaintenanceSchema, { ...window, start: "today" })).toEqual([["start"]]);
    expect(paths(addMaintenanceSchema, { start: window.start, end: window.end })).toEqual([["entityId"]]);
  });

  it("addMaintenanceSchema limits the reason and rejects unknown keys", () => {
    expect(issues(addMaintenanceSchema, { ...window, reason: "r".repeat(MAX_REASON_LENGTH + 1) })).toEqual([
      { path: ["reason"], message: `must be at most ${MAX_REASON_LENGTH} characters` },
    ]);
    expect(issues(addMaintenanceSchema, { ...window, reason: "a\u0000b" })).toEqual([{ path: ["reason"], message: "must not contain NUL characters" }]);
    expect(issues(addMaintenanceSchema, { ...window, reason: "a\uD800" })).toEqual([{ path: ["reason"], message: "must be well-formed Unicode" }]);
    expect(issues(addMaintenanceSchema, { ...window, reson: "typo" })).toEqual([{ path: ["reson"], message: 'unknown key "reson"' }]);
  });

  it("endMaintenanceSchema and maintenanceIdSchema", () => {
    expect(parseWith(endMaintenanceSchema, { maintenanceId: "m" })._unsafeUnwrap()).toEqual({ maintenanceId: "m" });
    expect(parseWith(endMaintenanceSchema, { maintenanceId: "m", at: "2026-11-30T10:00:00Z" })._unsafeUnwrap()).toEqual({
      maintenanceId: "m",
      at: new Date("2026-11-30T10:00:00.000Z"),
    });
    expect(paths(endMaintenanceSchema, { maintenanceId: "", at: "later" })).toEqual([["maintenanceId"], ["at"]]);
    expect(parseWith(maintenanceIdSchema, { maintenanceId: "m" }).isOk()).toBe(true);
    expect(issues(maintenanceIdSchema, { maintenanceId: "m", at: "2026-11-30T10:00:00Z" })).toEqual([{ path: ["at"], message: 'unknown key "at"' }]);
  });
});

describe("flappingSchema (§10)", () => {
  it("defaults to enabled, low 20, high 30", () => {
    expect(parseWith(flappingSchema, {})._unsafeUnwrap()).toEqual({ enabled: true, low: 20, high: 30 });
    expect(parseWith(flappingSchema, { enabled: false })._unsafeUnwrap()).toEqual({ enabled: false, low: 20, high: 30 });
    expect(parseWith(flappingSchema, { low: 0, high: 100 })._unsafeUnwrap()).toEqual({ enabled: true, low: 0, high: 100 });
  });

  it("needs 0 ≤ low < high ≤ 100", () => {
    expect(issues(flappingSchema, { low: 30, high: 30 })).toEqual([{ path: ["high"], message: "must be greater than low" }]);
    expect(issues(flappingSchema, { low: 40 })).toEqual([{ path: ["high"], message: "must be greater than low" }]);
    expect(paths(flappingSchema, { low: -1, high: 101 })).toEqual([["low"], ["high"]]);
    expect(paths(flappingSchema, { enabled: "yes", hysteresis: 5 })).toEqual([["enabled"], ["hysteresis"]]);
  });
});

describe("flappingOverrideSchema (§10, per assignment)", () => {
  it("takes any of enabled, low, high; keeps only what is given", () => {
    expect(parseWith(flappingOverrideSchema, {})._unsafeUnwrap()).toEqual({});
    expect(parseWith(flappingOverrideSchema, { low: 40 })._unsafeUnwrap()).toEqual({ low: 40 });
    expect(parseWith(flappingOverrideSchema, { enabled: false, low: 0, high: 100 })._unsafeUnwrap()).toEqual({ enabled: false, low: 0, high: 100 });
  });

  it("needs thresholds in [0, 100], low < high when both are given, and no unknown key", () => {
    expect(paths(flappingOverrideSchema, { low: -1, high: 101 })).toEqual([["low"], ["high"]]);
    expect(issues(flappingOverrideSchema, { low: 30, high: 30 })).toEqual([{ path: ["high"], message: "must be greater than low" }]);
    expect(paths(flappingOverrideSchema, { enabled: "yes", low: "50", high: 10, hysteresis: 5 })).toEqual([["enabled"], ["low"], ["hysteresis"]]);
    expect(paths(flappingOverrideSchema, { low: 101, high: -1 })).toEqual([["low"], ["high"]]);
  });

  it("is the flapping field of assignCheck and of a document's checks, nullable, every problem with its path", () => {
    expect(assignCheckSchema.parse({ systemId: "s", checkId: "c", flapping: null }).flapping).toBeNull();
    expect(assignCheckSchema.parse({ systemId: "s", checkId: "c", flapping: { high: 50 } }).flapping).toEqual({ high: 50 });
    expect(paths(assignCheckSchema, { systemId: "s", checkId: "c", flapping: { low: 200, extra: 1 } })).toEqual([
      ["flapping", "low"],
      ["flapping", "extra"],
    ]);
    expect(paths(topologyDocSchema, { systems: [{ systemId: "s", environmentIds: [], checks: [{ checkId: "c", flapping: { high: -5 } }] }] })).toEqual([
      ["systems", 0, "checks", 0, "flapping", "high"],
    ]);
  });
});

describe("flap overrides of an input that fails its schema elsewhere (every problem at once)", () => {
  const global = { enabled: true, low: 20, high: 30 };

  it("checks each override that is valid on its own, wherever it sits in a malformed document", () => {
    const doc = {
      systems: [
        null,
        { checks: "not a list" },
        { systemId: 5, checks: [null, 7, { flapping: { low: "x" } }, { flapping: null }, { checkId: "", flapping: { low: 50 } }, { flapping: { high: 10 } }] },
      ],
    };
    expect(topologyInputFlappingIssues(global, doc)).toEqual([
      { path: ["systems", 2, "checks", 4, "flapping", "low"], message: "must be less than high (30, the engine's flapping.high)" },
      { path: ["systems", 2, "checks", 5, "flapping", "high"], message: "must be greater than low (20, the engine's flapping.low)" },
    ]);
    for (const nothing of [undefined, null, 3, "doc", { systems: {} }, { systems: [] }]) expect(topologyInputFlappingIssues(global, nothing)).toEqual([]);
  });

  it("checks an assignCheck input's override, with its path", () => {
    expect(inputFlappingIssues(global, { systemId: 1, flapping: { low: 40 } })).toEqual([{ path: ["flapping", "low"], message: "must be less than high (30, the engine's flapping.high)" }]);
    expect(inputFlappingIssues(global, { flapping: { low: 10 } })).toEqual([]);
    expect(inputFlappingIssues(global, { flapping: { low: 400 } }), "an override the schema rejects is the schema's problem").toEqual([]);
    expect(inputFlappingIssues(global, null)).toEqual([]);
  });
});

describe("issues", () => {
  it("parseWith prefixes paths (the index of a run in a batch)", () => {
    const result = parseWith(runInputSchema, { ...run, status: "bad" }, [3]);
    expect(result._unsafeUnwrapErr().issues).toEqual([{ path: [3, "status"], message: "must be one of healthy, degraded, unhealthy" }]);
  });

  it("toConfigurationIssues keeps numbers and stringifies other keys", () => {
    const symbol = Symbol("key");
    const converted = toConfigurationIssues([
      { code: "custom", path: ["a", 0, symbol], message: "m", input: undefined },
    ] as unknown as z.core.$ZodIssue[]);
    expect(converted).toEqual([{ path: ["a", 0, "Symbol(key)"], message: "m" }]);
    expect(toConfigurationIssues([], ["x"])).toEqual([]);
  });

  it("toConfigurationIssues reports each unknown key at its own path, after the prefix and the object's path", () => {
    const converted = toConfigurationIssues(
      [
        { code: "unrecognized_keys", keys: ["x", "y:z"], path: ["systems", 1], message: 'Unrecognized keys: "x", "y:z"', input: {} },
        { code: "custom", path: ["systems", 2], message: "m", input: undefined },
        { code: "unrecognized_keys", keys: ["top"], path: [], message: 'Unrecognized key: "top"', input: {} },
      ] as unknown as z.core.$ZodIssue[],
      [4],
    );
    expect(converted).toEqual([
      { path: [4, "systems", 1, "x"], message: 'unknown key "x"' },
      { path: [4, "systems", 1, "y:z"], message: 'unknown key "y:z"' },
      { path: [4, "systems", 2], message: "m" },
      { path: [4, "top"], message: 'unknown key "top"' },
    ]);
    // A key that needs escaping is quoted as JSON.
    expect(toConfigurationIssues([{ code: "unrecognized_keys", keys: ['a"b'], path: [], message: "", input: {} }] as unknown as z.core.$ZodIssue[])).toEqual([
      { path: ['a"b'], message: 'unknown key "a\\"b"' },
    ]);
  });
});
