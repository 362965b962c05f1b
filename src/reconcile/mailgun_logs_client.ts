import type { BackoffOptions } from "./fetch_with_backoff.ts";
import { countingBackoff, fetchPage } from "./fetch_page.ts";
import {
  type MailgunClientOptions,
  type MailgunEventSource,
  MAX_PAGES_PER_SCAN,
  RECONCILED_EVENTS,
} from "./mailgun_event_source.ts";
import { logsItemToEventData } from "./logs_item.ts";
import { MailgunApiError } from "./reconcile_errors.ts";

/** Items per page: the most Mailgun's SDKs document for the Logs API. */
export const LOGS_PAGE_LIMIT = 100;

/**
 * A client of Mailgun's Logs API, `POST /v1/analytics/logs`: one JSON query
 * for the window (`start`/`end` in RFC 2822, the reconciled `events`, a
 * `domain` filter, oldest first), then the same query with the page's
 * `pagination.next` as `pagination.token`, until a page comes back empty or
 * without a next token. Each item becomes the event-data a webhook carries
 * (see logsItemToEventData).
 */
export function createMailgunLogsClient(
  options: MailgunClientOptions & { backoff: BackoffOptions },
): MailgunEventSource {
  const url = new URL("/v1/analytics/logs", options.baseUrl).href;
  const authorization = `Basic ${btoa(`api:${options.apiKey}`)}`;
  const counted = countingBackoff(options.backoff);

  async function getPage(query: unknown): Promise<{ items: Record<string, unknown>[]; next?: string }> {
    const { page, items } = await fetchPage(
      url,
      {
        method: "POST",
        headers: { authorization, accept: "application/json", "content-type": "application/json" },
        body: JSON.stringify(query),
      },
      counted.backoff,
      options.domain,
    );
    const next = (page.pagination as { next?: unknown } | undefined)?.next;
    return { items, next: typeof next === "string" && next !== "" ? next : undefined };
  }

  return {
    name: "Logs API",
    api: "logs",
    domain: options.domain,
    get requests() {
      return counted.requests();
    },
    async *scan(begin, end) {
      const query = {
        start: rfc2822(new Date(Math.floor(begin.getTime() / 1000) * 1000)),
        end: rfc2822(new Date(Math.ceil(end.getTime() / 1000) * 1000)),
        events: [...RECONCILED_EVENTS],
        filter: {
          AND: [{ attribute: "domain", comparator: "=", values: [{ label: options.domain, value: options.domain }] }],
        },
        // The domain filter keeps the scan to our domain; with a parent account's key, its subaccounts' too.
        include_subaccounts: true,
        pagination: { sort: "timestamp:asc", limit: LOGS_PAGE_LIMIT } as Record<string, unknown>,
      };
      const seen = new Set<string>();
      for (let pages = 0;; pages++) {
        if (pages >= MAX_PAGES_PER_SCAN) {
          throw new MailgunApiError(`Mailgun kept paging past ${MAX_PAGES_PER_SCAN} pages.`, undefined, false);
        }
        const page = await getPage(query);
        if (page.items.length > 0) yield page.items.map(logsItemToEventData);
        if (page.items.length === 0 || page.next === undefined) return;
        // A token answered twice would page forever.
        if (seen.has(page.next)) throw new MailgunApiError("Mailgun answered the same page token twice.", 200, false);
        seen.add(page.next);
        query.pagination = { ...query.pagination, token: page.next };
      }
    },
  };
}

/** `Mon, 08 Jul 2024 00:00:00 +0000`: the form Mailgun's Logs API documents. */
export function rfc2822(date: Date): string {
  return date.toUTCString().replace(/GMT$/, "+0000");
}
