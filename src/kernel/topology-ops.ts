import type { AssignmentRecord } from "../aggregate";
import { isEmptyFlappingOverride, type FlappingOverride } from "../flapping";
import { DEFAULT_THRESHOLDS, type Thresholds } from "../thresholds";
import type { SystemWorkspace } from "./system-workspace";

/** A validated check entry of a topology document or an `assignCheck` call. */
export interface CheckSpec {
  readonly checkId: string;
  readonly thresholds?: Thresholds | undefined;
  readonly environmentIds?: readonly string[] | null | undefined;
  readonly enabled?: boolean | undefined;
  readonly paused?: boolean | undefined;
  /** `null` clears the override; omitted keeps the current one (update) or none (create). */
  readonly flapping?: FlappingOverride | null | undefined;
}

/** A validated system entry of a topology document. */
export interface SystemSpec {
  readonly systemId: string;
  readonly environmentIds: readonly string[];
  readonly checks: readonly CheckSpec[];
}

/**
 * The assignment a check spec describes. Omitted fields take the current assignment's values when
 * `base` is given (update), the defaults otherwise (thresholds `DEFAULT_THRESHOLDS`, selector
 * `null`, enabled, not paused, no flap override). A `null` or empty flap override is none; the
 * record carries only the fields an override sets.
 */
export function assignmentFromSpec(systemId: string, spec: CheckSpec, base?: AssignmentRecord): AssignmentRecord {
  return {
    systemId,
    checkId: spec.checkId,
    thresholds: spec.thresholds ?? base?.thresholds ?? DEFAULT_THRESHOLDS,
    environmentIds: spec.environmentIds === undefined ? (base?.environmentIds ?? null) : spec.environmentIds,
    enabled: spec.enabled ?? base?.enabled ?? true,
    paused: spec.paused ?? base?.paused ?? false,
    ...flappingField(spec.flapping === undefined ? base?.flapping : spec.flapping),
  };
}

function flappingField(override: FlappingOverride | null | undefined): { flapping?: FlappingOverride } {
  if (override == null || isEmptyFlappingOverride(override)) return {};
  return {
    flapping: {
      ...(override.enabled === undefined ? {} : { enabled: override.enabled }),
      ...(override.low === undefined ? {} : { low: override.low }),
      ...(override.high === undefined ? {} : { high: override.high }),
    },
  };
}

/**
 * Makes a workspace match one system of a declarative document: membership, and every listed
 * check with omitted fields at their defaults (a document is the whole truth about what it
 * lists). With `prune`, checks absent from the document are unassigned. Returns whether
 * anything changed; entities are re-evaluated by the caller.
 */
export function applySystemSpec(workspace: SystemWorkspace, spec: SystemSpec, prune: boolean): boolean {
  let changed = workspace.setSystem({ systemId: spec.systemId, environmentIds: spec.environmentIds });
  const listed = new Set<string>();
  for (const check of spec.checks) {
    listed.add(check.checkId);
    changed = workspace.setAssignment(assignmentFromSpec(spec.systemId, check)) || changed;
  }
  if (prune) {
    for (const assignment of workspace.listAssignments()) {
      if (!listed.has(assignment.checkId)) changed = workspace.deleteAssignment(assignment.checkId) || changed;
    }
  }
  return changed;
}
