export type { EntityRecord, HealthTransitionRecord, SliceKey, SliceRecord, StoredRun } from "./records";
export {
  DEFAULT_FLAPPING,
  SystemWorkspace,
  runRejection,
  type EvaluationCause,
  type FlappingConfig,
  type WorkspaceChanges,
} from "./system-workspace";
export { applySystemSpec, assignmentFromSpec, type CheckSpec, type SystemSpec } from "./topology-ops";
export { coversEntity, hasDueBoundary, statusBefore, withinWindow, type MaintenanceRecord } from "./maintenance";
