import type { ConformanceConfig, HarnessPool } from "../harness";

/** What every suite of the kit receives: the adapter's configuration and the per-test harness pool. */
export interface SuiteContext {
  readonly config: ConformanceConfig;
  readonly harnesses: HarnessPool;
}
