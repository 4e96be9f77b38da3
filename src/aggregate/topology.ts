import type { FlappingOverride } from "../flapping";
import type { Thresholds } from "../thresholds";

/** A system and its ordered environment membership. */
export interface SystemRecord {
  readonly systemId: string;
  /** Ordered, without duplicates. */
  readonly environmentIds: readonly string[];
}

/** A check assigned to a system, with its thresholds and environment selector (SPEC §4). */
export interface AssignmentRecord {
  readonly systemId: string;
  readonly checkId: string;
  readonly thresholds: Thresholds;
  /** `null`: every environment of the membership; `[]`: none (env-less); a list: those of the membership. */
  readonly environmentIds: readonly string[] | null;
  readonly enabled: boolean;
  readonly paused: boolean;
  /**
   * Override of the engine's flap settings for the entities this assignment contributes to
   * (SPEC §10); absent: none, the engine's settings apply. Never an empty object.
   */
  readonly flapping?: FlappingOverride;
}

/** Whether an assignment counts towards aggregation: enabled and not paused. */
export function isCounted(assignment: AssignmentRecord): boolean {
  return assignment.enabled && !assignment.paused;
}
