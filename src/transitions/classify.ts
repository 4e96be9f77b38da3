import type { HealthEntityState } from "../aggregate";
import { parseHealthEntityId } from "../ids";
import { compareSeverity, type HealthStatus } from "../status";

/**
 * A change of an entity's state as the engine observes it: `prev` is `null` when the entity was
 * just created, `next` is `null` when it was removed.
 */
export interface HealthChange {
  /** Canonical entity id (SPEC §3). */
  readonly id: string;
  readonly prev: HealthEntityState | null;
  readonly next: HealthEntityState | null;
  /** ISO 8601 time of the change. */
  readonly occurredAt: string;
}

/** What `classifyHealthChange` says about a change (SPEC §7). */
export interface HealthChangeClassification {
  readonly systemId: string;
  /** `null` for the rollup. */
  readonly environmentId: string | null;
  readonly previousStatus: HealthStatus | null;
  readonly newStatus: HealthStatus | null;
  /** Both present, previously healthy, now not healthy. */
  readonly degraded: boolean;
  /** Both present, now healthy, previously not healthy. */
  readonly recovered: boolean;
}

/** How a status change moves: none, back to healthy, more severe, or less severe but not healthy. */
export type TransitionClassification = "none" | "recovery" | "escalation" | "deescalation";

/**
 * Classifies a status change: equal → `"none"`; next healthy → `"recovery"`; severity up →
 * `"escalation"`; otherwise `"deescalation"` (for example unhealthy → degraded).
 */
export function classifyTransition(prev: HealthStatus, next: HealthStatus): TransitionClassification {
  if (prev === next) return "none";
  if (next === "healthy") return "recovery";
  return compareSeverity(next, prev) > 0 ? "escalation" : "deescalation";
}

/**
 * Splits a change's id into system and environment and says whether it degraded or recovered.
 * Creation (`prev` null) and removal (`next` null) are neither.
 *
 * @throws ValidationError when `change.id` is not a canonical entity id (ids produced by the
 * engine always are).
 */
export function classifyHealthChange(change: Pick<HealthChange, "id" | "prev" | "next">): HealthChangeClassification {
  const ref = parseHealthEntityId(change.id);
  if (ref.isErr()) throw ref.error;
  const previousStatus = change.prev?.status ?? null;
  const newStatus = change.next?.status ?? null;
  const bothPresent = previousStatus !== null && newStatus !== null;
  return {
    systemId: ref.value.systemId,
    environmentId: ref.value.environmentId,
    previousStatus,
    newStatus,
    degraded: bothPresent && previousStatus === "healthy" && newStatus !== "healthy",
    recovered: bothPresent && newStatus === "healthy" && previousStatus !== "healthy",
  };
}
