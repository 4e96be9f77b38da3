/** The three health statuses, in increasing severity. */
export const HEALTH_STATUSES = ["healthy", "degraded", "unhealthy"] as const;

/** `healthy < degraded < unhealthy`. */
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

const SEVERITY: Readonly<Record<HealthStatus, number>> = { healthy: 0, degraded: 1, unhealthy: 2 };

/** Severity rank: 0 healthy, 1 degraded, 2 unhealthy. Never derived from a database enum order. */
export function severityOf(status: HealthStatus): number {
  return SEVERITY[status];
}

/**
 * Compares two statuses by severity: negative when `a` is less severe than `b`, 0 when equal,
 * positive when more severe. Usable directly as an `Array.prototype.sort` comparator.
 */
export function compareSeverity(a: HealthStatus, b: HealthStatus): number {
  return SEVERITY[a] - SEVERITY[b];
}

/** The most severe of `statuses`; `"healthy"` for an empty list. Order-independent. */
export function worstStatus(statuses: Iterable<HealthStatus>): HealthStatus {
  let worst: HealthStatus = "healthy";
  for (const status of statuses) {
    if (SEVERITY[status] > SEVERITY[worst]) worst = status;
  }
  return worst;
}

/** Type guard for a `HealthStatus` value. */
export function isHealthStatus(value: unknown): value is HealthStatus {
  return value === "healthy" || value === "degraded" || value === "unhealthy";
}
