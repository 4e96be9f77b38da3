import { err, ok, type Result } from "neverthrow";
import type { z } from "zod";
import { ValidationError, type ConfigurationIssue } from "../errors";

/** Converts zod issues into `ConfigurationIssue`s, prefixing each path with `prefix`. */
export function toConfigurationIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly (string | number)[] = [],
): ConfigurationIssue[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path.map((key) => (typeof key === "number" ? key : String(key)))];
    // One issue per unknown key, at the key itself, so a typo is pointed at where it is.
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ path: [...path, key], message: `unknown key ${JSON.stringify(key)}` }));
    }
    return [{ path, message: issue.message }];
  });
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
