import { z } from "zod";
import { HEALTH_STATUSES, type HealthStatus } from "../status";
import { classifyHealthChange, type HealthChange } from "../transitions";

const statusSchema = z.enum(HEALTH_STATUSES);

// Fields every trigger payload has; the degraded and changed ones add `newStatus`.
const commonShape = {
  systemId: z.string(),
  environmentId: z.string().optional(),
  systemName: z.string().optional(),
  previousStatus: statusSchema,
  healthyChecks: z.number(),
  totalChecks: z.number(),
  timestamp: z.string(),
};

/**
 * Payload of `healthcheck.system_degraded`. A plain (non-strict) object as in the reference:
 * unknown keys are stripped. `environmentId` is absent for a rollup change.
 */
export const systemDegradedPayloadSchema = z.object({ ...commonShape, newStatus: statusSchema });

/** Payload of `healthcheck.system_healthy`: as the degraded one, without `newStatus` (stripped). */
export const systemHealthyPayloadSchema = z.object(commonShape);

/** Payload of `healthcheck.system_health_changed`. */
export const systemHealthChangedPayloadSchema = z.object({ ...commonShape, newStatus: statusSchema });

export type SystemDegradedPayload = z.output<typeof systemDegradedPayloadSchema>;
export type SystemHealthyPayload = z.output<typeof systemHealthyPayloadSchema>;
export type SystemHealthChangedPayload = z.output<typeof systemHealthChangedPayloadSchema>;

/** What `healthChangeToPayload` returns: keys are absent, never `undefined`-valued, when unknown. */
export interface HealthChangePayload {
  readonly systemId: string;
  readonly environmentId?: string;
  readonly previousStatus?: HealthStatus;
  readonly newStatus?: HealthStatus;
  readonly healthyChecks: number;
  readonly totalChecks: number;
  readonly timestamp: string;
}

/**
 * The trigger payload of a change (SPEC §7): `systemId` and, for a (system, environment) change
 * only, `environmentId` (the key is absent for a rollup); statuses of `prev` and `next`; counts of
 * `next` (0 when the entity was removed); `timestamp` = `occurredAt`.
 *
 * @throws ValidationError when `change.id` is not a canonical entity id.
 */
export function healthChangeToPayload(change: HealthChange): HealthChangePayload {
  const { systemId, environmentId } = classifyHealthChange(change);
  return {
    systemId,
    ...(environmentId === null ? {} : { environmentId }),
    ...(change.prev === null ? {} : { previousStatus: change.prev.status }),
    ...(change.next === null ? {} : { newStatus: change.next.status }),
    healthyChecks: change.next?.healthyChecks ?? 0,
    totalChecks: change.next?.totalChecks ?? 0,
    timestamp: change.occurredAt,
  };
}
