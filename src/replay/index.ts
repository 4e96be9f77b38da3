export { replay, type ReplayInput, type ReplayRejection, type ReplayResult } from "./replay";
