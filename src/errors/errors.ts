/**
 * One problem found while validating an input: where it is (`path`, as zod reports it, with the
 * index of a run in a batch first) and what is wrong (`message`).
 */
export interface ConfigurationIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Stable, documented error codes. They never change meaning between releases. */
export const HEALTH_ERROR_CODES = {
  validation: "ERR_HEALTH_VALIDATION",
  conflict: "ERR_HEALTH_CONFLICT",
  notFound: "ERR_HEALTH_NOT_FOUND",
  store: "ERR_HEALTH_STORE",
  closed: "ERR_HEALTH_CLOSED",
} as const;

/**
 * The input was malformed or does not fit the topology. Carries every problem found at once;
 * nothing was written.
 */
export class ValidationError extends Error {
  readonly type = "validation" as const;
  readonly code = HEALTH_ERROR_CODES.validation;
  readonly issues: readonly ConfigurationIssue[];

  constructor(issues: readonly ConfigurationIssue[], message?: string) {
    super(message ?? summarizeIssues(issues));
    this.name = "ValidationError";
    this.issues = issues;
  }
}

/** The operation contradicts stored state (for example a maintenance window that already ended). */
export class ConflictError extends Error {
  readonly type = "conflict" as const;
  readonly code = HEALTH_ERROR_CODES.conflict;

  constructor(message: string) {
    super(message);
    this.name = "ConflictError";
  }
}

/** A record the operation needs does not exist (for example an unknown maintenance id). */
export class NotFoundError extends Error {
  readonly type = "not_found" as const;
  readonly code = HEALTH_ERROR_CODES.notFound;

  constructor(message: string) {
    super(message);
    this.name = "NotFoundError";
  }
}

/**
 * An adapter (store, lock or emitter) failed. `operation` names the engine operation, `cause` is
 * what the adapter rejected with. For a durable adapter nothing of the failed call was committed.
 */
export class StoreError extends Error {
  readonly type = "store" as const;
  readonly code = HEALTH_ERROR_CODES.store;
  readonly operation: string;

  constructor(operation: string, cause: unknown) {
    super(`${operation} failed: ${describeCause(cause)}`, { cause });
    this.name = "StoreError";
    this.operation = operation;
  }
}

/** The engine was closed; no further operation is accepted. */
export class ClosedError extends Error {
  readonly type = "closed" as const;
  readonly code = HEALTH_ERROR_CODES.closed;

  constructor(operation: string) {
    super(`${operation} called after close()`);
    this.name = "ClosedError";
  }
}

/** Every error a public operation can return, discriminated on `type`, each with a stable `code`. */
export type HealthError = ValidationError | ConflictError | NotFoundError | StoreError | ClosedError;

/** A `ValidationError` with a single issue. */
export function validationError(path: readonly (string | number)[], message: string): ValidationError {
  return new ValidationError([{ path, message }]);
}

function summarizeIssues(issues: readonly ConfigurationIssue[]): string {
  const shown = issues
    .slice(0, 5)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message));
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : "";
  return `invalid input: ${shown.join("; ")}${more}`;
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}

/** Whether `error` is one of the typed errors above (what the engine hands out as it is). */
export function isHealthError(error: unknown): error is HealthError {
  return (
    error instanceof ValidationError ||
    error instanceof ConflictError ||
    error instanceof NotFoundError ||
    error instanceof StoreError ||
    error instanceof ClosedError
  );
}
