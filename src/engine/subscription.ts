import type { HealthEvent } from "../events";
import type { ClaimedEvent } from "../ports";
import { backoffDelay, type ResolvedOptions } from "./options";

/** Receives one event. A throw or a rejection means "not acknowledged": it is retried. */
export type HealthEventHandler = (event: HealthEvent) => void | Promise<void>;

/**
 * One subscription's delivery loop: claims deliverable events of its group (one per entity at a
 * time, so per-entity order holds), hands each to the handler without waiting for the others,
 * acknowledges on success and schedules a retry with backoff on failure. It wakes on local
 * commits, on the emitter's availability hint, and on a poll interval (the guarantee, for events
 * committed by other processes).
 *
 * A delivery holds one of the `concurrency` slots until its handler settles or its lease
 * (`leaseMs`) runs out, whichever comes first. A handler still running when the lease runs out
 * has failed this attempt: it is recorded as a failure (retried with backoff, a dead letter after
 * `maxAttempts`) and the slot is freed, so a handler that hangs can neither take every slot and
 * stall the other entities nor keep `stop` waiting longer than a lease. The hung call is left to
 * finish: if it succeeds its acknowledgement still settles the event; if it fails, nothing more
 * is recorded.
 */
export class Subscription {
  private stopped = false;
  /**
   * Deliveries holding a slot: each settles when its handler is done, or when its lease ran out
   * and that failure reached the emitter.
   */
  private inFlight = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  private pendingWake = false;
  private readonly loopDone: Promise<void>;
  private readonly consumerId: string;
  private markRegistered: () => void = () => undefined;
  /** Whether `registered` has resolved. */
  registrationSettled = false;
  /**
   * Resolves once the first attempt to register the group has settled (or the subscription
   * stopped first). The engine's writes wait for it, so that `subscribe(…, { from: "now" })`
   * followed by a write always delivers that write's events.
   */
  readonly registered: Promise<void> = new Promise<void>((resolve) => (this.markRegistered = resolve)).then(() => {
    this.registrationSettled = true;
  });

  constructor(
    private readonly options: ResolvedOptions,
    readonly group: string,
    private readonly handler: HealthEventHandler,
    private readonly from: "oldest" | "now",
    consumerId: string,
  ) {
    this.consumerId = consumerId;
    this.loopDone = this.loop();
  }

  /** Asks the loop to look for deliverable events now. */
  kick(): void {
    this.pendingWake = true;
    this.wake?.();
  }

  /** Stops claiming, waits for deliveries in flight to settle (each at most until its lease runs out). Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await this.loopDone;
    this.markRegistered();
    await Promise.allSettled([...this.inFlight]);
  }

  private async loop(): Promise<void> {
    const { emitter, delivery, clock } = this.options;
    let registered = false;
    for (let round = 0; !this.stopped; round += 1) {
      // One turn of the event loop per round after the first (which registers the group at once):
      // with an adapter whose calls settle as microtasks (the memory adapter) and handlers that do
      // not wait on I/O, draining a backlog would otherwise let no timer or I/O of the host process
      // run until the backlog is empty.
      if (round > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.stopped) break;
      try {
        if (!registered) {
          try {
            await emitter.registerGroup({ group: this.group, from: this.from });
            registered = true;
          } finally {
            // Writers wait for the first attempt only: a failing store must not hang them.
            this.markRegistered();
          }
        }
        const capacity = delivery.concurrency - this.inFlight.size;
        const claimed =
          capacity > 0
            ? await emitter.claim({
                group: this.group,
                consumerId: this.consumerId,
                limit: capacity,
                leaseMs: delivery.leaseMs,
                now: clock(),
              })
            : [];
        for (const item of claimed) this.track(item);
        if (claimed.length > 0 && claimed.length === capacity) continue;
      } catch (error) {
        this.options.onBackgroundError(error);
      }
      await this.sleep(delivery.pollIntervalMs);
    }
  }

  private track(item: ClaimedEvent): void {
    const attempt: AttemptState = { handled: false, leaseOut: undefined };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const leaseOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        // A handler that settled is being acknowledged or failed: that takes its course.
        if (attempt.handled) return;
        attempt.leaseOut = this.recordFailure(item, new Error(`the handler did not settle within leaseMs (${this.options.delivery.leaseMs} ms)`));
        resolve();
      }, this.options.delivery.leaseMs);
      timer.unref?.();
    });
    // Settles when the handler is done or the lease ran out, and then not before a lease-out
    // failure reached the emitter (even if the hung handler succeeded meanwhile): `stop` waits for
    // it before the caller may close the emitter.
    const slot: Promise<void> = Promise.race([this.deliver(item, attempt), leaseOut]).then(() => attempt.leaseOut).finally(() => {
      clearTimeout(timer);
      this.inFlight.delete(slot);
      this.kick();
    });
    this.inFlight.add(slot);
  }

  private async deliver(item: ClaimedEvent, attempt: AttemptState): Promise<void> {
    let failure: unknown;
    try {
      await this.handler(structuredClone(item.event));
    } catch (error) {
      failure = error ?? new Error("handler failed");
    }
    attempt.handled = true;
    if (failure === undefined) {
      try {
        await this.options.emitter.ack({ group: this.group, eventIds: [item.event.eventId] });
      } catch (error) {
        // The lease expires and the event is delivered again: at least once, never lost.
        this.options.onBackgroundError(error);
      }
      return;
    }
    // Past its lease, the attempt was recorded as failed already.
    if (attempt.leaseOut === undefined) await this.recordFailure(item, failure);
  }

  /** Records a failed attempt: a retry after backoff, or a dead letter after `maxAttempts`. */
  private async recordFailure({ event, attempt }: ClaimedEvent, failure: unknown): Promise<void> {
    const { emitter, clock, retry, delivery } = this.options;
    try {
      const now = clock();
      const delayMs = backoffDelay(attempt, retry);
      const deadLetter = attempt >= delivery.maxAttempts;
      await emitter.fail({
        group: this.group,
        eventId: event.eventId,
        consumerId: this.consumerId,
        attempt,
        error: describeFailure(failure),
        retryAt: new Date(now.getTime() + delayMs),
        deadLetter,
        now,
      });
      if (!deadLetter) this.wakeAfter(delayMs);
    } catch (error) {
      // The lease expires and the event is delivered again: at least once, never lost.
      this.options.onBackgroundError(error);
    }
  }

  /** Wakes the loop when a scheduled retry becomes due, sooner than the poll interval would. */
  private wakeAfter(ms: number): void {
    if (ms >= this.options.delivery.pollIntervalMs) return;
    const timer = setTimeout(() => this.kick(), ms + 1);
    timer.unref?.();
  }

  private sleep(ms: number): Promise<void> {
    if (this.pendingWake || this.stopped) {
      this.pendingWake = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      // Idle polling must not keep the process alive; flush() holds it open while it waits.
      timer.unref?.();
      const wake = () => done();
      this.wake = wake;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    }).then(() => {
      this.wake = undefined;
      this.pendingWake = false;
    });
  }
}

/** One delivery attempt: whether its handler settled, and the failure recorded when its lease ran out first. */
interface AttemptState {
  handled: boolean;
  leaseOut: Promise<void> | undefined;
}

function describeFailure(failure: unknown): string {
  if (failure instanceof Error) return failure.message;
  if (typeof failure === "string") return failure;
  try {
    return JSON.stringify(failure) ?? "handler failed";
  } catch {
    return "handler failed";
  }
}
