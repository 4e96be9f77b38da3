import type { z } from "zod";
import { parseIsoTimestamp } from "../time";
import { MAX_ID_LENGTH, isWellFormedText } from "./ids";
import { MAX_MESSAGE_LENGTH, runInputSchema, type ValidRun } from "./inputs";

/**
 * `runInputSchema.safeParse(input)`, with a hand-written fast path for the common shape: a plain
 * object with known keys and values that plainly pass. The fast path accepts only inputs the
 * schema accepts and returns what the schema returns (keys in schema order, an optional key kept
 * when it is present, even as `undefined`); anything it is not sure of (other objects, a long id,
 * a control character or surrogate in an id, an invalid value) goes to zod, which then decides
 * and reports the issues. A property test holds the two equal.
 */
export function safeParseRunInput(input: unknown): z.ZodSafeParseResult<ValidRun> {
  const data = fastRunInput(input);
  return data === undefined ? runInputSchema.safeParse(input) : { success: true, data };
}

const KNOWN_KEYS: ReadonlySet<string> = new Set(["runId", "systemId", "checkId", "environmentId", "status", "latencyMs", "timestamp", "message"]);

function fastRunInput(input: unknown): ValidRun | undefined {
  if (typeof input !== "object" || input === null || Object.getPrototypeOf(input) !== Object.prototype) return undefined;
  // The schema is strict over every enumerable key, inherited ones included (as `for…in` sees them).
  for (const key in input) if (!KNOWN_KEYS.has(key)) return undefined;
  const run = input as Record<string, unknown>;
  const { runId, systemId, checkId, environmentId, status, latencyMs, timestamp, message } = run;
  if (!isPlainId(systemId) || !isPlainId(checkId)) return undefined;
  if (status !== "healthy" && status !== "degraded" && status !== "unhealthy") return undefined;
  if (runId !== undefined && !isPlainId(runId)) return undefined;
  if (environmentId !== undefined && environmentId !== null && !isPlainId(environmentId)) return undefined;
  if (latencyMs !== undefined && (typeof latencyMs !== "number" || !Number.isFinite(latencyMs) || latencyMs < 0)) return undefined;
  let time: Date | undefined;
  if (timestamp !== undefined) {
    if (typeof timestamp === "string") time = parseIsoTimestamp(timestamp);
    else if (timestamp instanceof Date && !Number.isNaN(timestamp.getTime())) time = timestamp;
    if (time === undefined) return undefined;
  }
  if (
    message !== undefined &&
    (typeof message !== "string" || message.length > MAX_MESSAGE_LENGTH || message.includes("\u0000") || !isWellFormedText(message))
  ) {
    return undefined;
  }
  // Keys in the schema's order; an optional key is in the result when it is in the input.
  const valid: Record<string, unknown> = {};
  if ("runId" in run) valid.runId = runId;
  valid.systemId = systemId;
  valid.checkId = checkId;
  if ("environmentId" in run) valid.environmentId = environmentId;
  valid.status = status;
  if ("latencyMs" in run) valid.latencyMs = latencyMs;
  if ("timestamp" in run) valid.timestamp = time;
  if ("message" in run) valid.message = message;
  return valid as ValidRun;
}

/**
 * Whether `value` is an id `idSchema` accepts, checked the cheap way: 1 to 256 UTF-16 code units,
 * none of them a control character or a surrogate. Ids with surrogate pairs (valid, but rare) or
 * longer than 256 code units (maybe valid: the limit is in code points) are left to zod.
 */
function isPlainId(value: unknown): value is string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_ID_LENGTH) return false;
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || (code >= 0xd800 && code <= 0xdfff)) return false;
  }
  return true;
}
