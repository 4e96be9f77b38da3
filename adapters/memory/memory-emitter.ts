import type { AdapterCapabilities, ClaimedEvent, DeadLetter, HealthEmitter } from "healthstate";
import { MEMORY_CAPABILITIES, promised, type AdapterLifecycle } from "./lifecycle";
import type { MemoryOutbox } from "./memory-outbox";

/**
 * The memory adapter's `HealthEmitter`: delivery state of the in-process outbox that
 * `MemoryStore` commits to.
 *
 * - Positions are a global counter (1 for the first event), exposed as decimal strings;
 *   `highWatermark()` is `"0"` until the first event and never decreases, not even when events
 *   are pruned.
 * - `claim`, `ack`, `fail` and `pendingCount` reject for a group that was never registered.
 * - Every call runs to completion synchronously before its promise settles, so concurrent calls
 *   never interleave halfway: two consumers can never lease the same event.
 * - After `close()` every method rejects with a `ClosedError` (`onAvailable` returns a no-op).
 */
export class MemoryEmitter implements HealthEmitter {
  /** `{ durable: false, crossProcess: false }`. */
  readonly capabilities: AdapterCapabilities = MEMORY_CAPABILITIES;
  readonly #outbox: MemoryOutbox;
  readonly #lifecycle: AdapterLifecycle;
  // One entry per registration, so registering the same function twice needs two unsubscribes.
  readonly #listeners = new Set<{ readonly listener: () => void }>();
  #notifyScheduled = false;

  /** Use `createMemoryAdapter()`. */
  constructor(outbox: MemoryOutbox, lifecycle: AdapterLifecycle) {
    this.#outbox = outbox;
    this.#lifecycle = lifecycle;
  }

  /** Idempotent; the first registration decides the start (`"now"`: after the current high watermark). */
  registerGroup(options: { readonly group: string; readonly from: "oldest" | "now" }): Promise<void> {
    return promised(() => {
      this.#lifecycle.assertOpen("emitter.registerGroup");
      this.#outbox.registerGroup(options.group, options.from);
    });
  }

  /**
   * Leases, per entity, the group's lowest unsettled event when its retry time has come
   * (`nextAttemptAt ≤ now`) and no lease on it runs past `now`; at most `limit`, lowest outbox
   * position first. Each claim counts one attempt. Cost follows the number of entities with
   * unsettled events for the group, not the size of the outbox. Events are copies.
   */
  claim(options: {
    readonly group: string;
    readonly consumerId: string;
    readonly limit: number;
    readonly leaseMs: number;
    readonly now: Date;
  }): Promise<ClaimedEvent[]> {
    return promised(() => {
      this.#lifecycle.assertOpen("emitter.claim");
      return this.#outbox.claim(options);
    });
  }

  /**
   * Settles events for the group. Idempotent: unknown and already settled ids are ignored, and so
   * is an event that is not yet its entity's head (it cannot have been delivered). Whether a lease
   * is held or has expired does not matter: the event was delivered.
   */
  ack(options: { readonly group: string; readonly eventIds: readonly string[] }): Promise<void> {
    return promised(() => {
      this.#lifecycle.assertOpen("emitter.ack");
      if (this.#outbox.ack(options.group, options.eventIds)) this.notifyAvailable();
    });
  }

  /**
   * Records a failed delivery of an entity's head event: releases the lease and holds the event
   * back until `retryAt`, keeping its attempt count; or, with `deadLetter`, settles it and records
   * a `DeadLetter` (`deadAt` = `now`). A no-op for an unknown, settled or not-yet-delivered event.
   */
  fail(options: Parameters<HealthEmitter["fail"]>[0]): Promise<void> {
    return promised(() => {
      this.#lifecycle.assertOpen("emitter.fail");
      if (this.#outbox.fail(options)) this.notifyAvailable();
    });
  }

  /** Unsettled events of the group (registered after its start) with position ≤ `upTo`. */
  pendingCount(options: { readonly group: string; readonly upTo: string }): Promise<number> {
    return promised(() => {
      this.#lifecycle.assertOpen("emitter.pendingCount");
      return this.#outbox.pendingCount(options.group, parsePosition(options.upTo));
    });
  }

  /** Position of the newest committed event as a decimal string; `"0"` before the first. */
  highWatermark(): Promise<string> {
    return promised(() => {
      this.#lifecycle.assertOpen("emitter.highWatermark");
      return String(this.#outbox.lastPosition);
    });
  }

  /** Dead letters in the order they were recorded, newest first; copies. */
  listDeadLetters(options: { readonly group?: string; readonly limit?: number }): Promise<DeadLetter[]> {
    return promised(() => {
      this.#lifecycle.assertOpen("emitter.listDeadLetters");
      return this.#outbox.listDeadLetters(options.group, options.limit);
    });
  }

  /**
   * Deletes events every registered group has settled (all events count as settled when no
   * group is registered): those committed before `olderThan` (by the adapter's clock), then,
   * while more than `maxEvents` remain, the oldest settled ones. Never deletes an unsettled
   * event, so more than `maxEvents` may remain. Returns how many were deleted.
   */
  prune(options: { readonly olderThan: Date; readonly maxEvents: number }): Promise<number> {
    return promised(() => {
      this.#lifecycle.assertOpen("emitter.prune");
      return this.#outbox.prune(options.olderThan, options.maxEvents);
    });
  }

  /**
   * Adds a wake-up hint: `listener` is called in a microtask after a commit that enqueued
   * events, after an `ack` or dead letter that uncovered an entity's next event, and after a
   * `fail` that scheduled a retry. Hints that fire in the same tick are coalesced into one call.
   * A throwing listener is ignored. Returns the function that removes this registration.
   */
  onAvailable(listener: () => void): () => void {
    if (this.#lifecycle.closed) return () => undefined;
    const registration = { listener };
    this.#listeners.add(registration);
    return () => {
      this.#listeners.delete(registration);
    };
  }

  /** Schedules one call of every listener (see `onAvailable`). Called by the store after commit. */
  notifyAvailable(): void {
    if (this.#notifyScheduled || this.#listeners.size === 0) return;
    this.#notifyScheduled = true;
    queueMicrotask(() => {
      this.#notifyScheduled = false;
      if (this.#lifecycle.closed) return;
      for (const { listener } of [...this.#listeners]) {
        try {
          listener();
        } catch {
          // A hint only: the engine polls as well, and a listener's failure is not the writer's.
        }
      }
    });
  }

  /** Drops every listener (at `close()`). */
  releaseListeners(): void {
    this.#listeners.clear();
  }
}

function parsePosition(value: string): number {
  const position = /^\d+$/u.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(position)) throw new TypeError(`memory adapter: not an outbox position: ${JSON.stringify(value)}`);
  return position;
}
