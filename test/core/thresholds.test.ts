import { fc, test } from "@fast-check/vitest";
import {
  DEFAULT_THRESHOLDS,
  DEFAULT_WINDOW_THRESHOLDS,
  INITIAL_SLICE_STATE,
  MAX_WINDOW_SIZE,
  ValidationError,
  evaluateRuns,
  reevaluateSlice,
  severityOf,
  stepSlice,
  thresholdsSchema,
  validateThresholds,
  type ConsecutiveThresholds,
  type HealthStatus,
  type SliceState,
  type Thresholds,
  type WindowThresholds,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { sameThresholds } from "../../src/thresholds";

const H = "healthy";
const D = "degraded";
const U = "unhealthy";

function consecutive(healthy: number, degraded: number, unhealthy: number): ConsecutiveThresholds {
  return validateThresholds({
    mode: "consecutive",
    healthy: { minSuccessCount: healthy },
    degraded: { minFailureCount: degraded },
    unhealthy: { minFailureCount: unhealthy },
  })._unsafeUnwrap() as ConsecutiveThresholds;
}

function windowed(windowSize: number, degraded: number, unhealthy: number): WindowThresholds {
  return validateThresholds({
    mode: "window",
    windowSize,
    degraded: { minFailureCount: degraded },
    unhealthy: { minFailureCount: unhealthy },
  })._unsafeUnwrap() as WindowThresholds;
}

/** The status after each run, starting from a fresh slice. */
function trace(statuses: readonly HealthStatus[], thresholds?: Thresholds): HealthStatus[] {
  const out: HealthStatus[] = [];
  let state = INITIAL_SLICE_STATE;
  for (const status of statuses) {
    state = thresholds === undefined ? stepSlice(state, status) : stepSlice(state, status, thresholds);
    out.push(state.status);
  }
  return out;
}

function repeat(status: HealthStatus, times: number): HealthStatus[] {
  return Array.from({ length: times }, () => status);
}

function issuesOf(input: unknown) {
  const result = validateThresholds(input);
  expect(result.isErr()).toBe(true);
  const error = result._unsafeUnwrapErr();
  expect(error).toBeInstanceOf(ValidationError);
  return error.issues;
}

describe("thresholds validation (§5)", () => {
  it("undefined gives the default consecutive thresholds", () => {
    expect(validateThresholds(undefined)._unsafeUnwrap()).toEqual(DEFAULT_THRESHOLDS);
    expect(DEFAULT_THRESHOLDS).toEqual({
      mode: "consecutive",
      healthy: { minSuccessCount: 1 },
      degraded: { minFailureCount: 2 },
      unhealthy: { minFailureCount: 5 },
    });
  });

  it("fills the defaults of each mode", () => {
    expect(validateThresholds({ mode: "consecutive" })._unsafeUnwrap()).toEqual(DEFAULT_THRESHOLDS);
    expect(validateThresholds({ mode: "window" })._unsafeUnwrap()).toEqual(DEFAULT_WINDOW_THRESHOLDS);
    expect(DEFAULT_WINDOW_THRESHOLDS).toEqual({
      mode: "window",
      windowSize: 10,
      degraded: { minFailureCount: 3 },
      unhealthy: { minFailureCount: 7 },
    });
  });

  it("fills partial input with the mode's defaults", () => {
    expect(validateThresholds({ mode: "consecutive", unhealthy: { minFailureCount: 8 } })._unsafeUnwrap()).toEqual({
      mode: "consecutive",
      healthy: { minSuccessCount: 1 },
      degraded: { minFailureCount: 2 },
      unhealthy: { minFailureCount: 8 },
    });
    expect(validateThresholds({ mode: "consecutive", healthy: {}, degraded: { minFailureCount: 3 } })._unsafeUnwrap()).toEqual({
      mode: "consecutive",
      healthy: { minSuccessCount: 1 },
      degraded: { minFailureCount: 3 },
      unhealthy: { minFailureCount: 5 },
    });
    expect(validateThresholds({ mode: "window", windowSize: 20 })._unsafeUnwrap()).toEqual({
      mode: "window",
      windowSize: 20,
      degraded: { minFailureCount: 3 },
      unhealthy: { minFailureCount: 7 },
    });
    expect(validateThresholds({ mode: "window", degraded: { minFailureCount: 1 } })._unsafeUnwrap()).toEqual({
      mode: "window",
      windowSize: 10,
      degraded: { minFailureCount: 1 },
      unhealthy: { minFailureCount: 7 },
    });
  });

  it.each([
    [{ mode: "consecutive", healthy: { minSuccessCount: 0 } }, ["healthy", "minSuccessCount"], /at least 1/],
    [{ mode: "consecutive", healthy: { minSuccessCount: 1.5 } }, ["healthy", "minSuccessCount"], /integer/],
    [{ mode: "consecutive", degraded: { minFailureCount: -1 } }, ["degraded", "minFailureCount"], /at least 1/],
    [{ mode: "consecutive", unhealthy: { minFailureCount: 5.5 } }, ["unhealthy", "minFailureCount"], /integer/],
    [{ mode: "consecutive", unhealthy: { minFailureCount: "5" } }, ["unhealthy", "minFailureCount"], /number/],
    [{ mode: "window", degraded: { minFailureCount: 0 } }, ["degraded", "minFailureCount"], /at least 1/],
    [{ mode: "window", windowSize: 2, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 2 } }, ["windowSize"], /at least 3/],
    [{ mode: "window", windowSize: 101 }, ["windowSize"], /at most 100/],
    [{ mode: "window", windowSize: 10.5 }, ["windowSize"], /integer/],
    [
      { mode: "consecutive", degraded: { minFailureCount: 6 }, unhealthy: { minFailureCount: 5 } },
      ["degraded", "minFailureCount"],
      /at most unhealthy\.minFailureCount \(5\)/,
    ],
    [{ mode: "consecutive", degraded: { minFailureCount: 7 } }, ["degraded", "minFailureCount"], /at most unhealthy/],
    [
      { mode: "window", degraded: { minFailureCount: 8 }, unhealthy: { minFailureCount: 7 } },
      ["degraded", "minFailureCount"],
      /at most unhealthy/,
    ],
    [
      { mode: "window", windowSize: 5, degraded: { minFailureCount: 2 }, unhealthy: { minFailureCount: 6 } },
      ["unhealthy", "minFailureCount"],
      /at most windowSize \(5\)/,
    ],
    [{ mode: "window", windowSize: 5 }, ["unhealthy", "minFailureCount"], /at most windowSize/],
    // An unknown key is reported at the key itself (a typo is pointed at where it is).
    [{ mode: "consecutive", extra: 1 }, ["extra"], /^unknown key "extra"$/],
    [{ mode: "consecutive", degraded: { minFailCount: 2 } }, ["degraded", "minFailCount"], /^unknown key "minFailCount"$/],
    [{ mode: "consecutive", windowSize: 10 }, ["windowSize"], /^unknown key "windowSize"$/],
    [{ mode: "window", healthy: { minSuccessCount: 1 } }, ["healthy"], /^unknown key "healthy"$/],
    [{}, ["mode"], /discriminator|mode/i],
    [{ degraded: { minFailureCount: 2 } }, ["mode"], /discriminator|mode/i],
    [{ mode: "sliding" }, ["mode"], /discriminator|mode/i],
    [null, [], /object/],
    [5, [], /object/],
  ])("rejects %j at its path", (input, path, message) => {
    const issues = issuesOf(input);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toEqual(path);
    expect(issues[0]?.message).toMatch(message);
  });

  it("accepts the bounds", () => {
    expect(validateThresholds({ mode: "window", windowSize: 3, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 3 } }).isOk()).toBe(true);
    expect(validateThresholds({ mode: "window", windowSize: MAX_WINDOW_SIZE }).isOk()).toBe(true);
    expect(validateThresholds({ mode: "window", windowSize: 7, degraded: { minFailureCount: 7 }, unhealthy: { minFailureCount: 7 } }).isOk()).toBe(true);
    expect(validateThresholds({ mode: "consecutive", healthy: { minSuccessCount: 1 }, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 1 } }).isOk()).toBe(true);
    expect(validateThresholds({ mode: "consecutive", degraded: { minFailureCount: 5 } }).isOk()).toBe(true);
  });

  it("reports every problem at once, each with its path", () => {
    const issues = issuesOf({ mode: "window", windowSize: 2, degraded: { minFailureCount: 0 }, extra: true });
    expect(issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining([["windowSize"], ["degraded", "minFailureCount"], ["extra"]]),
    );
    expect(issues.length).toBeGreaterThanOrEqual(3);
  });

  it("checks the cross-field rules on the valid fields even when another field is not a whole number", () => {
    // A failed integer check used to abort the parse before the cross-field rules ran.
    expect(issuesOf({ mode: "consecutive", healthy: { minSuccessCount: 1.5 }, degraded: { minFailureCount: 6 }, unhealthy: { minFailureCount: 5 } })).toEqual([
      { path: ["healthy", "minSuccessCount"], message: "must be an integer" },
      { path: ["degraded", "minFailureCount"], message: "must be at most unhealthy.minFailureCount (5)" },
    ]);
    expect(issuesOf({ mode: "window", windowSize: 10, degraded: { minFailureCount: 2.5 }, unhealthy: { minFailureCount: 11 } })).toEqual([
      { path: ["degraded", "minFailureCount"], message: "must be an integer" },
      { path: ["unhealthy", "minFailureCount"], message: "must be at most windowSize (10)" },
    ]);
    // A broken field is not compared: one problem each, no second one on the same field.
    expect(issuesOf({ mode: "window", windowSize: 10.5, unhealthy: { minFailureCount: 11 } })).toEqual([{ path: ["windowSize"], message: "must be an integer" }]);
    expect(issuesOf({ mode: "consecutive", degraded: { minFailureCount: "6" }, unhealthy: { minFailureCount: 5 } }).map((issue) => issue.path)).toEqual([
      ["degraded", "minFailureCount"],
    ]);
    expect(issuesOf({ mode: "window", windowSize: 2 ** 60 }).map((issue) => issue.message)).toEqual(["must be an integer", "must be at most 100"]);
    expect(issuesOf({ mode: "window", windowSize: 101, unhealthy: { minFailureCount: 102 } })).toEqual([{ path: ["windowSize"], message: "must be at most 100" }]);
    expect(issuesOf({ mode: "window", windowSize: 2, unhealthy: { minFailureCount: 3 } })).toEqual([{ path: ["windowSize"], message: "must be at least 3" }]);
    expect(issuesOf({ mode: "consecutive", degraded: { minFailureCount: 0 }, unhealthy: { minFailureCount: 0.5 } })).toEqual([
      { path: ["degraded", "minFailureCount"], message: "must be at least 1" },
      { path: ["unhealthy", "minFailureCount"], message: "must be an integer" },
      { path: ["unhealthy", "minFailureCount"], message: "must be at least 1" },
    ]);
  });

  it("is an Err, never a throw, for input that throws while read, whatever its mode", () => {
    const hostile = (mode: string) =>
      Object.defineProperty({ mode, healthy: { minSuccessCount: 1.5 } }, "degraded", {
        enumerable: true,
        get: (): never => {
          throw new Error("boom");
        },
      });
    // An unknown mode stops the parse before the other fields are read: the mode is the problem.
    expect(issuesOf(hostile("bogus")).map((issue) => issue.path)).toEqual([["mode"]]);
    expect(issuesOf(hostile("consecutive"))).toEqual([{ path: [], message: "could not be read: boom" }]);
    // A mode that reads once and then throws (or throws a non-Error): still a ValidationError.
    let reads = 0;
    const fickle = Object.defineProperty({}, "mode", {
      enumerable: true,
      get: () => {
        reads += 1;
        if (reads > 1) throw new Error("read twice");
        return "bogus";
      },
    });
    expect(issuesOf(fickle).map((issue) => issue.path)).toEqual([["mode"]]);
    const throwsText = Object.defineProperty({}, "mode", {
      enumerable: true,
      get: (): never => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a caller's getter may do
        throw "not an Error";
      },
    });
    expect(issuesOf(throwsText)).toEqual([{ path: [], message: "could not be read: not an Error" }]);
  });

  it("adds nothing to a group that failed its own type, whatever it holds", () => {
    const withCount = <T extends object>(value: T, count: number) => Object.assign(value, { minFailureCount: count });
    // A function or an array carrying a count fails as a group: that is its only problem, and no
    // comparison with the other group is made from what it holds.
    for (const group of [withCount(() => 0, 9), withCount([1], 9)]) {
      const issues = issuesOf({ mode: "window", windowSize: 5, degraded: group, unhealthy: { minFailureCount: 3 } });
      expect(issues.map((issue) => issue.path)).toEqual([["degraded"]]);
    }
    // Objects zod parses as a group (its own copy) are compared as any other.
    for (const group of [withCount(new (class Counts {})(), 9), withCount(Object.create(null) as object, 9)]) {
      const issues = issuesOf({ mode: "window", windowSize: 5, degraded: group, unhealthy: { minFailureCount: 3 } });
      expect(issues).toEqual([{ path: ["degraded", "minFailureCount"], message: "must be at most unhealthy.minFailureCount (3)" }]);
    }
    const throwing = Object.defineProperty(() => 0, "minFailureCount", {
      get: (): never => {
        throw new Error("getter");
      },
    });
    // Its getter is never read: each field keeps its own problems, nothing is replaced by a read error.
    expect(issuesOf({ mode: "window", windowSize: 1.5, degraded: throwing, unhealthy: { minFailureCount: 0 } }).map((issue) => issue.path)).toEqual([
      ["windowSize"],
      ["windowSize"],
      ["degraded"],
      ["unhealthy", "minFailureCount"],
    ]);
  });

  it("thresholdsSchema is the same schema", () => {
    expect(thresholdsSchema.safeParse({ mode: "window" }).success).toBe(true);
    expect(thresholdsSchema.safeParse({ mode: "window", windowSize: 1 }).success).toBe(false);
  });

  it("sameThresholds compares structurally and across modes", () => {
    expect(sameThresholds(DEFAULT_THRESHOLDS, consecutive(1, 2, 5))).toBe(true);
    expect(sameThresholds(DEFAULT_THRESHOLDS, consecutive(2, 2, 5))).toBe(false);
    expect(sameThresholds(DEFAULT_THRESHOLDS, consecutive(1, 3, 5))).toBe(false);
    expect(sameThresholds(DEFAULT_THRESHOLDS, consecutive(1, 2, 6))).toBe(false);
    expect(sameThresholds(DEFAULT_WINDOW_THRESHOLDS, windowed(10, 3, 7))).toBe(true);
    expect(sameThresholds(DEFAULT_WINDOW_THRESHOLDS, windowed(11, 3, 7))).toBe(false);
    expect(sameThresholds(DEFAULT_WINDOW_THRESHOLDS, windowed(10, 4, 7))).toBe(false);
    expect(sameThresholds(DEFAULT_WINDOW_THRESHOLDS, windowed(10, 3, 8))).toBe(false);
    expect(sameThresholds(DEFAULT_WINDOW_THRESHOLDS, DEFAULT_THRESHOLDS)).toBe(false);
    expect(sameThresholds(DEFAULT_THRESHOLDS, DEFAULT_WINDOW_THRESHOLDS)).toBe(false);
  });
});

