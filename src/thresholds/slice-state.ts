import { severityOf, type HealthStatus } from "../status";
import { DEFAULT_THRESHOLDS, MAX_WINDOW_SIZE, type Thresholds } from "./schema";

/**
 * The evaluated state of one slice (system, check, environment or none). Plain data, stored
 * opaquely by adapters.
 */
export interface SliceState {
  /** Evaluated status of the slice. */
  readonly status: HealthStatus;
  /** Length of the current run of healthy results. */
  readonly successStreak: number;
  /** Length of the current run of non-healthy results. */
  readonly failureStreak: number;
  /** Whether the current failure streak holds at least one unhealthy result. */
  readonly streakHasUnhealthy: boolean;
  /**
   * The newest results, oldest first, at most `MAX_WINDOW_SIZE`, one letter each (`h`, `d`, `u`).
   * Window mode reads it; a thresholds change re-evaluates from it.
   */
  readonly recent: string;
}

/** A slice with no runs: healthy, nothing remembered. */
export const INITIAL_SLICE_STATE: SliceState = Object.freeze({
  status: "healthy",
  successStreak: 0,
  failureStreak: 0,
  streakHasUnhealthy: false,
  recent: "",
});

const LETTER: Readonly<Record<HealthStatus, string>> = { healthy: "h", degraded: "d", unhealthy: "u" };

/**
 * Feeds one run's status to a slice (SPEC §5). Pure: the same state, status and thresholds always
 * give the same next state.
 */
export function stepSlice(state: SliceState, status: HealthStatus, thresholds: Thresholds = DEFAULT_THRESHOLDS): SliceState {
  const recent = (state.recent + LETTER[status]).slice(-MAX_WINDOW_SIZE);
  const failing = status !== "healthy";
  const successStreak = failing ? 0 : state.successStreak + 1;
  const failureStreak = failing ? state.failureStreak + 1 : 0;
  const streakHasUnhealthy = failing && (state.streakHasUnhealthy || status === "unhealthy");
  // Built field by field, not with a spread: this runs for every recorded run.
  const stateWith = (status: HealthStatus): SliceState => ({ status, successStreak, failureStreak, streakHasUnhealthy, recent });

  if (thresholds.mode === "window") {
    const window = recent.slice(-thresholds.windowSize);
    let failures = 0;
    for (const letter of window) if (letter !== "h") failures += 1;
    const anyUnhealthy = window.includes("u");
    const next: HealthStatus =
      failures >= thresholds.unhealthy.minFailureCount && anyUnhealthy
        ? "unhealthy"
        : failures >= thresholds.degraded.minFailureCount
          ? "degraded"
          : "healthy";
    return stateWith(next);
  }

  if (!failing) {
    const recovered = successStreak >= thresholds.healthy.minSuccessCount;
    return stateWith(recovered ? "healthy" : state.status);
  }
  const target: HealthStatus | undefined =
    failureStreak >= thresholds.unhealthy.minFailureCount && streakHasUnhealthy
      ? "unhealthy"
      : failureStreak >= thresholds.degraded.minFailureCount
        ? "degraded"
        : undefined;
  // A failure streak escalates; it never de-escalates.
  const escalates = target !== undefined && severityOf(target) > severityOf(state.status);
  return stateWith(escalates ? target : state.status);
}

/**
 * The status a fresh slice reaches after `statuses` (oldest first) under `thresholds`.
 * @default thresholds `DEFAULT_THRESHOLDS`
 */
export function evaluateRuns(statuses: Iterable<HealthStatus>, thresholds: Thresholds = DEFAULT_THRESHOLDS): HealthStatus {
  let state = INITIAL_SLICE_STATE;
  for (const status of statuses) state = stepSlice(state, status, thresholds);
  return state.status;
}

const STATUS_OF: Readonly<Record<string, HealthStatus>> = { h: "healthy", d: "degraded", u: "unhealthy" };

/**
 * Re-evaluates a slice after its thresholds changed: its remembered runs (the newest
 * `MAX_WINDOW_SIZE`) are fed to a fresh slice under the new thresholds.
 */
export function reevaluateSlice(state: SliceState, thresholds: Thresholds): SliceState {
  let next = INITIAL_SLICE_STATE;
  for (const letter of state.recent) next = stepSlice(next, STATUS_OF[letter] as HealthStatus, thresholds);
  return next;
}
