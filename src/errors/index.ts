export {
  ClosedError,
  ConflictError,
  HEALTH_ERROR_CODES,
  NotFoundError,
  StoreError,
  ValidationError,
  isHealthError,
  validationError,
  type ConfigurationIssue,
  type HealthError,
} from "./errors";
