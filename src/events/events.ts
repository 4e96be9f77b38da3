import { z } from "zod";
import { HEALTH_STATUSES } from "../status";
import { HEALTH_TRIGGER_EVENTS } from "../transitions";

const statusSchema = z.enum(HEALTH_STATUSES);

const baseShape = {
  /** Stable id: the same event always carries the same id, across redeliveries and processes. */
  eventId: z.string(),
  /** Canonical entity id (SPEC §3). */
  entityId: z.string(),
  systemId: z.string(),
  /** `null` for the rollup. */
  environmentId: z.string().nullable(),
  /** Position in the entity's event chain: 1, 2, 3 … without gap or repeat. */
  sequence: z.number().int().min(1),
  /** ISO 8601 UTC time of the run (or topology change) that caused the event. */
  occurredAt: z.string(),
};

/** Zod schema of `HealthTransitionEvent`. */
export const healthTransitionEventSchema = z.object({
  type: z.literal("health.transition"),
  ...baseShape,
  previousStatus: statusSchema,
  newStatus: statusSchema,
  healthyChecks: z.number().int().min(0),
  totalChecks: z.number().int().min(0),
  classification: z.enum(["recovery", "escalation", "deescalation"]),
  triggers: z.array(
    z.enum([HEALTH_TRIGGER_EVENTS.degraded, HEALTH_TRIGGER_EVENTS.healthy, HEALTH_TRIGGER_EVENTS.healthChanged]),
  ),
  cause: z.object({ runId: z.string().optional(), checkId: z.string().optional() }),
  flapping: z.boolean().optional(),
  inMaintenance: z.boolean().optional(),
});

/** Zod schema of `health.flapping_started`. */
export const flappingStartedEventSchema = z.object({
  type: z.literal("health.flapping_started"),
  ...baseShape,
  percentStateChange: z.number(),
  status: statusSchema,
});

/** Zod schema of `health.flapping_stopped`. */
export const flappingStoppedEventSchema = z.object({
  type: z.literal("health.flapping_stopped"),
  ...baseShape,
  percentStateChange: z.number(),
  /** Status when flapping started. */
  statusBefore: statusSchema,
  /** Status now. A consumer muting flapping transitions notifies once when the two differ. */
  statusAfter: statusSchema,
});

/** Zod schema of `health.maintenance_started`. */
export const maintenanceStartedEventSchema = z.object({
  type: z.literal("health.maintenance_started"),
  ...baseShape,
  maintenanceId: z.string(),
  reason: z.string().optional(),
  status: statusSchema,
});

/** Zod schema of `health.maintenance_ended`. */
export const maintenanceEndedEventSchema = z.object({
  type: z.literal("health.maintenance_ended"),
  ...baseShape,
  maintenanceId: z.string(),
  /** Status just before the window started. */
  statusBefore: statusSchema,
  /** Status just before the window's effective end. */
  statusAfter: statusSchema,
});

/** Zod schema of `HealthEvent`, discriminated on `type`. */
export const healthEventSchema = z.discriminatedUnion("type", [
  healthTransitionEventSchema,
  flappingStartedEventSchema,
  flappingStoppedEventSchema,
  maintenanceStartedEventSchema,
  maintenanceEndedEventSchema,
]);

/** A change of an entity's status (SPEC §8). */
export type HealthTransitionEvent = z.output<typeof healthTransitionEventSchema>;
export type FlappingStartedEvent = z.output<typeof flappingStartedEventSchema>;
export type FlappingStoppedEvent = z.output<typeof flappingStoppedEventSchema>;
export type MaintenanceStartedEvent = z.output<typeof maintenanceStartedEventSchema>;
export type MaintenanceEndedEvent = z.output<typeof maintenanceEndedEventSchema>;
/** Every event the engine publishes, discriminated on `type`; all share one per-entity sequence. */
export type HealthEvent = z.output<typeof healthEventSchema>;
/** The `type` of a `HealthEvent`. */
export type HealthEventType = HealthEvent["type"];

/**
 * The stable id of an entity's `sequence`-th event. Deterministic, so that `replay` and the
 * engine produce the same ids and a redelivered event keeps its id.
 */
export function eventIdOf(entityId: string, sequence: number): string {
  return `${entityId}#${sequence}`;
}
