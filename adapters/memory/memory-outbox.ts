import type { ClaimedEvent, DeadLetter, HealthEmitter, HealthEvent } from "healthstate";
import { copy, timeOf } from "./lifecycle";
import { firstAfter, hasSequence, insertSorted } from "./sorted";

/** One committed outbox event. */
interface OutboxEntry {
  /** Global, strictly increasing commit position; 1 for the first event ever enqueued. */
  readonly position: number;
  /** A private copy; handed out only as copies. */
  readonly event: HealthEvent;
  /** Epoch milliseconds of the commit that enqueued it (the adapter's clock). */
  readonly enqueuedAt: number;
}

/** Delivery state of one entity's event chain for one group. */
interface Cursor {
  /** Highest settled (acked or dead-lettered) sequence; 0 before the first. */
  settled: number;
  /** Claims of the current head event so far. */
  attempts: number;
  /** Epoch milliseconds before which the head is not handed out again. */
  nextAttemptAt: number;
  /** Consumer holding the head, `null` when none. */
  leaseOwner: string | null;
  /** Epoch milliseconds the lease runs until (exclusive). */
  leaseUntil: number;
}

interface GroupState {
  readonly name: string;
  /** Events at or before this position are not for this group (a group registered "now"). */
  readonly start: number;
  readonly cursors: Map<string, Cursor>;
  /**
   * Entities with at least one event this group has not settled. `claim` and `pendingCount` only
   * visit these, so their cost follows the backlog, not the size of the outbox.
   */
  readonly pending: Set<string>;
}

const sequenceOf = (entry: OutboxEntry): number => entry.event.sequence;

/**
 * The in-memory transactional outbox and its per-group delivery state: the synchronous core
 * behind `MemoryEmitter`. The store appends committed events with `append`; groups claim, ack
 * and fail them. Each group sees every entity's events one at a time, in sequence order.
 */
export class MemoryOutbox {
  #lastPosition = 0;
  readonly #byPosition = new Map<number, OutboxEntry>();
  readonly #byEventId = new Map<string, OutboxEntry>();
  /** Per entity, its retained events sorted by sequence. */
  readonly #byEntity = new Map<string, OutboxEntry[]>();
  readonly #groups = new Map<string, GroupState>();
  readonly #deadLetters: DeadLetter[] = [];

  /** Number of retained events. */
  get size(): number {
    return this.#byPosition.size;
  }

  /** Position of the newest event ever committed (kept after it is pruned); 0 before the first. */
  get lastPosition(): number {
    return this.#lastPosition;
  }

  /**
   * Why `events` cannot be committed, or `undefined` when they can: each (entityId, sequence)
   * and each `eventId` is unique among committed events and within `events`.
   */
  conflict(events: readonly HealthEvent[]): string | undefined {
    const seen = new Set<string>();
    const seenIds = new Set<string>();
    for (const event of events) {
      const key = JSON.stringify([event.entityId, event.sequence]);
      if (seen.has(key) || this.has(event.entityId, event.sequence)) {
        return `duplicate outbox event (entityId ${JSON.stringify(event.entityId)}, sequence ${event.sequence})`;
      }
      if (seenIds.has(event.eventId) || this.#byEventId.has(event.eventId)) {
        return `duplicate outbox eventId ${JSON.stringify(event.eventId)}`;
      }
      seen.add(key);
      seenIds.add(event.eventId);
    }
    return undefined;
  }

  /** Whether an event with this (entityId, sequence) is committed and retained. */
  has(entityId: string, sequence: number): boolean {
    const entries = this.#byEntity.get(entityId);
    return entries !== undefined && hasSequence(entries, sequence, sequenceOf);
  }

