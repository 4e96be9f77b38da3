export {
  classifyHealthChange,
  classifyTransition,
  type HealthChange,
  type HealthChangeClassification,
  type TransitionClassification,
} from "./classify";
export { HEALTH_TRIGGER_EVENTS, deriveHealthTriggerEvents, type HealthTriggerEvent } from "./triggers";
