import type { BackoffOptions } from "./fetch_with_backoff.ts";
import { countingBackoff, fetchPage } from "./fetch_page.ts";
import {
  type MailgunClientOptions,
  type MailgunEventSource,
  MAX_PAGES_PER_SCAN,
  RECONCILED_EVENTS,
} from "./mailgun_event_source.ts";
import { MailgunApiError } from "./reconcile_errors.ts";

/** Most events per page (Mailgun's maximum). */
const EVENTS_PAGE_LIMIT = 300;

/**
 * A client of Mailgun's Events API, `GET /v3/{domain}/events` (deprecated
 * by Mailgun in favour of the Logs API; kept behind `--api events` while
 * Mailgun serves it), filtered by the events that change a row over the
 * window, oldest first, following `paging.next` until an empty page (as
 * Mailgun documents it). Its items are the very event-data that webhooks
 * carry, with the same id and timestamp.
 */
export function createMailgunEventsClient(
  options: MailgunClientOptions & { backoff: BackoffOptions },
): MailgunEventSource {
  const base = new URL(options.baseUrl);
  const authorization = `Basic ${btoa(`api:${options.apiKey}`)}`;
  const counted = countingBackoff(options.backoff);

  async function getPage(url: string): Promise<{ items: Record<string, unknown>[]; next?: string }> {
    const headers = { authorization, accept: "application/json" };
    const { page, items } = await fetchPage(url, { headers }, counted.backoff, options.domain);
    const next = (page.paging as { next?: unknown } | undefined)?.next;
    return { items, next: typeof next === "string" ? next : undefined };
  }

  return {
    name: "Events API",
    api: "events",
    domain: options.domain,
    get requests() {
      return counted.requests();
    },
    async *scan(begin, end) {
      const first = new URL(`/v3/${encodeURIComponent(options.domain)}/events`, base);
      first.searchParams.set("event", RECONCILED_EVENTS.join(" OR "));
      first.searchParams.set("begin", String(Math.floor(begin.getTime() / 1000)));
      first.searchParams.set("end", String(Math.ceil(end.getTime() / 1000)));
      first.searchParams.set("ascending", "yes");
      first.searchParams.set("limit", String(EVENTS_PAGE_LIMIT));
      let url = first.href;
      for (let pages = 0;; pages++) {
        if (pages >= MAX_PAGES_PER_SCAN) {
          throw new MailgunApiError(`Mailgun kept paging past ${MAX_PAGES_PER_SCAN} pages.`, undefined, false);
        }
        const page = await getPage(url);
        if (page.items.length === 0 || page.next === undefined) {
          if (page.items.length > 0) yield page.items;
          return;
        }
        yield page.items;
        const next = new URL(page.next, base);
        // The API key goes only where the first request went.
        if (next.origin !== base.origin) {
          throw new MailgunApiError(`Mailgun's next page points at another host (${next.host}).`, undefined, true);
        }
        url = next.href;
      }
    },
  };
}
