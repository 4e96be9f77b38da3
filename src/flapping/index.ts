export { FLAP_HISTORY_LENGTH, percentStateChange } from "./percent-state-change";
export { muteFlapping } from "./mute-flapping";
