export {
  createHealthEngine,
  type HealthEngine,
  type HealthSubscription,
  type RecordOutcome,
  type TopologyOutcome,
} from "./engine";
export { backoffDelay, type DeliveryOptions, type HealthEngineOptions } from "./options";
export type { HealthEventHandler } from "./subscription";