  /**
   * Commits events (already copied and checked with `conflict`), in the given order, at the next
   * positions. Synchronous and infallible: part of a store commit.
   */
  append(events: readonly HealthEvent[], enqueuedAt: number): void {
    for (const event of events) {
      this.#lastPosition += 1;
      const entry: OutboxEntry = { position: this.#lastPosition, event, enqueuedAt };
      this.#byPosition.set(entry.position, entry);
      this.#byEventId.set(event.eventId, entry);
      let entries = this.#byEntity.get(event.entityId);
      if (entries === undefined) {
        entries = [];
        this.#byEntity.set(event.entityId, entries);
      }
      insertSorted(entries, entry, sequenceOf);
      for (const group of this.#groups.values()) {
        // New positions are above every group's start, so only the settled sequence matters.
        if (event.sequence > (group.cursors.get(event.entityId)?.settled ?? 0)) group.pending.add(event.entityId);
      }
    }
  }

  /** See `HealthEmitter.registerGroup`. First registration wins. */
  registerGroup(name: string, from: "oldest" | "now"): void {
    if (this.#groups.has(name)) return;
    const group: GroupState = {
      name,
      start: from === "oldest" ? 0 : this.#lastPosition,
      cursors: new Map(),
      pending: new Set(),
    };
    if (from === "oldest") for (const entityId of this.#byEntity.keys()) group.pending.add(entityId);
    this.#groups.set(name, group);
  }

  /** See `HealthEmitter.claim`. */
  claim(options: {
    readonly group: string;
    readonly consumerId: string;
    readonly limit: number;
    readonly leaseMs: number;
    readonly now: Date;
  }): ClaimedEvent[] {
    const group = this.#group(options.group);
    const now = timeOf(options.now, "now");
    if (!Number.isFinite(options.leaseMs) || options.leaseMs < 0) {
      throw new TypeError("memory adapter: leaseMs must be a finite number ≥ 0");
    }
    const limit = Math.floor(options.limit);
    if (!(limit > 0)) return [];
    const deliverable: { entry: OutboxEntry; cursor: Cursor }[] = [];
    for (const entityId of group.pending) {
      const head = this.#head(group, entityId);
      if (head === undefined) {
        group.pending.delete(entityId);
        continue;
      }
      const cursor = this.#cursor(group, entityId);
      if (cursor.leaseOwner !== null && cursor.leaseUntil > now) continue;
      if (cursor.nextAttemptAt > now) continue;
      deliverable.push({ entry: head, cursor });
    }
    deliverable.sort((a, b) => a.entry.position - b.entry.position);
    return deliverable.slice(0, limit).map(({ entry, cursor }) => {
      cursor.attempts += 1;
      cursor.leaseOwner = options.consumerId;
      cursor.leaseUntil = now + options.leaseMs;
      return { event: copy(entry.event), attempt: cursor.attempts };
    });
  }

  /**
   * See `HealthEmitter.ack`. Only an entity's head event (the one `claim` hands out) can be
   * settled: acking a later one is a no-op, so an event can never be skipped. Ids of one entity
   * are applied in sequence order, so acking a head and its successors in one call settles all.
   *
   * @returns whether an acked entity has a further event now waiting.
   */
  ack(groupName: string, eventIds: readonly string[]): boolean {
    const group = this.#group(groupName);
    const entries: OutboxEntry[] = [];
    for (const eventId of eventIds) {
      const entry = this.#byEventId.get(eventId);
      if (entry !== undefined) entries.push(entry);
    }
    entries.sort((a, b) => a.event.sequence - b.event.sequence);
    let more = false;
    for (const entry of entries) {
      if (this.#head(group, entry.event.entityId) !== entry) continue;
      more = this.#settle(group, entry) || more;
    }
    return more;
  }

  /**
   * See `HealthEmitter.fail`. A no-op unless the event is its entity's head for the group.
   *
   * @returns whether the call changed anything.
   */
  fail(options: Parameters<HealthEmitter["fail"]>[0]): boolean {
    const group = this.#group(options.group);
    const retryAt = timeOf(options.retryAt, "retryAt");
    const deadAt = new Date(timeOf(options.now, "now")).toISOString();
    if (!Number.isSafeInteger(options.attempt) || options.attempt < 0) {
      throw new TypeError(`memory adapter: attempt must be an integer ≥ 0, got ${String(options.attempt)}`);
    }
    const entry = this.#byEventId.get(options.eventId);
    if (entry === undefined || this.#head(group, entry.event.entityId) !== entry) return false;
    const cursor = this.#cursor(group, entry.event.entityId);
    // Only the claim that holds the lease: a late failure of an expired claim changes nothing.
    if (cursor.leaseOwner !== options.consumerId || cursor.attempts !== options.attempt) return false;
    if (options.deadLetter) {
      this.#deadLetters.push({
        group: group.name,
        event: copy(entry.event),
        attempts: cursor.attempts,
        lastError: options.error,
        deadAt,
      });
      this.#settle(group, entry);
    } else {
      cursor.leaseOwner = null;
      cursor.leaseUntil = 0;
      cursor.nextAttemptAt = retryAt;
    }
    return true;
  }

  /** See `HealthEmitter.pendingCount`. */
  pendingCount(groupName: string, upTo: number): number {
    const group = this.#group(groupName);
    let count = 0;
    for (const entityId of group.pending) {
      const entries = this.#byEntity.get(entityId) ?? [];
      const settled = group.cursors.get(entityId)?.settled ?? 0;
      for (let i = firstAfter(entries, settled, sequenceOf); i < entries.length; i += 1) {
        const { position } = entries[i] as OutboxEntry;
        if (position > group.start && position <= upTo) count += 1;
      }
    }
    return count;
  }

  /** See `HealthEmitter.listDeadLetters`: newest (most recently recorded) first. */
  listDeadLetters(group: string | undefined, limit: number | undefined): DeadLetter[] {
    const max = limit === undefined ? Infinity : Math.max(0, Math.floor(limit));
    const found: DeadLetter[] = [];
    for (let i = this.#deadLetters.length - 1; i >= 0 && found.length < max; i -= 1) {
      const letter = this.#deadLetters[i] as DeadLetter;
      if (group === undefined || letter.group === group) found.push(copy(letter));
    }
    return found;
  }

  /**
   * See `HealthEmitter.prune`. Only events every registered group has settled are deleted (all
   * of them when no group is registered): first those enqueued before `olderThan`, then, while
   * more than `maxEvents` events remain, the oldest settled ones.
   */
  prune(olderThan: Date, maxEvents: number): number {
    const cutoff = timeOf(olderThan, "olderThan");
    const max = Math.max(0, Math.floor(maxEvents));
    const groups = [...this.#groups.values()];
    const doomed: OutboxEntry[] = [];
    const settledSurvivors: OutboxEntry[] = [];
    for (const entry of this.#byPosition.values()) {
      if (!groups.every((group) => this.#settledFor(group, entry))) continue;
      if (entry.enqueuedAt < cutoff) doomed.push(entry);
      else settledSurvivors.push(entry);
    }
    let excess = this.#byPosition.size - doomed.length - max;
    for (const entry of settledSurvivors) {
      if (excess <= 0) break;
      doomed.push(entry);
      excess -= 1;
    }
    this.#delete(doomed);
    return doomed.length;
  }

  #delete(entries: readonly OutboxEntry[]): void {
    const touched = new Map<string, Set<OutboxEntry>>();
    for (const entry of entries) {
      this.#byPosition.delete(entry.position);
      this.#byEventId.delete(entry.event.eventId);
      const set = touched.get(entry.event.entityId) ?? new Set();
      set.add(entry);
      touched.set(entry.event.entityId, set);
    }
    for (const [entityId, removed] of touched) {
      const kept = (this.#byEntity.get(entityId) ?? []).filter((entry) => !removed.has(entry));
      if (kept.length > 0) {
        this.#byEntity.set(entityId, kept);
        continue;
      }
      // Nothing of the entity is retained, so its cursors say nothing a future event needs: its
      // sequences only grow. Dropping them keeps memory bounded by the retained outbox.
      this.#byEntity.delete(entityId);
      for (const group of this.#groups.values()) {
        group.cursors.delete(entityId);
        group.pending.delete(entityId);
      }
    }
  }

  #group(name: string): GroupState {
    const group = this.#groups.get(name);
    if (group === undefined) throw new Error(`memory adapter: unknown group ${JSON.stringify(name)} (call registerGroup first)`);
    return group;
  }

  #cursor(group: GroupState, entityId: string): Cursor {
    let cursor = group.cursors.get(entityId);
    if (cursor === undefined) {
      cursor = { settled: 0, attempts: 0, nextAttemptAt: 0, leaseOwner: null, leaseUntil: 0 };
      group.cursors.set(entityId, cursor);
    }
    return cursor;
  }

  /** The entity's lowest event not settled for the group, `undefined` when none. */
  #head(group: GroupState, entityId: string): OutboxEntry | undefined {
    const entries = this.#byEntity.get(entityId);
    if (entries === undefined) return undefined;
    const settled = group.cursors.get(entityId)?.settled ?? 0;
    for (let i = firstAfter(entries, settled, sequenceOf); i < entries.length; i += 1) {
      const entry = entries[i] as OutboxEntry;
      if (entry.position > group.start) return entry;
    }
    return undefined;
  }

  #settledFor(group: GroupState, entry: OutboxEntry): boolean {
    return entry.position <= group.start || entry.event.sequence <= (group.cursors.get(entry.event.entityId)?.settled ?? 0);
  }

  /** Settles `entry` (the head) and resets the cursor for the next head; returns whether one waits. */
  #settle(group: GroupState, entry: OutboxEntry): boolean {
    const cursor = this.#cursor(group, entry.event.entityId);
    cursor.settled = entry.event.sequence;
    cursor.attempts = 0;
    cursor.nextAttemptAt = 0;
    cursor.leaseOwner = null;
    cursor.leaseUntil = 0;
    if (this.#head(group, entry.event.entityId) !== undefined) return true;
    group.pending.delete(entry.event.entityId);
    return false;
  }
}
