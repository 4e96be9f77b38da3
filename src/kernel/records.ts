import type { HealthEntityState } from "../aggregate";
import type { HealthStatus } from "../status";
import type { SliceState } from "../thresholds";

/** The evaluated state of one slice, as stored. */
export interface SliceRecord {
  readonly systemId: string;
  readonly checkId: string;
  /** `null` for the env-less slice. */
  readonly environmentId: string | null;
  readonly state: SliceState;
}

/** Identifies a slice. */
export type SliceKey = Pick<SliceRecord, "systemId" | "checkId" | "environmentId">;

/**
 * An entity as stored: its state, and the sequence of its newest event. A removed entity keeps
 * its record with `state: null`, so its sequence never restarts (event ids stay unique).
 */
export interface EntityRecord {
  readonly entityId: string;
  readonly systemId: string;
  /** `null` for the rollup. */
  readonly environmentId: string | null;
  /** `null` while the entity does not exist (no counted assignment applies to it). */
  readonly state: HealthEntityState | null;
  /** Sequence of the entity's newest event; 0 before the first. */
  readonly sequence: number;
  /**
   * The entity's newest evaluated statuses (at most 21), oldest first, one letter each (`h`, `d`,
   * `u`); flap detection reads it. Absent or empty before the first evaluation.
   */
  readonly history?: string;
  /** While the entity is flapping: its status when flapping started; otherwise `null` or absent. */
  readonly flappingFrom?: HealthStatus | null;
}

/** An accepted run, as stored. */
export interface StoredRun {
  readonly runId: string;
  readonly systemId: string;
  readonly checkId: string;
  readonly environmentId: string | null;
  readonly status: HealthStatus;
  readonly latencyMs: number | null;
  /** ISO 8601 UTC: the run's own timestamp, or the engine clock's now when it had none. */
  readonly timestamp: string;
  readonly message: string | null;
  /** ISO 8601 UTC time the engine accepted it. */
  readonly recordedAt: string;
}

/** One entry of an entity's transition log (SPEC §9). */
export interface HealthTransitionRecord {
  readonly entityId: string;
  readonly systemId: string;
  readonly environmentId: string | null;
  readonly sequence: number;
  readonly previousStatus: HealthStatus;
  readonly newStatus: HealthStatus;
  /** ISO 8601 UTC. */
  readonly occurredAt: string;
  readonly runId?: string;
  readonly checkId?: string;
}
