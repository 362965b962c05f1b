import { DatabaseUnavailableError, DataRefusedError } from "../apply/apply_errors.ts";

/**
 * The few ways a webhook can fail, each with the status that tells Mailgun
 * what to do next: 406 means "never retry", every other non-200 is retried.
 */

/** What happened to one webhook; logged and counted. */
export type Outcome =
  | "applied"
  | "duplicate"
  | "unmatched"
  | "ignored"
  | "bad_request"
  | "unauthorized"
  | "replayed"
  | "unacceptable"
  | "too_large"
  | "timeout"
  | "unavailable"
  /** A bug (TypeError, ...), not an outage; answered 503 all the same. */
  | "internal_error";

/** An error that ends a request with a known status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: Outcome,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** The body is not JSON: 400. */
export class BadRequestError extends HttpError {
  constructor(message: string) {
    super(400, "bad_request", message);
  }
}

/** No valid signature, or a replayed token: 401, nothing written. */
export class UnauthorizedError extends HttpError {
  constructor(message: string, outcome: "unauthorized" | "replayed" = "unauthorized") {
    super(401, outcome, message);
  }
}

/** Signed, but the event-data can never be used: 406, Mailgun stops retrying. */
export class NotAcceptableError extends HttpError {
  constructor(message: string) {
    super(406, "unacceptable", message);
  }
}

/** The body was too slow to arrive: 408, retried. */
export class RequestTimeoutError extends HttpError {
  constructor(message: string) {
    super(408, "timeout", message);
  }
}

/** The body is over the limit: 413. */
export class PayloadTooLargeError extends HttpError {
  constructor(message: string) {
    super(413, "too_large", message);
  }
}

/** The database could not do the work now: 503, nothing written, retried. */
export class UnavailableError extends HttpError {
  constructor(message: string) {
    super(503, "unavailable", message);
  }
}

/** A JSON response; Mailgun only reads the status. */
export function jsonResponse(status: number, body: unknown, headers?: HeadersInit): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * The one place where errors become responses. The applier's errors: the
 * database refusing the data is a 406 (token spent), the database unable to
 * do the work now a 503. Anything unexpected (a bug) is a 503 too: the work is
 * one transaction, so nothing is half-written and Mailgun's retry is safe,
 * whereas a 500 would tell nothing more.
 */
export function errorStatus(error: unknown): { status: number; outcome: Outcome; message: string } {
  if (error instanceof HttpError) return { status: error.status, outcome: error.outcome, message: error.message };
  if (error instanceof DataRefusedError) {
    return { status: 406, outcome: "unacceptable", message: "event-data cannot be stored by the database." };
  }
  if (error instanceof DatabaseUnavailableError) return { status: 503, outcome: "unavailable", message: error.message };
  return { status: 503, outcome: "internal_error", message: "Unexpected error; retry later." };
}

/** SQLSTATEs of a database whose schema is missing or behind: `deno task migrate` was not run. */
const SCHEMA_CODES = new Set(["42P01", "42883", "42703"]);

/** What a failed webhook's log line says about its error: the database's code and message, or a bug's stack. */
export interface ErrorDetails {
  /** SQLSTATE or driver code (e.g. `55P03`, `ECONNREFUSED`). */
  errorCode?: string;
  /** The database's (or driver's) own message. */
  errorMessage?: string;
  /** Set for a programming error: its name (TypeError, ...). */
  bug?: string;
  stack?: string;
  /** What an operator should do. */
  hint?: string;
}

/**
 * Finds the database error along the `cause` chain. An error that is neither
 * an HttpError, an applier error nor a database error is a bug.
 */
export function errorDetails(error: unknown): ErrorDetails {
  if (error instanceof HttpError) return {};
  if (!(error instanceof DatabaseUnavailableError) && !(error instanceof DataRefusedError)) {
    const code = (error as { code?: unknown })?.code;
    if (typeof code === "string") return databaseDetails(error as { code: string; message?: unknown });
    const bug = error instanceof Error ? error : new Error(String(error));
    return { bug: bug.name, errorMessage: bug.message, stack: bug.stack };
  }
  for (let cause: unknown = error.cause; cause !== undefined && cause !== null; cause = (cause as Error).cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string") return databaseDetails(cause as { code: string; message?: unknown });
    if (!(cause instanceof Error)) break;
  }
  return {};
}

function databaseDetails(error: { code: string; message?: unknown }): ErrorDetails {
  return {
    errorCode: error.code,
    errorMessage: typeof error.message === "string" ? error.message : undefined,
    hint: SCHEMA_CODES.has(error.code) ? "The database schema is missing or old: run `deno task migrate`." : undefined,
  };
}
