import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Same mapping as `paths` in tsconfig.json. Subpaths come before the bare name, and every
    // pattern is anchored, so `healthstate/testing` can never resolve to `src/index.ts/testing`.
    alias: [
      { find: /^healthstate\/adapters\/memory$/, replacement: here("./adapters/memory/index.ts") },
      { find: /^healthstate\/adapters\/postgres$/, replacement: here("./adapters/postgres/index.ts") },
      { find: /^healthstate\/testing$/, replacement: here("./src/testing/index.ts") },
      { find: /^healthstate$/, replacement: here("./src/index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default", ["json", { outputFile: ".vitest-report.json" }]],
    coverage: {
      provider: "v8",
      // The pure core only: everything here is decided by plain functions over plain data, so
      // every branch is reachable from property and unit tests. Engine and adapters are covered
      // by behaviour and conformance tests instead of a line count.
      include: [
        "src/ids/**",
        "src/status/**",
        "src/environments/**",
        "src/thresholds/**",
        "src/aggregate/**",
        "src/transitions/**",
        "src/payloads/**",
        "src/errors/**",
        "src/validation/**",
        "src/flapping/**",
        "src/history/**",
        "src/events/**",
      ],
      reporter: ["text", "html"],
      thresholds: {
        lines: 100,
        branches: 100,
        functions: 100,
        statements: 100,
      },
    },
  },
});
