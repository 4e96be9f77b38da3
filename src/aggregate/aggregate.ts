import { resolveEffectiveEnvironments } from "../environments";
import { unsafeEncodeEntityId } from "../ids";
import { worstStatus, type HealthStatus } from "../status";
import { isCounted, type AssignmentRecord, type SystemRecord } from "./topology";

/** The aggregated health of one entity (SPEC §6): exactly these three fields. */
export interface HealthEntityState {
  readonly status: HealthStatus;
  /** How many of the counted checks are healthy. */
  readonly healthyChecks: number;
  /** How many checks count towards this entity. */
  readonly totalChecks: number;
}

/** An entity of a system together with its aggregated state. */
export interface EntityView {
  readonly entityId: string;
  readonly systemId: string;
  /** `null` for the rollup. */
  readonly environmentId: string | null;
  readonly state: HealthEntityState;
}

/** Reads a slice's evaluated status; a slice without runs must read as `"healthy"`. */
export type SliceStatusLookup = (checkId: string, environmentId: string | null) => HealthStatus;

/**
 * The slices an assignment evaluates: one per effective environment, or the single env-less slice
 * when it has none.
 */
export function effectiveSlices(assignment: AssignmentRecord, system: SystemRecord): (string | null)[] {
  const environments = resolveEffectiveEnvironments({
    environmentIds: assignment.environmentIds,
    membership: system.environmentIds,
  });
  return environments.length === 0 ? [null] : environments;
}

/**
 * Aggregates a system's slices into its entities (SPEC §6). Returns the rollup first (when the
 * system has at least one counted assignment), then each (system, environment) entity that at
 * least one counted assignment applies to, in membership order. The result does not depend on the
 * order of `assignments`.
 */
export function aggregateSystem(
  system: SystemRecord,
  assignments: Iterable<AssignmentRecord>,
  sliceStatus: SliceStatusLookup,
): EntityView[] {
  const perEnvironment = new Map<string, HealthStatus[]>();
  const checkStatuses: HealthStatus[] = [];
  for (const assignment of assignments) {
    if (assignment.systemId !== system.systemId || !isCounted(assignment)) continue;
    const slices = effectiveSlices(assignment, system);
    const statuses = slices.map((environmentId) => sliceStatus(assignment.checkId, environmentId));
    checkStatuses.push(worstStatus(statuses));
    slices.forEach((environmentId, index) => {
      if (environmentId === null) return;
      const list = perEnvironment.get(environmentId) ?? [];
      list.push(statuses[index] as HealthStatus);
      perEnvironment.set(environmentId, list);
    });
  }
  if (checkStatuses.length === 0) return [];
  const views: EntityView[] = [
    {
      entityId: unsafeEncodeEntityId(system.systemId, null),
      systemId: system.systemId,
      environmentId: null,
      state: summarize(checkStatuses),
    },
  ];
  for (const environmentId of system.environmentIds) {
    const statuses = perEnvironment.get(environmentId);
    if (statuses === undefined) continue;
    views.push({
      entityId: unsafeEncodeEntityId(system.systemId, environmentId),
      systemId: system.systemId,
      environmentId,
      state: summarize(statuses),
    });
  }
  return views;
}

function summarize(statuses: readonly HealthStatus[]): HealthEntityState {
  return {
    status: worstStatus(statuses),
    healthyChecks: statuses.filter((status) => status === "healthy").length,
    totalChecks: statuses.length,
  };
}

/** Whether two entity states are equal field by field. */
export function sameEntityState(a: HealthEntityState, b: HealthEntityState): boolean {
  return a.status === b.status && a.healthyChecks === b.healthyChecks && a.totalChecks === b.totalChecks;
}
