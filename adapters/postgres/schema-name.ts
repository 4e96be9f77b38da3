import { createHash } from "node:crypto";
import { ValidationError } from "healthstate";

/** The schema the adapter uses when none is given. */
export const DEFAULT_SCHEMA = "healthstate";

/** What a schema name must look like: a lower-case, unquoted Postgres identifier of at most 63 bytes. */
export const SCHEMA_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/u;

/** Postgres truncates identifiers (and rejects channel names) longer than this many bytes. */
const MAX_IDENTIFIER_BYTES = 63;

/** Names derived from a validated schema name, ready to be put into SQL text. */
export interface SchemaNames {
  /** The schema name as given (validated). */
  readonly schema: string;
  /** The schema as a quoted identifier, to prefix table names: `"healthstate"`. */
  readonly quoted: string;
  /** The NOTIFY channel of the schema's outbox (plain text, for `pg_notify`). */
  readonly channel: string;
  /** The channel as a quoted identifier, for `LISTEN`. */
  readonly quotedChannel: string;
}

/**
 * Checks a schema name before any SQL runs.
 * @throws ValidationError (path `["schema"]`) unless it matches `^[a-z_][a-z0-9_]{0,62}$`.
 */
export function validateSchemaName(schema: unknown): string {
  if (typeof schema !== "string" || !SCHEMA_NAME_PATTERN.test(schema)) {
    throw new ValidationError([
      {
        path: ["schema"],
        message: `must match ${String(SCHEMA_NAME_PATTERN)} (lower-case letters, digits and _, at most 63 characters, not starting with a digit), got ${describe(schema)}`,
      },
    ]);
  }
  return schema;
}

/**
 * The one place where identifiers are quoted. Only names that passed `validateSchemaName` (or
 * are derived from one) reach it, so the quotes are belt and braces, not the defence.
 */
export function schemaNames(schema: unknown): SchemaNames {
  const name = validateSchemaName(schema);
  const channel = channelOf(name);
  return { schema: name, quoted: quoteIdentifier(name), channel, quotedChannel: quoteIdentifier(channel) };
}

function quoteIdentifier(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/**
 * `<schema>_outbox`, or, when that would exceed Postgres' 63-byte limit on channel names, the
 * schema's first 40 characters plus a hash of the whole name, so two long schemas never share a
 * channel.
 */
function channelOf(schema: string): string {
  const plain = `${schema}_outbox`;
  if (plain.length <= MAX_IDENTIFIER_BYTES) return plain;
  const digest = createHash("sha256").update(schema).digest("hex").slice(0, 16);
  return `${schema.slice(0, 40)}_${digest}_outbox`;
}

function describe(value: unknown): string {
  if (typeof value !== "string") return typeof value;
  return value.length > 80 ? `${JSON.stringify(value.slice(0, 80))}… (${value.length} characters)` : JSON.stringify(value);
}
