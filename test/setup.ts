import fc from "fast-check";

// Property tests are reproducible in CI (fixed seed, overridable with FC_SEED) and explore new
// inputs locally (random seed). fast-check puts the seed and the counterexample path in its
// failure message, so any failure can be replayed with `{ seed, path }`.
const DEFAULT_CI_SEED = 20261130;

function ciSeed(): number {
  const raw = process.env.FC_SEED;
  if (raw === undefined || raw.trim() === "") return DEFAULT_CI_SEED;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed)) {
    throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(raw)}`);
  }
  return seed;
}

const isCI = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false";

fc.configureGlobal({
  ...(isCI ? { seed: ciSeed() } : {}),
  verbose: fc.VerbosityLevel.Verbose,
});
