import { healthEventSchema, type AdapterCapabilities, type ClaimedEvent, type DeadLetter, type HealthEmitter, type HealthEvent } from "healthstate";
import type { AdapterContext } from "./context";
import { pruneLockKey } from "./lock-keys";
import { withRetry } from "./retry";
import { arrayLiteral, dateToMs, msToIso, storableText, toDecimal, toInt } from "./sql-values";

const POSITION = /^\d{1,19}$/u;

/**
 * The Postgres `HealthEmitter`: delivery of the outbox per subscriber group.
 *
 * - Per (group, entity) one `deliveries` row holds the settled sequence, the attempt count, the
 *   retry time and the lease of the entity's head event; `claim` locks these rows with
 *   `FOR UPDATE SKIP LOCKED`, so consumers in any number of processes never lease the same event.
 * - Times (`now`, `retryAt`) are the caller's, never the database clock, so an injected clock
 *   drives leases and retries.
 * - Positions are the outbox's identity column, as decimal strings; `highWatermark()` is `"0"` on
 *   an empty outbox and never goes back, not even after `prune`.
 * - `claim`, `ack`, `fail` and `pendingCount` reject for a group that was never registered.
 * - After `close()` every method rejects with a `ClosedError`.
 */
export class PostgresEmitter implements HealthEmitter {
  readonly capabilities: AdapterCapabilities;
  readonly #ctx: AdapterContext;
  readonly #q: string;
  /** Start positions of registered groups. Registration is final, so they never go stale. */
  readonly #starts = new Map<string, string>();

  constructor(ctx: AdapterContext) {
    this.#ctx = ctx;
    this.#q = ctx.names.quoted;
    this.capabilities = ctx.capabilities;
  }

  /**
   * Idempotent; the first registration (in any process) decides the start. Registration holds the
   * barrier lock exclusively for a moment, so it sees every event committed before it and every
   * later enqueue sees the group.
   */
  async registerGroup(options: { readonly group: string; readonly from: "oldest" | "now" }): Promise<void> {
    this.#assertOpen("registerGroup");
    if ((await this.#findStart(options.group)) !== undefined) return;
    const q = this.#q;
    const ctx = this.#ctx;
    await withRetry(ctx.retry, () =>
      ctx.sql.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock($1::bigint)", [ctx.barrierKey]);
        const { rows } = await tx.query<{ start_position: unknown }>(
          `INSERT INTO ${q}.delivery_groups (group_name, start_position)
           SELECT $1, CASE WHEN $2::boolean
                        THEN greatest((SELECT coalesce(max(position), 0) FROM ${q}.outbox), (SELECT pruned_through FROM ${q}.outbox_state))
                        ELSE 0 END
           ON CONFLICT (group_name) DO NOTHING
           RETURNING start_position`,
          [options.group, options.from === "now"],
        );
        if (rows.length === 0 || options.from === "now") return;
        await tx.query(
          `INSERT INTO ${q}.deliveries (group_name, entity_id, enqueued_through)
           SELECT $1, entity_id, max(sequence) FROM ${q}.outbox GROUP BY entity_id ORDER BY entity_id
           ON CONFLICT (group_name, entity_id) DO NOTHING`,
          [options.group],
        );
      }, ctx.settings),
    );
    await this.#findStart(options.group);
  }