describe("consecutive mode (§5)", () => {
  it("a slice without runs is healthy", () => {
    expect(INITIAL_SLICE_STATE.status).toBe("healthy");
    expect(evaluateRuns([])).toBe("healthy");
    expect(evaluateRuns([], DEFAULT_WINDOW_THRESHOLDS)).toBe("healthy");
  });

  it("a failure blip shorter than the degraded threshold changes nothing", () => {
    expect(trace([D])).toEqual([H]);
    expect(trace([U])).toEqual([H]);
    expect(trace([D, H, D, H, U, H])).toEqual([H, H, H, H, H, H]);
    expect(trace([D, D, D], consecutive(1, 4, 6))).toEqual([H, H, H]);
  });

  it("a success blip shorter than the healthy threshold changes nothing", () => {
    const thresholds = consecutive(3, 2, 5);
    expect(trace([D, D, H, H, D, H, H, H], thresholds)).toEqual([H, D, D, D, D, D, D, H]);
    // The interrupted success streak starts again from zero.
    expect(trace([D, D, H, H, D, H, H], thresholds).at(-1)).toBe(D);
  });

  it("degrades at degraded.minFailureCount failures, of either kind", () => {
    expect(trace([D, D])).toEqual([H, D]);
    expect(trace([U, U])).toEqual([H, D]);
    expect(trace([D, U])).toEqual([H, D]);
  });

  it("5 degraded runs give degraded, not unhealthy; any number of them do", () => {
    expect(trace(repeat(D, 5))).toEqual([H, D, D, D, D]);
    expect(evaluateRuns(repeat(D, 50))).toBe(D);
  });

  it("unhealthy needs the streak to reach unhealthy.minFailureCount and hold an unhealthy run", () => {
    expect(trace(repeat(U, 5))).toEqual([H, D, D, D, U]);
    expect(trace([D, D, D, D, U])).toEqual([H, D, D, D, U]);
    expect(trace([U, D, D, D, D])).toEqual([H, D, D, D, U]);
    expect(trace([U, D, D, D, D, D])).toEqual([H, D, D, D, U, U]);
    // Once the streak is long enough, the first unhealthy run escalates at once.
    expect(trace([D, D, D, D, D, D, U])).toEqual([H, D, D, D, D, D, U]);
  });

  it("a healthy run resets the failure streak", () => {
    expect(trace([U, U, U, U, H, U, U, U, U])).toEqual([H, D, D, D, H, H, D, D, D]);
  });

  it("a failure streak escalates but never de-escalates", () => {
    const thresholds = consecutive(3, 2, 5);
    const toUnhealthy = repeat(U, 5);
    expect(evaluateRuns(toUnhealthy, thresholds)).toBe(U);
    // One success (short of 3) then a degraded streak: the target degraded is less severe, so the
    // status stays unhealthy.
    expect(trace([...toUnhealthy, H, D, D, D, D, D, D], thresholds).slice(5)).toEqual([U, U, U, U, U, U, U]);
    expect(trace([...toUnhealthy, H, H, H], thresholds).slice(5)).toEqual([U, U, H]);
  });

  it("escalates from degraded to unhealthy within the same streak", () => {
    expect(trace([D, D, D, D, D, U, U], consecutive(1, 2, 6))).toEqual([H, D, D, D, D, U, U]);
  });

  it("recovers at healthy.minSuccessCount successes", () => {
    expect(trace([U, U, U, U, U, H])).toEqual([H, D, D, D, U, H]);
    expect(trace([U, U, U, U, U, H, H], consecutive(2, 2, 5)).slice(5)).toEqual([U, H]);
    expect(trace([H, H, H], consecutive(2, 2, 5))).toEqual([H, H, H]);
  });

  it("uses DEFAULT_THRESHOLDS when none are given", () => {
    const runs: HealthStatus[] = [U, D, U, D, U, H, D, D];
    expect(evaluateRuns(runs)).toBe(evaluateRuns(runs, DEFAULT_THRESHOLDS));
    expect(trace(runs)).toEqual(trace(runs, DEFAULT_THRESHOLDS));
  });
});

