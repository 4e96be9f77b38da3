import { z } from "zod";

/** A point in time as accepted by every public operation: an ISO 8601 string or a `Date`. */
export type TimeInput = string | Date;

// ISO 8601 calendar date, optionally with a time, which then needs an offset: a date-time without
// one would be read in the host's time zone, and bucketing is UTC everywhere. A bare date is
// midnight UTC.
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/u;

/**
 * Parses an ISO 8601 timestamp strictly (real calendar dates only, an offset whenever a time is
 * given). Returns `undefined` when the string is not one.
 */
export function parseIsoTimestamp(value: string): Date | undefined {
  const match = ISO_8601.exec(value);
  if (match === null) return undefined;
  const [, year, month, day, hour = "00", minute = "00", second = "00", offset] = match;
  const y = Number(year);
  const m = Number(month);
  const d = Number(day);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0..99 to 1900..1999.
  const calendar = new Date(0);
  calendar.setUTCFullYear(y, m - 1, d);
  const realDay = calendar.getUTCFullYear() === y && calendar.getUTCMonth() === m - 1 && calendar.getUTCDate() === d;
  if (!realDay || Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return undefined;
  const date = new Date(offset === undefined ? `${value}T00:00:00Z` : value.replace(" ", "T"));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Zod schema turning a `TimeInput` into a valid `Date`. Rejects invalid dates, non-ISO strings
 * (such as `"yesterday"` or `"12/01/2026"`), and anything that is neither a string nor a `Date`.
 */
export const timeSchema = z.union([z.string(), z.date()]).transform((value, ctx) => {
  const date = typeof value === "string" ? parseIsoTimestamp(value) : value;
  if (date === undefined || Number.isNaN(date.getTime())) {
    ctx.addIssue({
      code: "custom",
      message:
        typeof value === "string"
          ? `not an ISO 8601 timestamp with offset: ${JSON.stringify(value.slice(0, 64))}`
          : "invalid Date",
    });
    return z.NEVER;
  }
  return date;
});

/** ISO 8601 string, UTC, millisecond precision (`Date#toISOString`). */
export function toIso(date: Date): string {
  return date.toISOString();
}
