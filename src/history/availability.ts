import type { HealthStatus } from "../status";

/** Availability of an entity over a window (SPEC §9, §15). */
export interface Availability {
  /** Headline figure: the healthy share. Degraded counts as unavailable. */
  readonly availability: number;
  /** Shares of the window `[from, min(to, now))` spent in each status; they sum to 1. */
  readonly healthy: number;
  readonly degraded: number;
  readonly unhealthy: number;
  /** Entries from healthy into a non-healthy status inside the window. */
  readonly incidents: number;
  /** Mean duration of the incidents that ended inside the window, in ms; `null` if none. */
  readonly mttrMs: number | null;
  /** Mean healthy time between consecutive incidents inside the window, in ms; `null` if fewer than two. */
  readonly mtbfMs: number | null;
  /** Healthy runs / runs in the window, from buckets; `null` when there were no runs. */
  readonly successRate: number | null;
}

/** A transition as availability reads it: in sequence order, with its time. */
export interface TimedTransition {
  readonly previousStatus: HealthStatus;
  readonly newStatus: HealthStatus;
  readonly occurredAt: string;
}

/**
 * Computes availability from an entity's transition log in sequence order: all of it, or at
 * least up to and including the first transition at or after the window's end (a filter on
 * `occurredAt < end` is not enough when runs arrived out of order: a later transition with an
 * earlier time takes effect after that one). The log is walked in sequence order; a transition
 * whose `occurredAt` is earlier than its predecessor's (runs that arrived out of timestamp
 * order) takes effect at its predecessor's time, so time never runs backwards. The status at
 * `from` is that of the last
 * transition in effect at or before `from`, else the healthy baseline. An incident starts when
 * the entity leaves healthy and ends when it returns to healthy.
 *
 * The log may also be a contiguous part of it that ends the same way and starts at a healthy
 * entity (a transition out of healthy), or anywhere before `from` when the entity is healthy at
 * `from`: then `notBefore` is the latest `occurredAt` of the transitions left out before it (the
 * time from which the first one given can take effect), so the walk gives what it gives over the
 * whole log.
 *
 * Returns `undefined` when the window `[from, min(to, now))` is empty (it lies in the future).
 */
export function computeAvailability(input: {
  readonly transitions: readonly TimedTransition[];
  readonly from: Date;
  readonly to: Date;
  readonly now: Date;
  readonly successRate: number | null;
  /** The latest `occurredAt` of the log's transitions before the first one given (none by default). */
  readonly notBefore?: Date;
}): Availability | undefined {
  const start = input.from.getTime();
  const end = Math.min(input.to.getTime(), input.now.getTime());
  if (end <= start) return undefined;

  const spent: Record<HealthStatus, number> = { healthy: 0, degraded: 0, unhealthy: 0 };
  let status: HealthStatus = "healthy";
  let cursor = input.notBefore?.getTime() ?? Number.NEGATIVE_INFINITY;
  let incidentStart: number | undefined;
  let lastRecovery: number | undefined;
  let incidents = 0;
  const repairs: number[] = [];
  const healthyGaps: number[] = [];

  const spend = (until: number) => {
    const lower = Math.max(cursor, start);
    const upper = Math.min(until, end);
    if (upper > lower) spent[status] += upper - lower;
  };

  for (const transition of input.transitions) {
    const at = Math.max(Date.parse(transition.occurredAt), cursor);
    if (at >= end) break;
    spend(at);
    const inside = at >= start;
    if (transition.previousStatus === "healthy" && transition.newStatus !== "healthy") {
      incidentStart = at;
      if (inside) {
        incidents += 1;
        if (lastRecovery !== undefined && lastRecovery >= start) healthyGaps.push(at - lastRecovery);
      }
    } else if (transition.newStatus === "healthy" && transition.previousStatus !== "healthy") {
      if (inside && incidentStart !== undefined) repairs.push(at - incidentStart);
      incidentStart = undefined;
      lastRecovery = at;
    }
    status = transition.newStatus;
    cursor = at;
  }
  spend(end);

  const total = end - start;
  const healthy = spent.healthy / total;
  return {
    availability: healthy,
    healthy,
    degraded: spent.degraded / total,
    unhealthy: spent.unhealthy / total,
    incidents,
    mttrMs: mean(repairs),
    mtbfMs: incidents >= 2 ? mean(healthyGaps) : null,
    successRate: input.successRate,
  };
}

function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}
