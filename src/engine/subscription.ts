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
 */
export class Subscription {
  private stopped = false;
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

  /** Stops claiming, waits for deliveries in flight to settle. Idempotent. */
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
    while (!this.stopped) {
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
        for (const item of claimed) this.track(this.deliver(item));
        if (claimed.length > 0 && claimed.length === capacity) continue;
      } catch (error) {
        this.options.onBackgroundError(error);
      }
      await this.sleep(delivery.pollIntervalMs);
    }
  }

  private track(delivery: Promise<void>): void {
    this.inFlight.add(delivery);
    void delivery.finally(() => {
      this.inFlight.delete(delivery);
      this.kick();
    });
  }

  private async deliver({ event, attempt }: ClaimedEvent): Promise<void> {
    const { emitter, clock, retry, delivery } = this.options;
    let failure: unknown;
    try {
      await this.handler(structuredClone(event));
    } catch (error) {
      failure = error ?? new Error("handler failed");
    }
    try {
      if (failure === undefined) {
        await emitter.ack({ group: this.group, eventIds: [event.eventId] });
        return;
      }
      const now = clock();
      const delayMs = backoffDelay(attempt, retry);
      const deadLetter = attempt >= delivery.maxAttempts;
      await emitter.fail({
        group: this.group,
        eventId: event.eventId,
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

function describeFailure(failure: unknown): string {
  if (failure instanceof Error) return failure.message;
  if (typeof failure === "string") return failure;
  try {
    return JSON.stringify(failure) ?? "handler failed";
  } catch {
    return "handler failed";
  }
}
