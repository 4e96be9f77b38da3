export { FLAP_HISTORY_LENGTH, percentStateChange, percentStateChangeOfLetters } from "./percent-state-change";
export { muteFlapping } from "./mute-flapping";
