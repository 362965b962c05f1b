import { SignatureExpiredError } from "../apply/signature_expired_error.ts";
import { TokenReusedError } from "../apply/token_reused_error.ts";
import { DeadlineExceededError, QueueFullError } from "../batch_writer/batch_writer_errors.ts";
import { DatabaseUnavailableError, DataRefusedError, HostSchemaRefusedError } from "../db/database_errors.ts";
import { MalformedBodyError, SignatureError, UnusableEventError } from "../mailgun/mailgun_errors.ts";
import type { FailureCause, Outcome } from "../reporting/webhook_report.ts";
import { BodyTooLargeError, SlowBodyError, UnreadableBodyError } from "./body_errors.ts";

/** What an error tells Mailgun: 406 means "never retry", every other non-200 is retried for about 8 hours. */
interface ErrorStatus {
  status: number;
  outcome: Outcome;
  /** Safe to show the caller. */
  message: string;
}

// deno-lint-ignore no-explicit-any
type ErrorClass = abstract new (...args: any[]) => Error;

/**
 * The one table from failures to statuses, first match wins. A `message`
 * replaces the error's own where that would say more than the caller should read.
 */
const STATUS_TABLE: { error: ErrorClass; status: number; outcome: Outcome; message?: string }[] = [
  { error: MalformedBodyError, status: 400, outcome: "bad_request" },
  { error: UnreadableBodyError, status: 400, outcome: "bad_request" },
  { error: SignatureError, status: 401, outcome: "unauthorized" },
  // Older than what any instance may have pruned: refused like a signature out of the window.
  { error: SignatureExpiredError, status: 401, outcome: "unauthorized" },
  // The token was spent with another body: a replay or a captured signature. Nothing is written.
  { error: TokenReusedError, status: 401, outcome: "replayed" },
  { error: UnusableEventError, status: 406, outcome: "unacceptable" },
  // Retrying the same data cannot help; its token was spent all the same. Only for the event's own
  // characters or size: a refusal by the API's schema is a HostSchemaRefusedError (503) below.
  {
    error: DataRefusedError,
    status: 406,
    outcome: "unacceptable",
    message: "event-data cannot be stored by the database.",
  },
  { error: SlowBodyError, status: 408, outcome: "timeout" },
  { error: BodyTooLargeError, status: 413, outcome: "too_large" },
  // The API's schema refused a status: nothing was written, the token is unspent, Mailgun retries
  // until the schema is fixed. Never 406: the event is fine and would be lost.
  {
    error: HostSchemaRefusedError,
    status: 503,
    outcome: "schema_refused",
    message: "The database schema refused this event's status; retry later.",
  },
  { error: QueueFullError, status: 503, outcome: "unavailable" },
  { error: DeadlineExceededError, status: 503, outcome: "unavailable" },
  // LockTimeoutError included. Nothing was written: one transaction, so Mailgun's retry is safe.
  { error: DatabaseUnavailableError, status: 503, outcome: "unavailable" },
];

/**
 * The status, outcome and message of a failed webhook. Anything not in the
 * table is a bug: answered 503 too (the write is one transaction, so nothing
 * is half-written and Mailgun's retry is safe; a 500 would tell Mailgun no more).
 */
export function errorStatus(error: unknown): ErrorStatus {
  for (const entry of STATUS_TABLE) {
    if (error instanceof entry.error) {
      return { status: entry.status, outcome: entry.outcome, message: entry.message ?? error.message };
    }
  }
  return { status: 503, outcome: "internal_error", message: "Unexpected error; retry later." };
}

/** SQLSTATEs of a database whose schema is missing or behind: `deno task migrate` was not run. */
const SCHEMA_CODES = new Set(["42P01", "42883", "42703"]);

/**
 * What the report says of a failure's cause: the first code (SQLSTATE or
 * driver code) along the `cause` chain, with its message; for an error the
 * table does not know, its name and stack, as a bug. Undefined when there is
 * nothing to add to the error's own message.
 */
export function failureCause(error: unknown): FailureCause | undefined {
  const known = STATUS_TABLE.some((entry) => error instanceof entry.error);
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string") {
      return {
        code,
        message: cause.message,
        hint: SCHEMA_CODES.has(code)
          ? "The database schema is missing or old: run `deno task migrate`."
          : error instanceof HostSchemaRefusedError
          ? "The API's schema refuses a value the service writes: see the `host schema` lines of the log for what to change."
          : undefined,
      };
    }
  }
  if (known) return undefined;
  const bug = error instanceof Error ? error : new Error(String(error));
  return { bug: bug.name, message: bug.message, stack: bug.stack };
}

/** A JSON response; Mailgun only reads the status. */
export function jsonResponse(status: number, body: unknown, headers?: HeadersInit): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
