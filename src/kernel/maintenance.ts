import type { HealthStatus } from "../status";
import type { HealthTransitionRecord } from "./records";

/**
 * A maintenance window as stored (SPEC §11). A window on a rollup id covers the whole system:
 * every entity of it, each environment included.
 */
export interface MaintenanceRecord {
  readonly maintenanceId: string;
  /** The entity id it was created for (a rollup id covers the whole system). */
  readonly entityId: string;
  readonly systemId: string;
  /** `null` when the window covers the whole system. */
  readonly environmentId: string | null;
  /** ISO 8601 UTC, inclusive. */
  readonly start: string;
  /** ISO 8601 UTC, exclusive; moved earlier by `endMaintenance`. */
  readonly end: string;
  readonly reason: string | null;
  /**
   * The entities that received `maintenance_started`, once the start boundary was processed;
   * `null` before. `maintenance_ended` goes to the same entities.
   */
  readonly startedEntities: readonly string[] | null;
  /** Whether the end boundary was processed (`maintenance_ended` emitted). */
  readonly ended: boolean;
  /** ISO 8601 UTC. */
  readonly createdAt: string;
}

/** Whether a window covers an entity of its system. */
export function coversEntity(window: MaintenanceRecord, entityId: string, systemId: string): boolean {
  if (window.systemId !== systemId) return false;
  return window.environmentId === null || window.entityId === entityId;
}

/** Whether `occurredAt` lies inside the window: `start ≤ occurredAt < end`. */
export function withinWindow(window: Pick<MaintenanceRecord, "start" | "end">, occurredAt: string): boolean {
  const at = Date.parse(occurredAt);
  return Date.parse(window.start) <= at && at < Date.parse(window.end);
}

/** Whether a window has a boundary that is due at `now` and not processed yet. */
export function hasDueBoundary(window: MaintenanceRecord, now: Date): boolean {
  const time = now.getTime();
  if (window.startedEntities === null) return Date.parse(window.start) <= time;
  return !window.ended && Date.parse(window.end) <= time;
}

/**
 * The status an entity had just before `time`, from its transition log in sequence order: the
 * new status of the last transition that took effect before `time` (a transition whose
 * `occurredAt` is earlier than its predecessor's takes effect at its predecessor's time), else the
 * previous status of the first transition, else `current` (the log is empty).
 */
export function statusBefore(
  transitions: readonly Pick<HealthTransitionRecord, "previousStatus" | "newStatus" | "occurredAt">[],
  time: string,
  current: HealthStatus,
): HealthStatus {
  const limit = Date.parse(time);
  let status: HealthStatus | undefined;
  let cursor = Number.NEGATIVE_INFINITY;
  for (const transition of transitions) {
    cursor = Math.max(cursor, Date.parse(transition.occurredAt));
    if (cursor >= limit) break;
    status = transition.newStatus;
  }
  return status ?? transitions[0]?.previousStatus ?? current;
}
