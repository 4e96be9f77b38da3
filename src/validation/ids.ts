import { z } from "zod";

/** Longest accepted id, in Unicode code points. */
export const MAX_ID_LENGTH = 256;

// C0 controls, DEL and C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/u;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether `value` is well-formed UTF-16 (no lone surrogates), so any database can store it. */
export function isWellFormedText(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

/**
 * An id of a system, environment, check, run or subscriber group: non-empty, at most 256 code
 * points, no control characters, well-formed Unicode (no lone surrogates, which no database can
 * store as text). Any other character, `:` and `%` included, is allowed.
 */
export const idSchema = z.string().superRefine((value, ctx) => {
  if (value.length === 0) {
    ctx.addIssue({ code: "custom", message: "must not be empty" });
    return;
  }
  if (!isWellFormedText(value)) {
    ctx.addIssue({ code: "custom", message: "must be well-formed Unicode (no lone surrogates)" });
    return;
  }
  const length = [...value].length;
  if (length > MAX_ID_LENGTH) {
    ctx.addIssue({ code: "custom", message: `must be at most ${MAX_ID_LENGTH} characters (got ${length})` });
  }
  if (CONTROL_CHARACTERS.test(value)) {
    ctx.addIssue({ code: "custom", message: "must not contain control characters" });
  }
});
