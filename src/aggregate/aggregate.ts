import { resolveEffectiveEnvironments } from "../environments";
import { unsafeEncodeEntityId } from "../ids";
import { HEALTH_STATUSES, severityOf, worstStatus, type HealthStatus } from "../status";
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

/**
 * The entities a run of `environmentId` can change, exactly as `aggregateSystem` computes them:
 * the rollup, then the (system, `environmentId`) entity (none for an env-less run); each present
 * exactly when `aggregateSystem` returns it. Only the counted assignments' slices are looked up
 * and nothing is built for the other environments: the engine calls this for every run.
 */
export function aggregateRunEntities(
  system: SystemRecord,
  assignments: Iterable<AssignmentRecord>,
  sliceStatus: SliceStatusLookup,
  environmentId: string | null,
): EntityView[] {
  // Severities (0 healthy, 1 degraded, 2 unhealthy), the index of each status in HEALTH_STATUSES.
  let rollupWorst = 0;
  let rollupHealthy = 0;
  let rollupTotal = 0;
  let environmentWorst = 0;
  let environmentHealthy = 0;
  let environmentTotal = 0;
  const membership = system.environmentIds;
  for (const assignment of assignments) {
    if (assignment.systemId !== system.systemId || !isCounted(assignment)) continue;
    // The effective slices (`effectiveSlices`) walked in place, without building the list.
    const selector = assignment.environmentIds;
    let worst = 0;
    let effective = 0;
    for (const member of membership) {
      if (selector !== null && !selector.includes(member)) continue;
      effective += 1;
      const severity = severityOf(sliceStatus(assignment.checkId, member));
      if (severity > worst) worst = severity;
      if (member === environmentId) {
        environmentTotal += 1;
        if (severity === 0) environmentHealthy += 1;
        if (severity > environmentWorst) environmentWorst = severity;
      }
    }
    if (effective === 0) worst = severityOf(sliceStatus(assignment.checkId, null));
    rollupTotal += 1;
    if (worst === 0) rollupHealthy += 1;
    if (worst > rollupWorst) rollupWorst = worst;
  }
  if (rollupTotal === 0) return [];
  const views: EntityView[] = [
    {
      entityId: unsafeEncodeEntityId(system.systemId, null),
      systemId: system.systemId,
      environmentId: null,
      state: { status: HEALTH_STATUSES[rollupWorst] as HealthStatus, healthyChecks: rollupHealthy, totalChecks: rollupTotal },
    },
  ];
  if (environmentTotal > 0) {
    views.push({
      entityId: unsafeEncodeEntityId(system.systemId, environmentId),
      systemId: system.systemId,
      environmentId,
      state: { status: HEALTH_STATUSES[environmentWorst] as HealthStatus, healthyChecks: environmentHealthy, totalChecks: environmentTotal },
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
