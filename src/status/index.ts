export { HEALTH_STATUSES, compareSeverity, isHealthStatus, severityOf, worstStatus, type HealthStatus } from "./status";
