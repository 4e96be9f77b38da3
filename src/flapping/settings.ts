import type { ConfigurationIssue } from "../errors";

/** Flap detection settings (SPEC §10). */
export interface FlappingConfig {
  /** @default true */
  readonly enabled: boolean;
  /** Flapping stops at or below this percent state change. @default 20 */
  readonly low: number;
  /** Flapping starts at or above this percent state change. @default 30 */
  readonly high: number;
}

/** The defaults of SPEC §10: enabled, low 20, high 30. */
export const DEFAULT_FLAPPING: FlappingConfig = Object.freeze({ enabled: true, low: 20, high: 30 });

/**
 * A per-assignment override of the engine's flap settings (`assignCheck({ flapping })`, a topology
 * document's `checks[].flapping`). Each given field replaces the engine's setting for this
 * assignment; an omitted field inherits it, so changing the engine's settings later still reaches
 * the fields the override leaves out. Percent state changes, between 0 and 100.
 */
export interface FlappingOverride {
  /** Whether this assignment asks for flap detection. @default the engine's `flapping.enabled` */
  readonly enabled?: boolean | undefined;
  /** Flapping stops at or below this percent state change. @default the engine's `flapping.low` */
  readonly low?: number | undefined;
  /** Flapping starts at or above this percent state change. @default the engine's `flapping.high` */
  readonly high?: number | undefined;
}

/** Whether an override changes nothing (absent, `null`, or without any field). */
export function isEmptyFlappingOverride(override: FlappingOverride | null | undefined): boolean {
  return override == null || (override.enabled === undefined && override.low === undefined && override.high === undefined);
}

function merge(global: FlappingConfig, override: FlappingOverride): FlappingConfig {
  return {
    enabled: override.enabled ?? global.enabled,
    low: override.low ?? global.low,
    high: override.high ?? global.high,
  };
}

/**
 * The problems of an override once merged with the engine's settings `global`: the resolved low
 * must be below the resolved high. Paths are relative to the override (`["low"]` when the override
 * sets low, `["high"]` otherwise). Empty for an empty override. Range checks are the schema's.
 */
export function flappingOverrideIssues(global: FlappingConfig, override: FlappingOverride | null | undefined): ConfigurationIssue[] {
  if (override == null) return [];
  const resolved = merge(global, override);
  if (resolved.low < resolved.high) return [];
  if (override.low !== undefined) {
    const source = override.high === undefined ? ", the engine's flapping.high" : "";
    return [{ path: ["low"], message: `must be less than high (${resolved.high}${source})` }];
  }
  return [{ path: ["high"], message: `must be greater than low (${resolved.low}, the engine's flapping.low)` }];
}

/**
 * The settings one assignment asks for: its override merged over the engine's settings `global`.
 * An override whose merged thresholds are not `low < high` (possible only when replicas of one
 * store run with different engine settings, since writes are validated against the writer's) keeps
 * its `enabled` but takes the engine's thresholds, so the result always has `low < high` when
 * `global` does.
 */
export function resolveAssignmentFlapping(global: FlappingConfig, override: FlappingOverride | null | undefined): FlappingConfig {
  if (override == null) return global;
  const resolved = merge(global, override);
  return resolved.low < resolved.high ? resolved : { enabled: resolved.enabled, low: global.low, high: global.high };
}

/**
 * The flap settings of one entity (SPEC §10), from the counted assignments that contribute to it
 * (for the rollup every counted assignment of the system; for a (system, environment) entity the
 * counted assignments effective in that environment), each resolved against `global`:
 * - detection is on when **any** contributor has it on, so disabling takes every contributor;
 * - the thresholds are the **most sensitive** among the enabled contributors: `high = min(high)`,
 *   `low = min(low)`. Still `low < high`: the contributor with the smallest high has a low below
 *   it, and the smallest low is at most that one.
 *
 * With no contributor, or none with an override, the result equals `global`. Pure.
 */
export function resolveEntityFlapping(
  global: FlappingConfig,
  contributors: Iterable<{ readonly flapping?: FlappingOverride | null | undefined }>,
): FlappingConfig {
  let enabled = false;
  let low = Infinity;
  let high = Infinity;
  let any = false;
  for (const contributor of contributors) {
    any = true;
    const resolved = resolveAssignmentFlapping(global, contributor.flapping);
    if (!resolved.enabled) continue;
    enabled = true;
    low = Math.min(low, resolved.low);
    high = Math.min(high, resolved.high);
  }
  if (!any) return global;
  return enabled ? { enabled, low, high } : { enabled, low: global.low, high: global.high };
}

/**
 * `flappingOverrideIssues` for every check of a topology document, with paths from the document's
 * root (`["systems", i, "checks", j, "flapping", "low"]`).
 */
export function topologyFlappingIssues(
  global: FlappingConfig,
  doc: { readonly systems: readonly { readonly checks: readonly { readonly flapping?: FlappingOverride | null | undefined }[] }[] },
): ConfigurationIssue[] {
  return doc.systems.flatMap((system, systemIndex) =>
    system.checks.flatMap((check, checkIndex) =>
      flappingOverrideIssues(global, check.flapping).map((issue) => ({
        ...issue,
        path: ["systems", systemIndex, "checks", checkIndex, "flapping", ...issue.path],
      })),
    ),
  );
}
