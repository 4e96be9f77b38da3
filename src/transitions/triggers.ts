import type { HealthChange } from "./classify";

/** The trigger event ids of the reference system, one constant per direction plus the umbrella. */
export const HEALTH_TRIGGER_EVENTS = Object.freeze({
  degraded: "healthcheck.system_degraded",
  healthy: "healthcheck.system_healthy",
  healthChanged: "healthcheck.system_health_changed",
} as const);

/** One of the values of `HEALTH_TRIGGER_EVENTS`. */
export type HealthTriggerEvent = (typeof HEALTH_TRIGGER_EVENTS)[keyof typeof HEALTH_TRIGGER_EVENTS];

/**
 * The trigger events a change fires (SPEC §7): none when `prev` or `next` is absent or the
 * statuses are equal; otherwise `system_healthy` when the entity became healthy, or
 * `system_degraded` when it left healthy, and always `system_health_changed` last.
 */
export function deriveHealthTriggerEvents(change: Pick<HealthChange, "prev" | "next">): HealthTriggerEvent[] {
  const prev = change.prev?.status;
  const next = change.next?.status;
  if (prev === undefined || next === undefined || prev === next) return [];
  const events: HealthTriggerEvent[] = [];
  if (next === "healthy") events.push(HEALTH_TRIGGER_EVENTS.healthy);
  else if (prev === "healthy") events.push(HEALTH_TRIGGER_EVENTS.degraded);
  events.push(HEALTH_TRIGGER_EVENTS.healthChanged);
  return events;
}
