import { classifyError } from "./classify_error.ts";

/**
 * How the database can fail a write, each keeping the error that caused it
 * (`cause`: the PostgreSQL or driver error, with its SQLSTATE in `code`).
 */

/** The database could not do the work now (down, timed out, failed otherwise); nothing was written. */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatabaseUnavailableError";
  }
}

/** A row the write must update stayed locked by another session past the lock timeout; nothing was written. */
export class LockTimeoutError extends DatabaseUnavailableError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockTimeoutError";
  }
}

/**
 * The database refused the event's data (SQLSTATE class 22 or 54, e.g. a
 * character the database's encoding cannot hold): retrying cannot help.
 */
export class DataRefusedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DataRefusedError";
  }
}

/**
 * What a failed statement means for the write: a lock timeout, or an
 * unavailable database, keeping the driver's error as `cause`. An error with
 * no SQLSTATE or driver code is not the database's: a bug, returned as it is,
 * to be reported with its stack.
 */
export function toDatabaseError(error: unknown): unknown {
  if (error instanceof DatabaseUnavailableError || error instanceof DataRefusedError) return error;
  if (typeof (error as { code?: unknown })?.code !== "string") return error;
  if (classifyError(error) === "lock") {
    return new LockTimeoutError("A row this write updates stayed locked by another session; retry later.", {
      cause: error,
    });
  }
  return new DatabaseUnavailableError("Database is unavailable; retry later.", { cause: error });
}

/**
 * The database did not answer within a bound the caller set (a connect, or
 * one statement): down, unreachable, or a network that drops packets.
 */
export class DatabaseTimeoutError extends DatabaseUnavailableError {
  /** `host:port` of the database (never a password). */
  readonly host: string;
  readonly timeoutMs: number;
  constructor(host: string, timeoutMs: number, what: string) {
    super(`The database at ${host} did not answer ${what} within ${formatSeconds(timeoutMs)}.`);
    this.name = "DatabaseTimeoutError";
    this.host = host;
    this.timeoutMs = timeoutMs;
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
