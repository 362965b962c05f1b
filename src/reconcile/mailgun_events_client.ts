import { bareMessageId } from "../mailgun/parse_event_data.ts";
import { type BackoffOptions, fetchWithBackoff } from "./fetch_with_backoff.ts";

/** Mailgun's API, by region. */
export const MAILGUN_API_BASE_URLS = {
  us: "https://api.mailgun.net",
  eu: "https://api.eu.mailgun.net",
} as const;

/** The events that can change a row; the others are ignored by the webhook too. */
export const RECONCILED_EVENTS = ["delivered", "failed", "complained"] as const;

/** Most events per page (Mailgun's maximum). */
export const EVENTS_PAGE_LIMIT = 300;

/** A bound on pages per message id, against a paging that never ends. */
export const MAX_PAGES_PER_MESSAGE = 100;

/** Where and how to reach Mailgun. */
export interface MailgunEventsClientOptions {
  /** E.g. https://api.mailgun.net (US) or https://api.eu.mailgun.net (EU). */
  baseUrl: string;
  apiKey: string;
  domain: string;
  backoff: BackoffOptions;
}

/** Mailgun answered something that retrying cannot fix, or kept failing. */
export class MailgunApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    /** True when no other message id can fare better (wrong key, unknown domain). */
    readonly fatal: boolean,
  ) {
    super(message);
    this.name = "MailgunApiError";
  }
}

/** Reads the events of one message id from Mailgun. */
export interface MailgunEventsClient {
  /** The event-data of `messageId` between `begin` and `end`, oldest first, all pages. */
  eventsFor(messageId: string, begin: Date, end: Date): AsyncGenerator<Record<string, unknown>>;
}

/**
 * A client of Mailgun's Events API, `GET /v3/{domain}/events`, filtered by
 * `message-id` and by the events that change a row, following `paging.next`
 * until an empty page (as Mailgun documents it). Its items are the very
 * event-data that webhooks carry, with the same id and timestamp, so an
 * event applied by both paths is recognised as one.
 */
export function createMailgunEventsClient(options: MailgunEventsClientOptions): MailgunEventsClient {
  const base = new URL(options.baseUrl);
  const authorization = `Basic ${btoa(`api:${options.apiKey}`)}`;

  async function getPage(url: string): Promise<{ items: Record<string, unknown>[]; next?: string }> {
    const response = await fetchWithBackoff(url, {
      headers: { authorization, accept: "application/json" },
    }, options.backoff);
    if (!response.ok) {
      await response.body?.cancel();
      throw apiError(response.status, options.domain);
    }
    let page: unknown;
    try {
      page = await response.json();
    } catch {
      throw new MailgunApiError("Mailgun answered a page that is not JSON.", response.status, false);
    }
    const { items, paging } = (page ?? {}) as { items?: unknown; paging?: { next?: unknown } };
    if (!Array.isArray(items)) throw new MailgunApiError("Mailgun answered a page without items.", 200, false);
    const records = items.filter((item): item is Record<string, unknown> =>
      typeof item === "object" && item !== null && !Array.isArray(item)
    );
    return { items: records, next: typeof paging?.next === "string" ? paging.next : undefined };
  }

  return {
    async *eventsFor(messageId, begin, end) {
      const bare = bareMessageId(messageId);
      const first = new URL(`/v3/${encodeURIComponent(options.domain)}/events`, base);
      first.searchParams.set("message-id", bare);
      first.searchParams.set("event", RECONCILED_EVENTS.join(" OR "));
      first.searchParams.set("begin", String(Math.floor(begin.getTime() / 1000)));
      first.searchParams.set("end", String(Math.ceil(end.getTime() / 1000)));
      first.searchParams.set("ascending", "yes");
      first.searchParams.set("limit", String(EVENTS_PAGE_LIMIT));
      let url: string | undefined = first.href;
      for (let pages = 0; url !== undefined; pages++) {
        if (pages >= MAX_PAGES_PER_MESSAGE) {
          throw new MailgunApiError(`Mailgun kept paging past ${MAX_PAGES_PER_MESSAGE} pages.`, undefined, false);
        }
        const page = await getPage(url);
        for (const item of page.items) {
          // The filter is Mailgun's; checking it again costs nothing and keeps a stray event out.
          if (eventMessageId(item) === bare) yield item;
        }
        if (page.items.length === 0 || page.next === undefined) break;
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

function eventMessageId(item: Record<string, unknown>): string | undefined {
  const headers = (item.message as { headers?: Record<string, unknown> } | undefined)?.headers;
  const value = headers?.["message-id"];
  return typeof value === "string" ? bareMessageId(value) : undefined;
}

function apiError(status: number, domain: string): MailgunApiError {
  if (status === 401 || status === 403) {
    return new MailgunApiError(
      `Mailgun refused the API key (${status}): check MAILGUN_API_KEY (a private API key, not the webhook signing key) and MAILGUN_REGION.`,
      status,
      true,
    );
  }
  if (status === 404) {
    return new MailgunApiError(
      `Mailgun does not know the domain ${domain} in this region (404): check MAILGUN_DOMAIN and MAILGUN_REGION.`,
      status,
      true,
    );
  }
  if (status === 429 || status >= 500) {
    return new MailgunApiError(`Mailgun answered ${status} after every retry.`, status, false);
  }
  return new MailgunApiError(`Mailgun answered ${status}.`, status, false);
}
