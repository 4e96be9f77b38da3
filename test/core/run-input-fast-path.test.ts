import { fc, test } from "@fast-check/vitest";
import { MAX_ID_LENGTH, MAX_MESSAGE_LENGTH, runInputSchema } from "healthstate";
import { describe, expect, it } from "vitest";
import { safeParseRunInput } from "../../src/validation";

// The engine validates runs with `safeParseRunInput`, a hand-written fast path in front of
// `runInputSchema`. It must decide exactly as the schema does and return exactly what it returns.

let fastAccepted = 0;

function expectSameAsZod(input: unknown): void {
  const fast = safeParseRunInput(input);
  const zod = runInputSchema.safeParse(input);
  expect(fast.success).toBe(zod.success);
  if (fast.success && zod.success) {
    fastAccepted += 1;
    expect(Object.keys(fast.data)).toEqual(Object.keys(zod.data));
    for (const key of Object.keys(zod.data) as (keyof typeof zod.data)[]) {
      const [a, b] = [fast.data[key], zod.data[key]];
      // Dates are compared by time (zod returns a new one for a string), everything else with Object.is (so -0 ≠ 0).
      if (a instanceof Date && b instanceof Date) expect(a.getTime()).toBe(b.getTime());
      else expect(Object.is(a, b), `${key}: ${String(a)} vs ${String(b)}`).toBe(true);
    }
    // A Date input is passed through as the same object by both.
    const timestamp = (input as { timestamp?: unknown }).timestamp;
    if (timestamp instanceof Date) expect(fast.data.timestamp).toBe(zod.data.timestamp);
  } else {
    expect(fast.error?.issues).toEqual(zod.error?.issues);
  }
}

const ASTRAL = "\u{1F600}";
const id = fc.oneof(
  { weight: 30, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
  fc.constantFrom(
    "",
    "sys-1",
    "a:b%c",
    "x".repeat(MAX_ID_LENGTH),
    "x".repeat(MAX_ID_LENGTH + 1),
    ASTRAL.repeat(MAX_ID_LENGTH),
    ASTRAL.repeat(MAX_ID_LENGTH + 1),
    "ok\u0000",
    "tab\there",
    "del\u007f",
    "c1\u0085",
    "after\u00a0c1",
    "lone\ud800",
    "\udc00lone",
    `pair${ASTRAL}`,
  ),
  fc.string({ unit: "binary", minLength: 1, maxLength: 8 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)), maxLength: 6 }),
  fc.anything(),
);
const status = fc.oneof({ weight: 20, arbitrary: fc.constantFrom("healthy", "degraded", "unhealthy") }, fc.constantFrom("Healthy", "", "ok"), fc.anything());
const latency = fc.oneof(
  { weight: 12, arbitrary: fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }) },
  fc.double(),
  fc.constantFrom(0, -0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_VALUE, "5"),
  fc.anything(),
);
const timestamp = fc.oneof(
  { weight: 8, arbitrary: fc.date({ noInvalidDate: false }) },
  { weight: 8, arbitrary: fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((date) => date.toISOString()) },
  fc.constantFrom(
    "2026-11-30T10:00:00Z",
    "2026-11-30T10:00:00.123456789+02:00",
    "2026-11-30",
    "2026-02-30",
    "2026-11-30T10:00:00",
    "2026-11-30 10:00Z",
    "yesterday",
    "",
  ),
  fc.integer(),
  fc.anything(),
);
const message = fc.oneof(
  { weight: 16, arbitrary: fc.string({ maxLength: 40 }) },
  fc.constantFrom("", "nul\u0000", "lone\ud800", "x".repeat(MAX_MESSAGE_LENGTH), "x".repeat(MAX_MESSAGE_LENGTH + 1), `pair${ASTRAL}`),
  fc.anything(),
);

