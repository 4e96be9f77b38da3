export { FLAP_HISTORY_LENGTH, percentStateChange } from "./percent-state-change";
