/** A row's email status. The order a row climbs them in is the database's (`mailgun_webhook.status_rank` in migrations/). */
type EmailStatus = "SENT" | "DELIVERED" | "FAILED" | "COMPLAINED";

/** An entry type in the audit trail. */
type EmailEventType = "EMAIL_DELIVERED" | "EMAIL_FAILED" | "EMAIL_TEMP_FAILED" | "EMAIL_COMPLAINED";

/** What one Mailgun event does to a row. */
export interface EventEffect {
  type: EmailEventType;
  /** The status to climb to; null leaves the status as it is. */
  status: EmailStatus | null;
}

/**
 * Maps a Mailgun event name (and, for `failed`, its severity) to its effect.
 * Returns null for events this service ignores; throws for a `failed` event
 * whose severity is neither permanent nor temporary.
 */
export function mapEvent(event: string, severity: unknown): EventEffect | null {
  switch (event) {
    case "delivered":
      return { type: "EMAIL_DELIVERED", status: "DELIVERED" };
    case "complained":
      return { type: "EMAIL_COMPLAINED", status: "COMPLAINED" };
    case "failed":
      if (severity === "permanent") return { type: "EMAIL_FAILED", status: "FAILED" };
      if (severity === "temporary") return { type: "EMAIL_TEMP_FAILED", status: null };
      throw new RangeError(`Failed event has severity ${JSON.stringify(severity)}, not permanent or temporary.`);
    default:
      return null;
  }
}
