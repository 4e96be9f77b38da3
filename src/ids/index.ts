export { encodeHealthEntityId, parseHealthEntityId, unsafeEncodeEntityId, type HealthEntityRef } from "./entity-id";
