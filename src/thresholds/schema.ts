import { err, ok, type Result } from "neverthrow";
import { z } from "zod";
import type { ValidationError } from "../errors";
import { isRecord, parseWith } from "../validation/issues";

/** Largest accepted `windowSize` in window mode; also how many recent runs a slice remembers. */
export const MAX_WINDOW_SIZE = 100;

/**
 * A whole number: a refinement rather than `.int()`, whose failure aborts the parse (zod 4 reports
 * it as a wrong type), so that the cross-field rules below still run on the other fields.
 */
const integer = () => z.number().refine((value) => Number.isSafeInteger(value), { message: "must be an integer" });

const count = integer().min(1, "must be at least 1");

const consecutiveShape = z.strictObject({
  mode: z.literal("consecutive"),
  healthy: z.strictObject({ minSuccessCount: count.default(1) }).default({ minSuccessCount: 1 }),
  degraded: z.strictObject({ minFailureCount: count.default(2) }).default({ minFailureCount: 2 }),
  unhealthy: z.strictObject({ minFailureCount: count.default(5) }).default({ minFailureCount: 5 }),
});

const windowShape = z.strictObject({
  mode: z.literal("window"),
  windowSize: integer()
    .min(3, "must be at least 3")
    .max(MAX_WINDOW_SIZE, `must be at most ${MAX_WINDOW_SIZE}`)
    .default(10),
  degraded: z.strictObject({ minFailureCount: count.default(3) }).default({ minFailureCount: 3 }),
  unhealthy: z.strictObject({ minFailureCount: count.default(7) }).default({ minFailureCount: 7 }),
});

/**
 * Zod schema of `Thresholds` (SPEC §5), discriminated on `mode`. Omitted fields take the mode's
 * defaults; unknown keys are rejected (a misspelt threshold must not silently fall back to a
 * default). Cross-field rules are checked with their paths.
 */
export const thresholdsSchema = z.discriminatedUnion("mode", [consecutiveShape, windowShape]).superRefine(
  (parsed, ctx) => {
    // Also run when another field failed (every problem at once, SPEC §13): a rule compares only
    // fields that are themselves valid, so it never adds a second problem to a broken one.
    // `when` lets only objects through.
    const value = parsed as unknown as Record<string, unknown>;
    const degraded = failureCountOf(value.degraded);
    const unhealthy = failureCountOf(value.unhealthy);
    if (degraded !== undefined && unhealthy !== undefined && degraded > unhealthy) {
      ctx.addIssue({ code: "custom", path: ["degraded", "minFailureCount"], message: `must be at most unhealthy.minFailureCount (${unhealthy})` });
    }
    const windowSize = value.mode === "window" && isCount(value.windowSize) && value.windowSize >= 3 && value.windowSize <= MAX_WINDOW_SIZE ? value.windowSize : undefined;
    if (windowSize !== undefined && unhealthy !== undefined && unhealthy > windowSize) {
      ctx.addIssue({ code: "custom", path: ["unhealthy", "minFailureCount"], message: `must be at most windowSize (${windowSize})` });
    }
  },
  // Only once the mode is known: the value is then zod's own copy of the fields, never the
  // caller's object (whose getters may throw, as the union, which stopped at the mode, did not read).
  { when: (payload) => isRecord(payload.value) && hasKnownMode(payload.value) },
);

function hasKnownMode(value: Record<string, unknown>): boolean {
  try {
    return value.mode === "consecutive" || value.mode === "window";
  } catch {
    return false;
  }
}

/** A valid count (a safe integer ≥ 1). */
function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

/**
 * `group.minFailureCount` when it is a valid count, read only from a plain object: a group that
 * parsed is zod's copy (defaults filled in), while one that failed its own type may be anything
 * the caller passed (a function with such a property, an object whose getter throws), and the
 * rule, which runs whenever the mode is known, must add nothing to that field's own problem.
 */
function failureCountOf(group: unknown): number | undefined {
  if (!isRecord(group) || Object.getPrototypeOf(group) !== Object.prototype) return undefined;
  const count = group.minFailureCount;
  return isCount(count) ? count : undefined;
}

/** Consecutive-streak thresholds: a state machine with hysteresis on both sides. */
export type ConsecutiveThresholds = z.output<typeof consecutiveShape>;
/** Sliding-window thresholds: counts of non-healthy runs among the newest `windowSize`. */
export type WindowThresholds = z.output<typeof windowShape>;
/** Per-check thresholds (SPEC §5), discriminated on `mode`. */
export type Thresholds = ConsecutiveThresholds | WindowThresholds;
/** What `validateThresholds` accepts: a `Thresholds` whose fields may be omitted (defaults apply). */
export type ThresholdsInput = z.input<typeof thresholdsSchema>;

/**
 * The default thresholds: consecutive mode, healthy after 1 success, degraded after 2 failures,
 * unhealthy after 5 failures that include an unhealthy run.
 */
export const DEFAULT_THRESHOLDS: Thresholds = Object.freeze({
  mode: "consecutive",
  healthy: Object.freeze({ minSuccessCount: 1 }),
  degraded: Object.freeze({ minFailureCount: 2 }),
  unhealthy: Object.freeze({ minFailureCount: 5 }),
});

/** Defaults of window mode: window of 10, degraded at 3 failures, unhealthy at 7. */
export const DEFAULT_WINDOW_THRESHOLDS: Thresholds = Object.freeze({
  mode: "window",
  windowSize: 10,
  degraded: Object.freeze({ minFailureCount: 3 }),
  unhealthy: Object.freeze({ minFailureCount: 7 }),
});

/**
 * Validates thresholds and fills in defaults. `undefined` gives `DEFAULT_THRESHOLDS`.
 * @returns every problem at once, each with its path, as a `ValidationError`.
 */
export function validateThresholds(input: unknown): Result<Thresholds, ValidationError> {
  if (input === undefined) return ok(DEFAULT_THRESHOLDS);
  const parsed = parseWith(thresholdsSchema, input);
  return parsed.isOk() ? ok(parsed.value) : err(parsed.error);
}

/** Structural equality of two thresholds (both validated). */
export function sameThresholds(a: Thresholds, b: Thresholds): boolean {
  if (a.mode === "window" && b.mode === "window") {
    return (
      a.windowSize === b.windowSize &&
      a.degraded.minFailureCount === b.degraded.minFailureCount &&
      a.unhealthy.minFailureCount === b.unhealthy.minFailureCount
    );
  }
  if (a.mode === "consecutive" && b.mode === "consecutive") {
    return (
      a.healthy.minSuccessCount === b.healthy.minSuccessCount &&
      a.degraded.minFailureCount === b.degraded.minFailureCount &&
      a.unhealthy.minFailureCount === b.unhealthy.minFailureCount
    );
  }
  return false;
}
