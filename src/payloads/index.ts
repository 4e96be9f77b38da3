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
