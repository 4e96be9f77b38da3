import { createHash } from "node:crypto";

/** First 8 bytes of SHA-256 of `text`, as a signed 64-bit integer (the `bigint` key space of advisory locks). */
function keyOf(text: string): bigint {
  return createHash("sha256").update(text, "utf8").digest().readBigInt64BE(0);
}

/**
 * The advisory lock key (`pg_advisory_xact_lock(bigint)`) that a store transaction takes for
 * `lockKey` in `schema`: the first 8 bytes of SHA-256 of `schema + ":" + lockKey`, read as a
 * signed big-endian 64-bit integer. Computed in TypeScript rather than with Postgres' `hashtext`,
 * which is undocumented and may change between major versions, so every process, every server
 * version and PGlite agree. Collisions only over-serialize two keys (about 50 % likely somewhere
 * once ~5·10⁹ keys are in use).
 *
 * @example advisoryLockKey("healthstate", "health:checkout::prod") // a bigint
 */
export function advisoryLockKey(schema: string, lockKey: string): bigint {
  return keyOf(`${schema}:${lockKey}`);
}

// Internal keys put `#` right after the schema name. Schema names are [a-z0-9_] only, so no
// `advisoryLockKey` input (schema + ":" + …) can produce the same hashed text.

/**
 * Taken in share mode by every transaction that holds entity locks or enqueues events, and in
 * exclusive mode by a transaction with too many lock keys (instead of one lock per key) and by
 * group registration (so a group registered concurrently with an enqueue sees every event).
 */
export function barrierLockKey(schema: string): bigint {
  return keyOf(`${schema}#barrier`);
}

/** Serializes `emitter.prune` runs of one schema (a second one skips instead of waiting). */
export function pruneLockKey(schema: string): bigint {
  return keyOf(`${schema}#prune`);
}

/**
 * Serializes `migrate` across processes. One constant key for every schema: migrations are rare
 * and short, and a constant key also serializes the `CREATE SCHEMA` of two schemas.
 */
export const MIGRATION_LOCK_KEY: bigint = keyOf("healthstate#migrate");
