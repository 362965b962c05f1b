import { type BackoffOptions, fetchWithBackoff } from "./fetch_with_backoff.ts";
import { objectItems } from "./mailgun_event_source.ts";
import { MailgunApiError, mailgunStatusError } from "./reconcile_errors.ts";

/** Backoff options that also count every request sent (retries included). */
export function countingBackoff(backoff: BackoffOptions): { backoff: BackoffOptions; requests(): number } {
  let requests = 0;
  return {
    backoff: {
      ...backoff,
      onAttempt() {
        requests++;
        backoff.onAttempt?.();
      },
    },
    requests: () => requests,
  };
}

/**
 * One page from one of Mailgun's read APIs, retried as fetchWithBackoff
 * does: the parsed JSON object, and its `items` (the objects among them).
 * Throws a MailgunApiError for a status that is not a page, a body that is
 * not JSON, or a page without `items`.
 */
export async function fetchPage(
  url: string,
  init: RequestInit,
  backoff: BackoffOptions,
  domain: string,
): Promise<{ page: Record<string, unknown>; items: Record<string, unknown>[] }> {
  const response = await fetchWithBackoff(url, init, backoff);
  if (!response.ok) {
    await response.body?.cancel();
    throw mailgunStatusError(response.status, domain);
  }
  let page: unknown;
  try {
    page = await response.json();
  } catch (error) {
    throw new MailgunApiError("Mailgun answered a page that is not JSON.", response.status, false, { cause: error });
  }
  const items = (page as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) throw new MailgunApiError("Mailgun answered a page without items.", 200, false);
  return { page: page as Record<string, unknown>, items: objectItems(items) };
}
