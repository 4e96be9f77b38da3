import { describeAdapterConformance } from "healthstate/testing";
import { createMemoryAdapter } from "healthstate/adapters/memory";

// Our own in-memory adapter, certified through the published entry, as a third party would.
describeAdapterConformance({
  name: "memory",
  create: () => createMemoryAdapter(),
  capabilities: { durable: false, crossProcess: false },
});
