/**
 * Why the applier could not write a webhook. Each keeps the error that caused
 * it (`cause`, e.g. the PostgreSQL error with its SQLSTATE); src/http maps
 * them to statuses.
 */

/** The database could not do the work now (down, timed out, failed otherwise); nothing was written. */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatabaseUnavailableError";
  }
}

/** A row the webhook must update stayed locked by another session past the lock timeout; nothing was written. */
export class LockTimeoutError extends DatabaseUnavailableError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockTimeoutError";
  }
}

/** Too many webhooks are waiting already; this one was not queued. */
export class QueueFullError extends DatabaseUnavailableError {
  constructor(message: string) {
    super(message);
    this.name = "QueueFullError";
  }
}

/** The webhook waited (queue plus statement) longer than its deadline; it may or may not be written. */
export class DeadlineExceededError extends DatabaseUnavailableError {
  constructor(message: string) {
    super(message);
    this.name = "DeadlineExceededError";
  }
}

/**
 * The database refused the event's data (SQLSTATE class 22 or 54, e.g. a
 * character the database's encoding cannot hold): retrying cannot help. The
 * token was spent all the same, bound to a hash of the event-data.
 */
export class DataRefusedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DataRefusedError";
  }
}
