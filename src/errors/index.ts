export {
  ClosedError,
  ConflictError,
  HEALTH_ERROR_CODES,
  NotFoundError,
  StoreError,
  ValidationError,
  validationError,
  type ConfigurationIssue,
  type HealthError,
} from "./errors";
