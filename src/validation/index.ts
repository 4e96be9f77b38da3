export { MAX_ID_LENGTH, idSchema } from "./ids";
export {
  MAX_MESSAGE_LENGTH,
  applyTopologyOptionsSchema,
  assignCheckSchema,
  retentionSchema,
  runInputSchema,
  subscribeOptionsSchema,
  timeRangeSchema,
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
  type ValidRun,
  type ValidTopologyDoc,
} from "./inputs";
export { parseWith, toConfigurationIssues } from "./issues";
