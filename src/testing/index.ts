// Entry of healthstate/testing: the adapter conformance suite (vitest and fast-check are peers).
export { describeAdapterConformance } from "./conformance";
export type { AdapterConformanceOptions } from "./harness";
