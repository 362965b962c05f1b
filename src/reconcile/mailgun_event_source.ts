/** Mailgun's API, by region (the Events and the Logs API share the hosts). */
export const MAILGUN_API_BASE_URLS = {
  us: "https://api.mailgun.net",
  eu: "https://api.eu.mailgun.net",
} as const;

/** The events that can change a row; the others are ignored by the webhook too. */
export const RECONCILED_EVENTS = ["delivered", "failed", "complained"] as const;

/**
 * A bound on the pages of one scan, against a paging that never ends: at
 * 100 events a page, a million events (a month of a large sender).
 */
export const MAX_PAGES_PER_SCAN = 10_000;

/** Reads a time window of the domain's events from one of Mailgun's read APIs. */
export interface MailgunEventSource {
  /** For the report: "Logs API" or "Events API". */
  readonly name: string;
  /** Which API, as RECONCILE_API names it: each keeps its own watermark. */
  readonly api: "logs" | "events";
  /** The sending domain read. */
  readonly domain: string;
  /**
   * The `delivered`, `failed` and `complained` events of the domain between
   * `begin` and `end`, oldest first, page by page, each as the event-data a
   * webhook would carry (same `id`, a `timestamp` in seconds, the same
   * `message.headers["message-id"]`). Throws a MailgunApiError.
   */
  scan(begin: Date, end: Date): AsyncGenerator<Record<string, unknown>[]>;
  /** Requests sent so far, retries included. */
  readonly requests: number;
}

/** Where and how to reach Mailgun. */
export interface MailgunClientOptions {
  /** E.g. https://api.mailgun.net (US) or https://api.eu.mailgun.net (EU). */
  baseUrl: string;
  apiKey: string;
  domain: string;
}

/** The JSON objects of a page's `items`; anything else in it is dropped. */
export function objectItems(items: unknown[]): Record<string, unknown>[] {
  return items.filter((item): item is Record<string, unknown> =>
    typeof item === "object" && item !== null && !Array.isArray(item)
  );
}
