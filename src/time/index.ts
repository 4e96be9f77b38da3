export { parseIsoTimestamp, timeSchema, toIso, type TimeInput } from "./time";
