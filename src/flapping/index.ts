export { FLAP_HISTORY_LENGTH, percentStateChange, percentStateChangeOfLetters } from "./percent-state-change";
export { muteFlapping } from "./mute-flapping";
export {
  DEFAULT_FLAPPING,
  flappingOverrideIssues,
  isEmptyFlappingOverride,
  resolveAssignmentFlapping,
  resolveEntityFlapping,
  topologyFlappingIssues,
  type FlappingConfig,
  type FlappingOverride,
} from "./settings";
