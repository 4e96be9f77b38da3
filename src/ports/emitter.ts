import type { HealthEvent } from "../events";
import type { AdapterCapabilities } from "./store";

/** An outbox event handed to one consumer of a group for delivery. */
export interface ClaimedEvent {
  readonly event: HealthEvent;
  /** Deliveries of this event to this group so far, this one included (1 on the first). */
  readonly attempt: number;
}

/** A delivery that was given up on after too many failed attempts. */
export interface DeadLetter {
  readonly group: string;
  readonly event: HealthEvent;
  readonly attempts: number;
  readonly lastError: string;
  /** ISO 8601 UTC. */
  readonly deadAt: string;
}

/**
 * Delivery state of the outbox per subscriber group. Each group receives every event at least
 * once, in per-entity sequence order: `claim` only ever hands out the lowest unsettled event of
 * an entity for a group, and only when no other consumer holds an unexpired lease on it. Acked and
 * dead-lettered events are settled.
 */
export interface HealthEmitter {
  readonly capabilities: AdapterCapabilities;
  /**
   * Registers a group. Idempotent: only the first registration decides where the group starts:
   * `"oldest"` (every event still retained) or `"now"` (only events enqueued after this call).
   */
  registerGroup(options: { readonly group: string; readonly from: "oldest" | "now" }): Promise<void>;
  /**
   * Leases up to `limit` deliverable events for `consumerId` in `group` until `now + leaseMs`:
   * for each entity, its lowest unsettled event, if its retry time has come and no unexpired
   * lease is held on it. Returns an empty list when nothing is deliverable.
   */
  claim(options: {
    readonly group: string;
    readonly consumerId: string;
    readonly limit: number;
    readonly leaseMs: number;
    readonly now: Date;
  }): Promise<ClaimedEvent[]>;
  /** Settles delivered events for `group`. Idempotent; acking an unknown or settled event is a no-op. */
  ack(options: { readonly group: string; readonly eventIds: readonly string[] }): Promise<void>;
  /**
   * Records a failed delivery: the lease is released and the event becomes deliverable again at
   * `retryAt`, or, with `deadLetter`, it is settled as a dead letter (kept for inspection).
   * Only the claim that holds the lease can fail it: a no-op unless the event's lease is still
   * `consumerId`'s from its claim number `attempt` (as `claim` returned it). A consumer whose
   * lease expired and was claimed again (by another consumer, or by itself) then changes nothing,
   * so it can neither release a lease another delivery holds nor dead-letter that delivery.
   */
  fail(options: {
    readonly group: string;
    readonly eventId: string;
    /** The `consumerId` the event was claimed for. */
    readonly consumerId: string;
    /** The claim's `attempt`, as `claim` returned it. */
    readonly attempt: number;
    readonly error: string;
    readonly retryAt: Date;
    readonly deadLetter: boolean;
    readonly now: Date;
  }): Promise<void>;
  /**
   * How many events with outbox position ≤ `upTo` are not yet settled for `group`.
   * `upTo` comes from `highWatermark`.
   */
  pendingCount(options: { readonly group: string; readonly upTo: string }): Promise<number>;
  /** Position of the newest committed outbox event (an opaque, comparable token), "0" when empty. */
  highWatermark(): Promise<string>;
  /** Dead letters of one group or all, the most recently dead-lettered first; `limit` keeps the newest. */
  listDeadLetters(options: { readonly group?: string; readonly limit?: number }): Promise<DeadLetter[]>;
  /**
   * Deletes events settled by every registered group that are older than `olderThan`, and beyond
   * `maxEvents` the oldest settled ones. Returns how many were deleted.
   */
  prune(options: { readonly olderThan: Date; readonly maxEvents: number }): Promise<number>;
  /**
   * Calls `listener` when new events may be deliverable (a hint only: delivery never depends on
   * it, the engine also polls). Returns a function that removes the listener.
   */
  onAvailable(listener: () => void): () => void;
}
