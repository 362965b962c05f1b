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
  | "unavailable";

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
 * The one place where errors become responses. Anything unexpected becomes a
 * 503: the work is one transaction, so nothing is half-written and Mailgun's
 * retry is safe, whereas a 500 would tell nothing more.
 */
export function errorStatus(error: unknown): { status: number; outcome: Outcome; message: string } {
  if (error instanceof HttpError) return { status: error.status, outcome: error.outcome, message: error.message };
  return { status: 503, outcome: "unavailable", message: "Unexpected error; retry later." };
}
