import type { PGliteLike, PgPoolClientLike, PgPoolLike } from "./sql-client";

/** A running subscription to the outbox channel. */
interface ListenSource {
  close(): Promise<void>;
}

/** Starts a subscription that calls `onNotify` for each notification (and after each reconnect). */
export type ListenStarter = (onNotify: () => void) => ListenSource;

/**
 * The `onAvailable` hints of one adapter: listeners registered by engines, woken by NOTIFY on the
 * outbox channel (from any process) and by this process' own commits, acks and failures. Calls
 * are coalesced per microtask; a throwing listener is ignored. The notification source runs only
 * while at least one listener is registered.
 */
export class AvailabilityHub {
  readonly #listeners = new Set<{ readonly listener: () => void }>();
  readonly #start: ListenStarter | undefined;
  #source: ListenSource | undefined;
  #scheduled = false;
  #closed = false;

  constructor(start: ListenStarter | undefined) {
    this.#start = start;
  }

  add(listener: () => void): () => void {
    if (this.#closed) return () => undefined;
    const registration = { listener };
    this.#listeners.add(registration);
    if (this.#source === undefined && this.#start !== undefined) this.#source = this.#start(() => this.notify());
    return () => {
      if (!this.#listeners.delete(registration) || this.#listeners.size > 0) return;
      const source = this.#source;
      this.#source = undefined;
      void source?.close();
    };
  }

  /** Schedules one call of every listener. */
  notify(): void {
    if (this.#scheduled || this.#closed || this.#listeners.size === 0) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.#closed) return;
      for (const { listener } of [...this.#listeners]) {
        try {
          listener();
        } catch {
          // A hint only: the engine polls as well.
        }
      }
    });
  }

  /** Drops every listener and stops the notification source. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    const source = this.#source;
    this.#source = undefined;
    await source?.close();
  }
}

/** Reconnect delays of the LISTEN connection: doubling from 250 ms, capped at 30 s. */
const RECONNECT_INITIAL_MS = 250;
const RECONNECT_MAX_MS = 30_000;

/**
 * LISTEN on a connection of its own, checked out of the caller's pool and held while the source
 * runs (it counts against the pool's `max`). A lost connection is destroyed and replaced with
 * backoff; every (re)connect wakes the listeners once, since notifications may have been missed.
 */
export function pgListen(
  pool: PgPoolLike,
  channel: string,
  quotedChannel: string,
  onError: (error: unknown) => void,
): ListenStarter {
  return (onNotify) => {
    let closed = false;
    let client: PgPoolClientLike | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = RECONNECT_INITIAL_MS;
    let connecting: Promise<void> | undefined;

    const schedule = () => {
      if (closed || timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        connecting = connect();
      }, delay);
      timer.unref?.();
      delay = Math.min(RECONNECT_MAX_MS, delay * 2);
    };

    const lost = (lostClient: PgPoolClientLike, error: Error) => {
      if (client !== lostClient) return;
      client = undefined;
      lostClient.release(error);
      onError(error);
      schedule();
    };

    const connect = async () => {
      let candidate: PgPoolClientLike | undefined;
      try {
        candidate = await pool.connect();
        const current = candidate;
        // A checked-out client without an 'error' listener would crash the process on a lost socket.
        current.on("error", (error) => lost(current, error));
        current.on("end", () => lost(current, new Error("LISTEN connection ended")));
        current.on("notification", (message) => {
          if (message.channel === channel) onNotify();
        });
        client = current;
        await current.query(`LISTEN ${quotedChannel}`);
        if (closed) {
          client = undefined;
          current.release(true);
          return;
        }
        delay = RECONNECT_INITIAL_MS;
        onNotify();
      } catch (error) {
        if (candidate !== undefined && client === candidate) {
          client = undefined;
          candidate.release(error instanceof Error ? error : true);
        }
        if (closed) return;
        onError(error);
        schedule();
      }
    };

    connecting = connect();
    return {
      close: async () => {
        closed = true;
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        await connecting;
        const current = client;
        client = undefined;
        // Destroyed rather than returned: a pooled connection must not keep listening.
        current?.release(true);
      },
    };
  };
}

/** PGlite's in-process LISTEN (its one connection). */
export function pgliteListen(db: PGliteLike, channel: string, onError: (error: unknown) => void): ListenStarter {
  return (onNotify) => {
    let closed = false;
    const unlisten: Promise<(() => Promise<void>) | undefined> = db.listen(channel, () => onNotify()).then(
      async (stop) => {
        if (!closed) return stop;
        await stop().catch(onError);
        return undefined;
      },
      (error: unknown) => {
        onError(error);
        return undefined;
      },
    );
    return {
      close: async () => {
        closed = true;
        const stop = await unlisten;
        if (stop !== undefined) await stop().catch(onError);
      },
    };
  };
}
