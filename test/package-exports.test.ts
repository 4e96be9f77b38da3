import { describe, expect, it } from "vitest";

// Every public subpath must resolve (through the tsconfig `paths` / vitest aliases) to a module.
// This guards the alias tables and the entry files the build bundles.
const entries = {
  healthstate: () => import("healthstate"),
  "healthstate/adapters/memory": () => import("healthstate/adapters/memory"),
  "healthstate/adapters/postgres": () => import("healthstate/adapters/postgres"),
  "healthstate/testing": () => import("healthstate/testing"),
} as const;

describe("package entry points", () => {
  for (const [specifier, load] of Object.entries(entries)) {
    it(`${specifier} imports as a module namespace`, async () => {
      const namespace: unknown = await load();
      expect(typeof namespace).toBe("object");
      expect(namespace).not.toBeNull();
      expect(Object.prototype.toString.call(namespace)).toBe("[object Module]");
    });
  }
});
