import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    "adapters/memory/index": "adapters/memory/index.ts",
    "adapters/postgres/index": "adapters/postgres/index.ts",
    "testing/index": "src/testing/index.ts",
  },
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  target: "node20",
  platform: "node",
  // Adapters and the testing kit import the core as `healthstate`, as a third-party adapter
  // would. Keeping that self-reference external makes every entry share the one copy of the
  // core that `dist/index.js` holds, so classes and symbols exist once at runtime.
  external: [/^healthstate(\/.*)?$/, "pg", "@electric-sql/pglite", "vitest", "fast-check"],
});
