import { err, ok, type Result } from "neverthrow";
import { ValidationError } from "../errors";
import { idSchema } from "../validation/ids";

/** What health is reported for: a system's rollup (`environmentId: null`) or one (system, environment) view. */
export interface HealthEntityRef {
  readonly systemId: string;
  readonly environmentId: string | null;
}

const SEPARATOR = "::";

/** Percent-encodes exactly `%` and `:`; every other character is kept as is. */
function escapePart(part: string): string {
  // Most ids hold neither character: returned as they are, without two scans that copy.
  if (!part.includes("%") && !part.includes(":")) return part;
  return part.replaceAll("%", "%25").replaceAll(":", "%3A");
}

function unescapePart(part: string): string {
  return part.replace(/%(?:25|3A)/gu, (escape) => (escape === "%25" ? "%" : ":"));
}

/**
 * Encodes an entity reference as its canonical id: `esc(systemId)` for the rollup (environment
 * null or undefined), `esc(systemId)::esc(environmentId)` otherwise, where `esc` percent-encodes
 * `%` and `:` only. Ids without those characters read exactly as in the reference system
 * (`sys-1`, `sys-1::prod`).
 *
 * @returns a `ValidationError` when an id is empty, longer than 256 characters or holds control
 * characters.
 */
export function encodeHealthEntityId(ref: {
  readonly systemId: string;
  readonly environmentId?: string | null | undefined;
}): Result<string, ValidationError> {
  const issues = [
    ...checkPart(ref.systemId, ["systemId"]),
    ...(ref.environmentId == null ? [] : checkPart(ref.environmentId, ["environmentId"])),
  ];
  if (issues.length > 0) return err(new ValidationError(issues));
  return ok(unsafeEncodeEntityId(ref.systemId, ref.environmentId ?? null));
}

/**
 * Encodes ids already known to be valid. For internal use on validated data: no checks.
 * @internal
 */
export function unsafeEncodeEntityId(systemId: string, environmentId: string | null): string {
  return environmentId === null ? escapePart(systemId) : `${escapePart(systemId)}${SEPARATOR}${escapePart(environmentId)}`;
}

/**
 * Parses a canonical entity id back into its reference. Accepts exactly the ids that
 * `encodeHealthEntityId` produces: zero or one `::`, no other `:`, only `%25` and `%3A` escapes,
 * non-empty parts that are themselves valid ids.
 *
 * @returns a `ValidationError` naming the id and the reason otherwise.
 */
export function parseHealthEntityId(id: string): Result<HealthEntityRef, ValidationError> {
  if (typeof id !== "string") return err(invalid(id, "an entity id must be a string"));
  const parts = id.split(SEPARATOR);
  if (parts.length > 2) return err(invalid(id, `more than one "${SEPARATOR}" separator`));
  const [systemPart = "", environmentPart] = parts;
  const names = ["system", "environment"] as const;
  const decoded: string[] = [];
  for (const [index, part] of [systemPart, environmentPart].entries()) {
    if (part === undefined) continue;
    const name = names[index] as string;
    if (part.length === 0) return err(invalid(id, `empty ${name} part`));
    if (part.includes(":")) return err(invalid(id, `unescaped ":" in the ${name} part`));
    const badEscape = /%(?!25|3A)/u.exec(part);
    if (badEscape !== null) {
      return err(invalid(id, `invalid escape in the ${name} part (only %25 and %3A are allowed)`));
    }
    const value = unescapePart(part);
    const problems = checkPart(value, [`${name}Id`]);
    if (problems.length > 0) {
      return err(invalid(id, `${name} id ${problems.map((problem) => problem.message).join(", ")}`));
    }
    decoded.push(value);
  }
  return ok({ systemId: decoded[0] as string, environmentId: decoded[1] ?? null });
}

function checkPart(value: unknown, path: string[]) {
  const parsed = idSchema.safeParse(value);
  return parsed.success ? [] : parsed.error.issues.map((issue) => ({ path, message: issue.message }));
}

function invalid(id: unknown, reason: string): ValidationError {
  const shown = typeof id === "string" ? JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id) : String(id);
  return new ValidationError([{ path: ["entityId"], message: `invalid entity id ${shown}: ${reason}` }]);
}
