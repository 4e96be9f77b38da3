import { err, ok, type Result } from "neverthrow";
import type { z } from "zod";
import { ValidationError, type ConfigurationIssue } from "../errors";

/** Converts zod issues into `ConfigurationIssue`s, prefixing each path with `prefix`. */
export function toConfigurationIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly (string | number)[] = [],
): ConfigurationIssue[] {
  return issues.map((issue) => ({
    path: [...prefix, ...issue.path.map((key) => (typeof key === "number" ? key : String(key)))],
    message: issue.message,
  }));
}

/** Parses `input` with `schema`, returning every problem at once as a `ValidationError`. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  prefix: readonly (string | number)[] = [],
): Result<z.output<S>, ValidationError> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return ok(parsed.data);
  return err(new ValidationError(toConfigurationIssues(parsed.error.issues, prefix)));
}
