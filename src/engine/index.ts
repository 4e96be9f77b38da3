export {
  createHealthEngine,
  type HealthEngine,
  type HealthSubscription,
  type MaintenanceWindow,
  type RecordOutcome,
  type RetentionOutcome,
  type TimeRangeQuery,
  type TopologyOutcome,
} from "./engine";
export { backoffDelay, type DeliveryOptions, type HealthEngineOptions } from "./options";
export type { HealthEventHandler } from "./subscription";