describe("window mode (§5)", () => {
  const defaults = DEFAULT_WINDOW_THRESHOLDS;

  it("counts non-healthy runs; one success does not reset the count", () => {
    expect(trace([D, D, D], defaults)).toEqual([H, H, D]);
    expect(trace([D, D, H, D], defaults)).toEqual([H, H, H, D]);
    expect(trace([D, H, D, H, D], defaults)).toEqual([H, H, H, H, D]);
  });

  it("unhealthy needs the unhealthy count and at least one unhealthy run in the window", () => {
    expect(evaluateRuns(repeat(D, 7), defaults)).toBe(D);
    expect(evaluateRuns(repeat(D, 10), defaults)).toBe(D);
    expect(evaluateRuns([...repeat(D, 6), U], defaults)).toBe(U);
    expect(evaluateRuns([U, ...repeat(D, 6)], defaults)).toBe(U);
    expect(evaluateRuns([U, H, U, H, U, H, U, U, U, U], defaults)).toBe(U);
  });

  it("looks only at the newest windowSize runs", () => {
    const thresholds = windowed(5, 2, 3);
    // Three failures, then healthy runs push them out of the window one by one.
    expect(trace([U, U, U, H, H, H, H, H], thresholds)).toEqual([H, D, U, U, U, D, H, H]);
  });

  it("uses the runs there are while fewer than windowSize exist", () => {
    expect(trace([U, U, U, U, U, U, U], defaults)).toEqual([H, H, D, D, D, D, U]);
  });

  it("goes back down without hysteresis when failures leave the window", () => {
    const thresholds = windowed(4, 1, 3);
    expect(trace([U, U, U, H, H, H, H], thresholds)).toEqual([D, D, U, U, D, D, H]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const status = fc.constantFrom<HealthStatus>(H, D, U);
/** Runs with long streaks: blocks of one status, so thresholds are actually reached. */
const runs = (maxBlocks: number) =>
  fc
    .oneof(
      fc.array(fc.tuple(status, fc.integer({ min: 1, max: 8 })), { maxLength: maxBlocks }),
      fc.array(fc.tuple(status, fc.constant(1)), { maxLength: maxBlocks * 3 }),
    )
    .map((blocks) => blocks.flatMap(([value, times]) => repeat(value, times)));

const consecutiveThresholds: fc.Arbitrary<ConsecutiveThresholds> = fc
  .record({ h: fc.integer({ min: 1, max: 6 }), d: fc.integer({ min: 1, max: 8 }), extra: fc.integer({ min: 0, max: 6 }) })
  .map(({ h, d, extra }) => consecutive(h, d, d + extra));

const windowThresholds: fc.Arbitrary<WindowThresholds> = fc
  .integer({ min: 3, max: 40 })
  .chain((size) =>
    fc
      .integer({ min: 1, max: size })
      .chain((d) => fc.integer({ min: d, max: size }).map((u) => windowed(size, d, u))),
  );

const anyThresholds: fc.Arbitrary<Thresholds> = fc.oneof(consecutiveThresholds, windowThresholds);

/** Length of the run of non-healthy (or healthy) results ending at `index`, counted directly. */
function trailing(list: readonly HealthStatus[], index: number, failing: boolean): { length: number; hasUnhealthy: boolean } {
  let length = 0;
  let hasUnhealthy = false;
  for (let at = index; at >= 0 && (list[at] !== H) === failing; at -= 1) {
    length += 1;
    if (list[at] === U) hasUnhealthy = true;
  }
  return { length, hasUnhealthy };
}

/** §5 window mode, written directly: count over the newest windowSize runs. */
function windowStatus(list: readonly HealthStatus[], thresholds: WindowThresholds): HealthStatus {
  const window = list.slice(-thresholds.windowSize);
  const failures = window.filter((value) => value !== H).length;
  if (failures >= thresholds.unhealthy.minFailureCount && window.includes(U)) return U;
  if (failures >= thresholds.degraded.minFailureCount) return D;
  return H;
}

describe("slice evaluation properties (§5)", () => {
  test.prop([consecutiveThresholds, runs(20)], { numRuns: 300 })(
    "consecutive: a streak shorter than its threshold never changes the status, in either direction",
    (thresholds, list) => {
      const statuses = trace(list, thresholds);
      list.forEach((run, index) => {
        const before = index === 0 ? H : (statuses[index - 1] as HealthStatus);
        const after = statuses[index] as HealthStatus;
        const failing = run !== H;
        const streak = trailing(list, index, failing).length;
        if (failing && streak < thresholds.degraded.minFailureCount) expect(after).toBe(before);
        if (!failing && streak < thresholds.healthy.minSuccessCount) expect(after).toBe(before);
      });
    },
  );

  test.prop([consecutiveThresholds, runs(20)], { numRuns: 300 })(
    "consecutive: each step follows the state machine, computed from the runs directly",
    (thresholds, list) => {
      const statuses = trace(list, thresholds);
      list.forEach((run, index) => {
        const before = index === 0 ? H : (statuses[index - 1] as HealthStatus);
        const after = statuses[index] as HealthStatus;
        if (run === H) {
          const streak = trailing(list, index, false).length;
          expect(after).toBe(streak >= thresholds.healthy.minSuccessCount ? H : before);
          return;
        }
        const { length, hasUnhealthy } = trailing(list, index, true);
        const target: HealthStatus | undefined =
          length >= thresholds.unhealthy.minFailureCount && hasUnhealthy
            ? U
            : length >= thresholds.degraded.minFailureCount
              ? D
              : undefined;
        const expected = target !== undefined && severityOf(target) > severityOf(before) ? target : before;
        expect(after).toBe(expected);
        // A failure never improves the status.
        expect(severityOf(after)).toBeGreaterThanOrEqual(severityOf(before));
      });
    },
  );

  test.prop([consecutiveThresholds, runs(20)])(
    "consecutive: always unhealthy after unhealthy.minFailureCount unhealthy runs, healthy after minSuccessCount successes",
    (thresholds, prefix) => {
      const failing = [...prefix, ...repeat(U, thresholds.unhealthy.minFailureCount)];
      expect(evaluateRuns(failing, thresholds)).toBe(U);
      expect(evaluateRuns([...failing, ...repeat(H, thresholds.healthy.minSuccessCount)], thresholds)).toBe(H);
    },
  );

  test.prop([windowThresholds, runs(25)], { numRuns: 300 })(
    "window: the status after every run equals a direct count over the newest windowSize runs",
    (thresholds, list) => {
      const statuses = trace(list, thresholds);
      list.forEach((_run, index) => {
        expect(statuses[index]).toBe(windowStatus(list.slice(0, index + 1), thresholds));
      });
    },
  );

  test.prop([anyThresholds, runs(30)])("evaluateRuns equals folding stepSlice from the initial state", (thresholds, list) => {
    const folded = list.reduce<SliceState>((state, value) => stepSlice(state, value, thresholds), INITIAL_SLICE_STATE);
    expect(evaluateRuns(list, thresholds)).toBe(folded.status);
  });

  test.prop([anyThresholds, anyThresholds, runs(40)], { numRuns: 300 })(
    "reevaluateSlice equals evaluating the remembered (newest MAX_WINDOW_SIZE) runs under the new thresholds",
    (before, after, list) => {
      const state = list.reduce<SliceState>((current, value) => stepSlice(current, value, before), INITIAL_SLICE_STATE);
      const remembered = list.slice(-MAX_WINDOW_SIZE);
      const reevaluated = reevaluateSlice(state, after);
      expect(reevaluated.status).toBe(evaluateRuns(remembered, after));
      const fresh = remembered.reduce<SliceState>((current, value) => stepSlice(current, value, after), INITIAL_SLICE_STATE);
      expect(reevaluated).toEqual(fresh);
      // Continuing after a re-evaluation behaves as if the slice had always had the new thresholds.
      const next = stepSlice(reevaluated, U, after).status;
      expect(next).toBe(evaluateRuns([...remembered, U], after));
    },
  );

  test.prop([anyThresholds, runs(20)])("reevaluating under the same thresholds keeps the status of short histories", (thresholds, list) => {
    fc.pre(list.length <= MAX_WINDOW_SIZE);
    const state = list.reduce<SliceState>((current, value) => stepSlice(current, value, thresholds), INITIAL_SLICE_STATE);
    expect(reevaluateSlice(state, thresholds)).toEqual(state);
  });
});
