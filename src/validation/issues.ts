import { err, ok, type Result } from "neverthrow";
import type { z } from "zod";
import { ValidationError, isHealthError, type ConfigurationIssue } from "../errors";

/** Whether `value` is an object (not `null`), whose properties can be read. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

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

/**
 * Runs `read` over the caller's input: a throw while reading it (a getter, a Proxy trap, a
 * `Date` whose `getTime` throws) is a `ValidationError` at `path`, not a failure of ours.
 */
export function readInput<T>(read: () => T, path: readonly (string | number)[] = []): T {
  try {
    return read();
  } catch (error) {
    if (isHealthError(error)) throw error;
    throw new ValidationError([{ path: [...path], message: `could not be read: ${error instanceof Error ? error.message : String(error)}` }]);
  }
}

/**
 * Parses `input` with `schema`, returning every problem at once as a `ValidationError`. Input that
 * throws while it is read is a `ValidationError` at `prefix` too (`readInput`), never a throw.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  prefix: readonly (string | number)[] = [],
): Result<z.output<S>, ValidationError> {
  let parsed: z.ZodSafeParseResult<z.output<S>>;
  try {
    parsed = readInput(() => schema.safeParse(input), prefix);
  } catch (error) {
    return err(error as ValidationError);
  }
  if (parsed.success) return ok(parsed.data);
  return err(new ValidationError(toConfigurationIssues(parsed.error.issues, prefix)));
}