  /**
   * Leases, per entity, the group's lowest unsettled event when its retry time has come and no
   * lease on it runs past `now`; at most `limit`, lowest outbox position first. One statement.
   */
  async claim(options: {
    readonly group: string;
    readonly consumerId: string;
    readonly limit: number;
    readonly leaseMs: number;
    readonly now: Date;
  }): Promise<ClaimedEvent[]> {
    this.#assertOpen("claim");
    const start = await this.#start(options.group);
    const limit = Math.floor(options.limit);
    if (!(limit > 0)) return [];
    if (!Number.isFinite(options.leaseMs) || options.leaseMs < 0) throw new TypeError("postgres adapter: leaseMs must be a finite number ≥ 0");
    const now = dateToMs(options.now, "now");
    const leaseUntil = now + Math.ceil(options.leaseMs);
    const q = this.#q;
    const { rows } = await this.#ctx.sql.query<{ attempts: unknown; position: unknown; event: unknown }>(
      `WITH picked AS (
         SELECT d.entity_id, head.position, head.sequence, head.event
           FROM ${q}.deliveries d
          CROSS JOIN LATERAL (
                SELECT o.position, o.sequence, o.event FROM ${q}.outbox o
                 WHERE o.entity_id = d.entity_id AND o.sequence > d.settled_sequence AND o.position > $2::bigint
                 ORDER BY o.sequence LIMIT 1
               ) head
          WHERE d.group_name = $1 AND d.enqueued_through > d.settled_sequence
            AND (d.next_attempt_at_ms IS NULL OR d.next_attempt_at_ms <= $3::bigint)
            AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= $3::bigint)
          ORDER BY head.position
          LIMIT $4
            FOR UPDATE OF d SKIP LOCKED
       )
       UPDATE ${q}.deliveries d
          SET attempts = d.attempts + 1, lease_owner = $5, lease_until_ms = $6::bigint
         FROM picked p
        WHERE d.group_name = $1 AND d.entity_id = p.entity_id AND p.sequence > d.settled_sequence
       RETURNING d.attempts, p.position, p.event`,
      [options.group, start, now, limit, options.consumerId, leaseUntil],
    );
    return rows
      .map((row) => ({ position: BigInt(toDecimal(row.position)), claimed: { event: parseEvent(row.event), attempt: toInt(row.attempts) } }))
      .sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0))
      .map((row) => row.claimed);
  }

  /**
   * Settles delivered events. Only an entity's head can be settled (a later event cannot have been
   * delivered); the head and its successors acked in one call settle together. Idempotent:
   * unknown and settled ids are ignored; whether the lease is held or expired does not matter.
   */
  async ack(options: { readonly group: string; readonly eventIds: readonly string[] }): Promise<void> {
    this.#assertOpen("ack");
    const start = await this.#start(options.group);
    if (options.eventIds.length === 0) return;
    const q = this.#q;
    const { rows } = await this.#ctx.sql.query<{ pending: boolean }>(
      `WITH acked AS (
         SELECT o.entity_id, o.sequence FROM ${q}.outbox o
          WHERE o.event_id = ANY($2::text[]) AND o.position > $3::bigint
       ), locked AS (
         SELECT d.entity_id, d.settled_sequence FROM ${q}.deliveries d
          WHERE d.group_name = $1 AND d.entity_id IN (SELECT entity_id FROM acked)
          ORDER BY d.entity_id
            FOR UPDATE
       ), settle AS (
         SELECT l.entity_id, max(a.sequence) AS sequence
           FROM locked l JOIN acked a ON a.entity_id = l.entity_id
          WHERE a.sequence > l.settled_sequence
            AND NOT EXISTS (
                  SELECT 1 FROM ${q}.outbox gap
                   WHERE gap.entity_id = l.entity_id AND gap.sequence > l.settled_sequence AND gap.sequence < a.sequence
                     AND gap.position > $3::bigint AND NOT (gap.event_id = ANY($2::text[])))
          GROUP BY l.entity_id
       )
       UPDATE ${q}.deliveries d
          SET settled_sequence = s.sequence, attempts = 0, next_attempt_at_ms = NULL, lease_owner = NULL, lease_until_ms = NULL
         FROM settle s
        WHERE d.group_name = $1 AND d.entity_id = s.entity_id AND d.settled_sequence < s.sequence
       RETURNING d.enqueued_through > d.settled_sequence AS pending`,
      [options.group, arrayLiteral([...new Set(options.eventIds)]), start],
    );
    if (rows.some((row) => row.pending)) this.#ctx.hub.notify();
  }

  /**
   * Records a failed delivery of an entity's head event: releases the lease and holds the event
   * back until `retryAt`, keeping its attempt count; or, with `deadLetter`, settles it and records
   * a dead letter (`deadAt` = `now`). A no-op for an unknown, settled or not-yet-deliverable event,
   * and for a claim that no longer holds the lease (`lease_owner` and `attempts` as claimed).
   */
  async fail(options: {
    readonly group: string;
    readonly eventId: string;
    readonly consumerId: string;
    readonly attempt: number;
    readonly error: string;
    readonly retryAt: Date;
    readonly deadLetter: boolean;
    readonly now: Date;
  }): Promise<void> {
    this.#assertOpen("fail");
    const start = await this.#start(options.group);
    const q = this.#q;
    const { rows } = await this.#ctx.sql.query<{ entity_id: string }>(
      `WITH target AS (
         SELECT d.entity_id, o.sequence, o.event_id, o.event, d.attempts
           FROM ${q}.outbox o
           JOIN ${q}.deliveries d ON d.group_name = $1 AND d.entity_id = o.entity_id
          WHERE o.event_id = $2 AND o.position > $3::bigint AND o.sequence > d.settled_sequence
            AND d.lease_owner = $8 AND d.attempts = $9::integer
            AND NOT EXISTS (
                  SELECT 1 FROM ${q}.outbox earlier
                   WHERE earlier.entity_id = o.entity_id AND earlier.sequence > d.settled_sequence
                     AND earlier.sequence < o.sequence AND earlier.position > $3::bigint)
            FOR UPDATE OF d
       ), updated AS (
         UPDATE ${q}.deliveries d
            SET settled_sequence = CASE WHEN $4::boolean THEN t.sequence ELSE d.settled_sequence END,
                attempts = CASE WHEN $4::boolean THEN 0 ELSE d.attempts END,
                next_attempt_at_ms = CASE WHEN $4::boolean THEN NULL ELSE $5::bigint END,
                lease_owner = NULL, lease_until_ms = NULL
           FROM target t
          WHERE d.group_name = $1 AND d.entity_id = t.entity_id
          RETURNING d.entity_id
       ), dead AS (
         INSERT INTO ${q}.dead_letters (group_name, entity_id, sequence, event_id, event, attempts, last_error, dead_at_ms)
         SELECT $1, t.entity_id, t.sequence, t.event_id, t.event, t.attempts, $6, $7::bigint
           FROM target t WHERE $4::boolean
       )
       SELECT entity_id FROM updated`,
      [
        options.group,
        options.eventId,
        start,
        options.deadLetter,
        dateToMs(options.retryAt, "retryAt"),
        storableText(String(options.error)),
        dateToMs(options.now, "now"),
        String(options.consumerId),
        attemptOf(options.attempt),
      ],
    );
    if (rows.length > 0) this.#ctx.hub.notify();
  }

  /** Unsettled events of the group (after its start) with position ≤ `upTo`. */
  async pendingCount(options: { readonly group: string; readonly upTo: string }): Promise<number> {
    this.#assertOpen("pendingCount");
    const start = await this.#start(options.group);
    if (!POSITION.test(options.upTo)) throw new TypeError(`postgres adapter: not an outbox position: ${JSON.stringify(options.upTo)}`);
    const { rows } = await this.#ctx.sql.query<{ count: unknown }>(
      `SELECT count(*) AS count
         FROM ${this.#q}.deliveries d
         JOIN ${this.#q}.outbox o ON o.entity_id = d.entity_id AND o.sequence > d.settled_sequence
        WHERE d.group_name = $1 AND d.enqueued_through > d.settled_sequence
          AND o.position > $2::bigint AND o.position <= $3::bigint`,
      [options.group, start, options.upTo],
    );
    return toInt(rows[0]?.count ?? 0);
  }

  /** Position of the newest committed event as a decimal string; `"0"` before the first. */
  async highWatermark(): Promise<string> {
    this.#assertOpen("highWatermark");
    const { rows } = await this.#ctx.sql.query<{ position: unknown }>(
      `SELECT greatest((SELECT coalesce(max(position), 0) FROM ${this.#q}.outbox),
                       (SELECT pruned_through FROM ${this.#q}.outbox_state)) AS position`,
    );
    return toDecimal(rows[0]?.position ?? 0);
  }

  /** Dead letters in the order they were recorded, newest first. */
  async listDeadLetters(options: { readonly group?: string; readonly limit?: number }): Promise<DeadLetter[]> {
    this.#assertOpen("listDeadLetters");
    const limit = options.limit === undefined ? null : Math.max(0, Math.floor(options.limit));
    const { rows } = await this.#ctx.sql.query<{ group_name: string; event: unknown; attempts: unknown; last_error: string; dead_at_ms: unknown }>(
      `SELECT group_name, event, attempts, last_error, dead_at_ms FROM ${this.#q}.dead_letters
        WHERE $1::text IS NULL OR group_name = $1
        ORDER BY id DESC LIMIT $2`,
      [options.group ?? null, limit],
    );
    return rows.map((row) => ({
      group: row.group_name,
      event: parseEvent(row.event),
      attempts: toInt(row.attempts),
      lastError: row.last_error,
      deadAt: msToIso(row.dead_at_ms),
    }));
  }

  /**
   * Deletes events every registered group has settled (all events when no group is registered):
   * those enqueued before `olderThan` (by the adapter's clock), then, while more than `maxEvents`
   * remain, the oldest settled ones. Never deletes an unsettled event, so more than `maxEvents`
   * may remain. A prune already running in another process makes this one return 0 at once.
   */
  async prune(options: { readonly olderThan: Date; readonly maxEvents: number }): Promise<number> {
    this.#assertOpen("prune");
    const olderThan = dateToMs(options.olderThan, "olderThan");
    const maxEvents = Math.max(0, Math.floor(options.maxEvents));
    const q = this.#q;
    const ctx = this.#ctx;
    const settled = `NOT EXISTS (
        SELECT 1 FROM ${q}.delivery_groups g
          LEFT JOIN ${q}.deliveries d ON d.group_name = g.group_name AND d.entity_id = o.entity_id
         WHERE o.position > g.start_position AND o.sequence > coalesce(d.settled_sequence, 0))`;
    return withRetry(ctx.retry, () =>
      ctx.sql.transaction(async (tx) => {
        const { rows: locked } = await tx.query<{ ok: boolean }>(
          "SELECT pg_try_advisory_xact_lock($1::bigint) AS ok, pg_advisory_xact_lock_shared($2::bigint)::text AS barrier",
          [pruneLockKey(ctx.names.schema).toString(), ctx.barrierKey],
        );
        if (locked[0]?.ok !== true) return 0;
        const { rows: byAge } = await tx.query<{ count: unknown; last: unknown }>(
          `WITH gone AS (
             DELETE FROM ${q}.outbox o WHERE o.enqueued_at_ms < $1::bigint AND ${settled} RETURNING o.position
           ) SELECT count(*) AS count, coalesce(max(position), 0) AS last FROM gone`,
          [olderThan],
        );
        const { rows: bySize } = await tx.query<{ count: unknown; last: unknown }>(
          `WITH excess AS (
             SELECT greatest((SELECT count(*) FROM ${q}.outbox) - $1::bigint, 0) AS n
           ), gone AS (
             DELETE FROM ${q}.outbox WHERE position IN (
               SELECT o.position FROM ${q}.outbox o WHERE ${settled} ORDER BY o.position LIMIT (SELECT n FROM excess))
             RETURNING position
           ) SELECT count(*) AS count, coalesce(max(position), 0) AS last FROM gone`,
          [maxEvents],
        );
        const deleted = toInt(byAge[0]?.count ?? 0) + toInt(bySize[0]?.count ?? 0);
        if (deleted > 0) {
          await tx.query(
            `UPDATE ${q}.outbox_state SET pruned_through = greatest(pruned_through, $1::bigint, $2::bigint)`,
            [toDecimal(byAge[0]?.last ?? 0), toDecimal(bySize[0]?.last ?? 0)],
          );
        }
        return deleted;
      }, ctx.settings),
    );
  }

  /**
   * Adds a wake-up hint: called after NOTIFY on the schema's outbox channel (commits of any
   * process; pg Pools listen on a connection of their own while a listener is registered, PGlite
   * in process), after this adapter's own commits, acks and failures, and after the LISTEN
   * connection is (re)established. Returns the function that removes this registration.
   */
  onAvailable(listener: () => void): () => void {
    return this.#ctx.hub.add(listener);
  }

  #assertOpen(operation: string): void {
    this.#ctx.lifecycle.assertOpen(`emitter.${operation}`);
  }

  async #findStart(group: string): Promise<string | undefined> {
    const cached = this.#starts.get(group);
    if (cached !== undefined) return cached;
    const { rows } = await this.#ctx.sql.query<{ start_position: unknown }>(
      `SELECT start_position FROM ${this.#q}.delivery_groups WHERE group_name = $1`,
      [group],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const start = toDecimal(row.start_position);
    this.#starts.set(group, start);
    return start;
  }

  async #start(group: string): Promise<string> {
    const start = await this.#findStart(group);
    if (start === undefined) throw new Error(`postgres adapter: unknown group ${JSON.stringify(group)} (call registerGroup first)`);
    return start;
  }
}

function parseEvent(value: unknown): HealthEvent {
  const parsed = healthEventSchema.safeParse(value);
  if (!parsed.success) throw new Error(`postgres adapter: an outbox event does not match the event schema: ${parsed.error.message}`);
  return parsed.data;
}

/** A claim's attempt number for a parameter: an integer the `attempts` column can hold, or a `TypeError`. */
function attemptOf(attempt: number): number {
  if (!Number.isSafeInteger(attempt) || attempt < 0 || attempt > 2_147_483_647) {
    throw new TypeError(`postgres adapter: attempt must be an integer from 0 to 2147483647, got ${String(attempt)}`);
  }
  return attempt;
}
