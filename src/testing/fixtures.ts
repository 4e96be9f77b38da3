import type { HealthEvent, HealthStatus, RecordOutcome, RunInput, TopologyDoc } from "healthstate";

/** Thresholds under which every run whose status differs from the slice's is a transition. */
export const EVERY_RUN_COUNTS = {
  mode: "consecutive",
  healthy: { minSuccessCount: 1 },
  degraded: { minFailureCount: 1 },
  unhealthy: { minFailureCount: 1 },
} as const;

/**
 * Systems with one check each (`check`, thresholds `EVERY_RUN_COUNTS`). Without environments a
 * system has one entity, its rollup (whose id is the system id); with them, one per environment too.
 */
export function topologyOf(systemIds: readonly string[], environmentIds: readonly string[] = []): TopologyDoc {
  return {
    systems: systemIds.map((systemId) => ({
      systemId,
      environmentIds: [...environmentIds],
      checks: [{ checkId: "check", thresholds: EVERY_RUN_COUNTS }],
    })),
  };
}

const TIME_BASE = Date.parse("2031-06-01T00:00:00.000Z");
let nextSecond = 0;

/**
 * Runs of `check` on `systemId` (env-less, or in `environmentId`), one per status, with explicit
 * run ids (`<prefix>-<index>`) and timestamps that grow across calls.
 */
export function runsOf(
  prefix: string,
  systemId: string,
  statuses: readonly HealthStatus[],
  environmentId: string | null = null,
): RunInput[] {
  return statuses.map((status, index) => {
    nextSecond += 1;
    return {
      runId: `${prefix}-${index}`,
      systemId,
      checkId: "check",
      environmentId,
      status,
      timestamp: new Date(TIME_BASE + nextSecond * 1000).toISOString(),
    };
  });
}

/** Statuses that alternate, starting with a failure: each one is a transition under `EVERY_RUN_COUNTS`. */
export function flips(count: number): HealthStatus[] {
  return Array.from({ length: count }, (_, index) => (index % 2 === 0 ? "unhealthy" : "healthy"));
}

/** Every event of a list of outcomes, in order. */
export function eventsOf(outcomes: readonly RecordOutcome[]): HealthEvent[] {
  return outcomes.flatMap((outcome) => outcome.events);
}

/** Event ids, sorted: for comparing sets of events. */
export function idsOf(events: readonly HealthEvent[]): string[] {
  return [...new Set(events.map((event) => event.eventId))].sort();
}
