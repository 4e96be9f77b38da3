export {
  DEFAULT_THRESHOLDS,
  DEFAULT_WINDOW_THRESHOLDS,
  MAX_WINDOW_SIZE,
  sameThresholds,
  thresholdsSchema,
  validateThresholds,
  type ConsecutiveThresholds,
  type Thresholds,
  type ThresholdsInput,
  type WindowThresholds,
} from "./schema";
export { INITIAL_SLICE_STATE, evaluateRuns, reevaluateSlice, stepSlice, type SliceState } from "./slice-state";