/** Inputs near the valid shape: every key present, absent or explicitly undefined, sometimes an extra key. */
const nearValid = fc
  .record(
    {
      runId: fc.option(id, { nil: undefined }),
      systemId: id,
      checkId: id,
      environmentId: fc.oneof(fc.constant(null), fc.constant(undefined), id),
      status,
      latencyMs: fc.option(latency, { nil: undefined }),
      timestamp: fc.option(timestamp, { nil: undefined }),
      message: fc.option(message, { nil: undefined }),
      extra: fc.anything(),
      __proto__: fc.anything(),
    },
    { requiredKeys: [] },
  )
  // The required keys are present most of the time, extra keys are rare, so that most inputs
  // are valid or invalid in one place only.
  .chain((run) =>
    fc.record({ keep: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }), systemId: id, checkId: id, status }).map(({ keep, ...required }) => {
      const result: Record<string, unknown> = { ...run };
      if (keep[0] === true || keep[1] === true) delete result.extra;
      if (keep[2] === true || keep[3] === true) delete result.__proto__;
      if (keep[4] === true) Object.assign(result, required);
      return result;
    }),
  )
  .chain((run) =>
    fc.constantFrom<(value: object) => unknown>(
      (value) => value,
      (value) => value,
      (value) => value,
      (value) => value,
      (value) => value,
      (value) => Object.assign(Object.create(null) as object, value),
      (value) => Object.assign(Object.create({ inherited: 1 }) as object, value),
      (value) => Object.assign(Object.create({ systemId: "s" }) as object, value),
      (value) => Object.assign(new (class Run {})(), value),
      (value) => Object.assign([], value),
      (value) => JSON.parse(JSON.stringify(value) ?? "null") as unknown,
    ).map((shape) => shape(run)),
  );

const valid = { systemId: "sys", checkId: "http", status: "healthy" };

describe("safeParseRunInput ≡ runInputSchema.safeParse", () => {
  test.prop([nearValid], { numRuns: 2000 })("on inputs near the valid shape", (input) => {
    expectSameAsZod(input);
  });

  it("is exercised: the near-valid inputs are often valid", () => {
    fastAccepted = 0;
    fc.assert(fc.property(nearValid, (input) => expectSameAsZod(input)), { numRuns: 1000 });
    expect(fastAccepted).toBeGreaterThan(100);
  });

  test.prop([fc.anything({ withNullPrototype: true, withObjectString: true, withBoxedValues: true })], { numRuns: 500 })(
    "on arbitrary values",
    (input) => {
      expectSameAsZod(input);
    },
  );

  it("on every branch of the fast path", () => {
    const cases: unknown[] = [
      undefined,
      null,
      "run",
      7,
      [],
      new Date(0),
      Object.create(null),
      valid,
      { ...valid, extra: 1 },
      { ...valid, runId: undefined, environmentId: undefined, latencyMs: undefined, timestamp: undefined, message: undefined },
      { ...valid, runId: "r-1", environmentId: null, latencyMs: 0, timestamp: "2026-11-30T10:00:00Z", message: "ok" },
      { ...valid, environmentId: "prod", latencyMs: -0, timestamp: new Date(5) },
      { ...valid, systemId: 1 },
      { ...valid, systemId: "" },
      { ...valid, systemId: "x".repeat(MAX_ID_LENGTH + 1) },
      { ...valid, systemId: ASTRAL.repeat(200) },
      { ...valid, systemId: "a\u0001" },
      { ...valid, systemId: "a\u0090" },
      { ...valid, systemId: "a\u007e\u00a0" },
      { ...valid, checkId: "a\udfff" },
      { ...valid, status: "Healthy" },
      { ...valid, runId: "" },
      { ...valid, runId: null },
      { ...valid, environmentId: "" },
      { ...valid, latencyMs: "5" },
      { ...valid, latencyMs: Number.POSITIVE_INFINITY },
      { ...valid, latencyMs: -1 },
      { ...valid, timestamp: "2026-02-30" },
      { ...valid, timestamp: new Date(Number.NaN) },
      { ...valid, timestamp: 0 },
      { ...valid, message: 5 },
      { ...valid, message: "x".repeat(MAX_MESSAGE_LENGTH + 1) },
      { ...valid, message: "a\u0000" },
      { ...valid, message: "a\ud800" },
      { ...valid, message: "" },
    ];
    for (const input of cases) expectSameAsZod(input);
    expect(safeParseRunInput(valid)).toEqual({ success: true, data: valid });
  });
});
