import { CommitOutcomeUnknownError, isConnectionError, sqlState } from "./sql-client";

/** How a store transaction is retried after a transient failure. */
export interface TransactionRetryOptions {
  /** Attempts in all, the first included. @default 3 */
  readonly maxAttempts: number;
  /** Upper bound of the random delay before the first retry, doubled for each further one. @default 25 */
  readonly initialDelayMs: number;
  /** Cap of that upper bound. @default 1000 */
  readonly maxDelayMs: number;
}

export const DEFAULT_TRANSACTION_RETRY: TransactionRetryOptions = Object.freeze({ maxAttempts: 3, initialDelayMs: 25, maxDelayMs: 1000 });

/**
 * SQLSTATEs after which the server has rolled the transaction back and running it again may
 * succeed: serialization failure, deadlock detected, lock not available (`lock_timeout`).
 */
const RETRYABLE_STATES = new Set(["40001", "40P01", "55P03"]);

/**
 * Whether a failed transaction may simply be run again: the server rolled it back for a transient
 * reason, or the connection failed before COMMIT was sent. Never after an ambiguous COMMIT.
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof CommitOutcomeUnknownError) return false;
  const state = sqlState(error);
  if (state !== undefined && RETRYABLE_STATES.has(state)) return true;
  return isConnectionError(error);
}

/** Thrown once every attempt failed for a retryable reason; `cause` is the last failure. */
export class TransactionRetriesExhaustedError extends Error {
  readonly attempts: number;
  /** SQLSTATE of the last failure, when it had one. */
  readonly code: string | undefined;

  constructor(attempts: number, cause: unknown) {
    super(`transaction failed ${attempts} times; last error: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "TransactionRetriesExhaustedError";
    this.attempts = attempts;
    this.code = sqlState(cause);
  }
}

/**
 * Runs `attempt` until it resolves, it rejects with a non-retryable error (rethrown as is), or
 * `maxAttempts` retryable failures happened. Delays use full jitter: uniform in
 * `[0, min(maxDelayMs, initialDelayMs · 2^(n−1))]`.
 */
export async function withRetry<T>(options: TransactionRetryOptions, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!isRetryable(error)) throw error;
      if (n >= options.maxAttempts) throw new TransactionRetriesExhaustedError(n, error);
      const cap = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** (n - 1));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
    }
  }
}
