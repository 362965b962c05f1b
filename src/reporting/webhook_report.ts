/** What happened to one webhook; logged and counted. The first four are the 200s (see AppliedOutcome). */
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
  /** The API's schema refused a status (a narrow column, a CHECK, an enum): 503, retried. */
  | "schema_refused"
  /** A bug (TypeError, ...), not an outage; answered 503 all the same. */
  | "internal_error";

/** What a failed webhook's report says of its cause: the database's code and message, or a bug's stack. */
export interface FailureCause {
  /** SQLSTATE or driver code (e.g. `55P03`, `ECONNREFUSED`). */
  code?: string;
  /** The database's (or driver's, or bug's) own message. */
  message?: string;
  /** Set for a programming error: its name (TypeError, ...). */
  bug?: string;
  stack?: string;
  /** What an operator should do. */
  hint?: string;
}

/** One handled webhook, as the HTTP edge learned it: its status, its outcome, and what to report. */
export interface WebhookReport {
  status: number;
  outcome: Outcome;
  /** Why it was refused; safe to show the caller. */
  message?: string;
  eventId?: string;
  event?: string;
  /** The event's Message-ID, without angle brackets: it names a message, not a person. */
  messageId?: string;
  rows?: number;
  /** Which configured signing key verified it, by position (never its value). */
  keyIndex?: number;
  /** True when the subaccount's parent-signature verified. */
  parentKey?: boolean;
  cause?: FailureCause;
}
