// @ts-check
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  globalIgnores(["dist/", "coverage/", "node_modules/", ".tmp/", "docs/api/"]),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          // This file is plain JS and therefore outside tsconfig.json's `include`.
          allowDefaultProject: ["eslint.config.js"],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
        },
      ],
      // A switch over a status union must name every member, unless it has a deliberate default.
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: true },
      ],
    },
  },
  {
    // examples/tsconfig.json resolves `healthstate` from the installed package, as a user's project
    // would (CI compiles the examples against the packed tarball). Lint them through the root
    // tsconfig.json instead, which maps it to the sources, so linting needs no build.
    files: ["examples/**/*.ts"],
    languageOptions: { parserOptions: { projectService: false, project: ["./tsconfig.json"] } },
  },
  {
    files: ["**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
