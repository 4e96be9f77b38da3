// Public entry of healthstate: the pure core, the ports and the engine.

export {
  ClosedError,
  ConflictError,
  HEALTH_ERROR_CODES,
  NotFoundError,
  StoreError,
  ValidationError,
  type ConfigurationIssue,
  type HealthError,
} from "./errors";
export { HEALTH_STATUSES, compareSeverity, isHealthStatus, severityOf, worstStatus, type HealthStatus } from "./status";
export { encodeHealthEntityId, parseHealthEntityId, type HealthEntityRef } from "./ids";
export { resolveEffectiveEnvironments } from "./environments";
export {
  DEFAULT_THRESHOLDS,
  DEFAULT_WINDOW_THRESHOLDS,
  INITIAL_SLICE_STATE,
  MAX_WINDOW_SIZE,
  evaluateRuns,
  reevaluateSlice,
  stepSlice,
  thresholdsSchema,
  validateThresholds,
  type ConsecutiveThresholds,
  type SliceState,
  type Thresholds,
  type ThresholdsInput,
  type WindowThresholds,
} from "./thresholds";
export {
  aggregateSystem,
  effectiveSlices,
  isCounted,
  type AssignmentRecord,
  type EntityView,
  type HealthEntityState,
  type SliceStatusLookup,
  type SystemRecord,
} from "./aggregate";
export {
  HEALTH_TRIGGER_EVENTS,
  classifyHealthChange,
  classifyTransition,
  deriveHealthTriggerEvents,
  type HealthChange,
  type HealthChangeClassification,
  type HealthTriggerEvent,
  type TransitionClassification,
} from "./transitions";
export {
  healthChangeToPayload,
  systemDegradedPayloadSchema,
  systemHealthChangedPayloadSchema,
  systemHealthyPayloadSchema,
  type HealthChangePayload,
  type SystemDegradedPayload,
  type SystemHealthChangedPayload,
  type SystemHealthyPayload,
} from "./payloads";
export {
  eventIdOf,
  flappingStartedEventSchema,
  flappingStoppedEventSchema,
  healthEventSchema,
  healthTransitionEventSchema,
  maintenanceEndedEventSchema,
  maintenanceStartedEventSchema,
  type FlappingStartedEvent,
  type FlappingStoppedEvent,
  type HealthEvent,
  type HealthEventType,
  type HealthTransitionEvent,
  type MaintenanceEndedEvent,
  type MaintenanceStartedEvent,
} from "./events";
export {
  DEFAULT_FLAPPING,
  FLAP_HISTORY_LENGTH,
  flappingOverrideIssues,
  muteFlapping,
  percentStateChange,
  resolveAssignmentFlapping,
  resolveEntityFlapping,
  topologyFlappingIssues,
  type FlappingConfig,
  type FlappingOverride,
} from "./flapping";
export { parseIsoTimestamp, type TimeInput } from "./time";
export {
  MAX_ID_LENGTH,
  MAX_MESSAGE_LENGTH,
  assignCheckSchema,
  flappingOverrideSchema,
  idSchema,
  retentionSchema,
  runInputSchema,
  subscribeOptionsSchema,
  topologyDocSchema,
  unassignCheckSchema,
  upsertSystemSchema,
  type AssignCheckInput,
  type RetentionConfig,
  type RetentionInput,
  type RunInput,
  type SubscribeOptions,
  type TopologyDoc,
  type UnassignCheckInput,
  type UpsertSystemInput,
} from "./validation";
export type { EntityRecord, HealthTransitionRecord, SliceKey, SliceRecord, StoredRun } from "./kernel";
export type {
  AdapterCapabilities,
  ClaimedEvent,
  DeadLetter,
  HealthAdapter,
  HealthEmitter,
  HealthLock,
  HealthStore,
  StoreTransaction,
  TransitionQuery,
} from "./ports";
export {
  backoffDelay,
  createHealthEngine,
  type DeliveryOptions,
  type HealthEngine,
  type HealthEngineOptions,
  type HealthEventHandler,
  type HealthSubscription,
  type MaintenanceWindow,
  type RecordOutcome,
  type RetentionOutcome,
  type TimeRangeQuery,
  type TopologyOutcome,
} from "./engine";
export { replay, type ReplayInput, type ReplayRejection, type ReplayResult } from "./replay";
export {
  EMPTY_SKETCH,
  SKETCH_RELATIVE_ACCURACY,
  addRuns,
  addToSketch,
  bucketStart,
  emptyBucket,
  mergeBuckets,
  mergeSketches,
  sketchCount,
  sketchQuantile,
  sparseBins,
  successRate,
  summarizeLatency,
  type BucketGranularity,
  type BucketKey,
  type LatencySketch,
  type LatencySummary,
  type RunBucket,
} from "./buckets";
export { computeAvailability, type Availability, type TimedTransition } from "./history";
export { coversEntity, hasDueBoundary, statusBefore, withinWindow, type MaintenanceRecord } from "./kernel";
export type { BucketQuery } from "./ports";
