export type { EntityRecord, HealthTransitionRecord, SliceKey, SliceRecord, StoredRun } from "./records";
export { SystemWorkspace, runRejection, type EvaluationCause, type SystemSnapshot, type SystemState, type WorkspaceChanges } from "./system-workspace";
export { DEFAULT_FLAPPING, type FlappingConfig } from "../flapping";
export { applySystemSpec, assignmentFromSpec, type CheckSpec, type SystemSpec } from "./topology-ops";
export { coversEntity, hasDueBoundary, statusBefore, withinWindow, type MaintenanceRecord } from "./maintenance";
