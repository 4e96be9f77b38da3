// Parameter encoding and row decoding shared by the store and the emitter. Every value reaches
// the server as a bound parameter (never inside SQL text); lists travel as one array literal or
// one JSON document so that a batch is one statement whatever its size.

/** A Postgres array literal of `values` (for a `$n::text[]` or `$n::bigint[]` parameter). */
export function arrayLiteral(values: readonly (string | bigint | number)[]): string {
  const items = values.map((value) =>
    typeof value === "string" ? `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"` : String(value),
  );
  return `{${items.join(",")}}`;
}

/** One JSON document of rows (for `jsonb_to_recordset($n::jsonb)`). */
export function jsonRows(rows: readonly object[]): string {
  return JSON.stringify(rows);
}

/**
 * Keeps the last of each group of items with the same key, in first-seen order: "create or
 * replace" semantics for a batch that names a row twice (one upsert statement may not touch a
 * row twice).
 */
export function lastByKey<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  const byKey = new Map<string, T>();
  for (const item of items) byKey.set(keyOf(item), item);
  return [...byKey.values()];
}

/**
 * A composite key for `lastByKey`: each part self-delimiting (a string as `<length>:<text>`, a
 * number as `#<digits>;`, null as `n`), so no two lists of parts give the same key. Concatenation,
 * not `JSON.stringify`: this runs for every row of a batch.
 */
export function compositeKey(...parts: readonly (string | number | null)[]): string {
  let key = "";
  for (const part of parts) {
    if (part === null) key += "n";
    else if (typeof part === "number") key += `#${part};`;
    else key += `${part.length}:${part}`;
  }
  return key;
}

/** An `int8`/`int4`/`count` value as a JS number. @throws TypeError beyond 2^53. */
export function toInt(value: unknown): number {
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(number)) throw new TypeError(`postgres adapter: expected an integer, got ${String(value)}`);
  return number;
}

/** An `int8` value as a decimal string (positions are opaque tokens). */
export function toDecimal(value: unknown): string {
  if (typeof value === "string" || typeof value === "number" || typeof value === "bigint") return String(value);
  throw new TypeError(`postgres adapter: expected an integer, got ${String(value)}`);
}

/** A `limit` argument as a row count: at least 0, fractions rounded down. @throws TypeError for `NaN` or a non-number. */
export function limitOf(limit: number): number {
  if (typeof limit !== "number" || Number.isNaN(limit)) throw new TypeError("postgres adapter: limit must be a number");
  return Math.max(0, Math.min(Number.MAX_SAFE_INTEGER, Math.floor(limit)));
}

/** A finite JS number from a `double precision` column (pg and PGlite both return numbers; be lenient with strings). */
export function toFloat(value: unknown): number {
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(number)) throw new TypeError(`postgres adapter: expected a finite number, got ${String(value)}`);
  return number;
}

/** Code-unit order of two strings, independent of any locale or database collation (the memory adapter's order). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An epoch-milliseconds column value as ISO 8601 UTC. */
export function msToIso(value: unknown): string {
  return new Date(toInt(value)).toISOString();
}

/** A `Date` as epoch milliseconds (a parameter of a `*_ms` column). @throws TypeError for an invalid date. */
export function dateToMs(date: Date, name: string): number {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (Number.isNaN(ms)) throw new TypeError(`postgres adapter: ${name} must be a valid Date`);
  return ms;
}

/** An ISO 8601 string of a record as epoch milliseconds. @throws TypeError when it does not parse. */
export function isoToMs(value: string, name: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new TypeError(`postgres adapter: ${name} is not an ISO 8601 time: ${JSON.stringify(value)}`);
  return ms;
}

/** Text Postgres can store: NUL is the one character a `text` or `jsonb` value cannot hold. */
export function storableText(value: string): string {
  return value.replaceAll("\u0000", "\uFFFD");
}
