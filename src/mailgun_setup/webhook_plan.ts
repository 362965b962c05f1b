/**
 * The comparison of what a domain has registered with what this deployment
 * needs, and the change that would make them agree. Other URLs already on a
 * webhook are kept: Mailgun allows up to three per webhook and posts every
 * event to each, so another receiver (a previous deployment, another tool)
 * goes on receiving its events.
 */
import { MAX_URLS_PER_WEBHOOK, normalizeUrl, REQUIRED_WEBHOOKS, type RequiredWebhook } from "./webhook_events.ts";
import type { RegisteredWebhooks } from "./webhooks_client.ts";

/** `ok`: this deployment's URL is on it; `missing`: no URL at all; `elsewhere`: only other URLs. */
export type WebhookState = "ok" | "missing" | "elsewhere";

/** One required webhook: what it holds and what registering would do. */
export interface WebhookPlanItem {
  name: RequiredWebhook;
  state: WebhookState;
  /** The URLs registered now. */
  urls: string[];
  /**
   * `create` (POST, the webhook does not exist), `update` (PUT with the
   * URLs of `newUrls`), `none`, or `full` when it already holds Mailgun's
   * maximum of URLs and none is this deployment's: it cannot be added
   * without removing one, which this tool never does.
   */
  action: "none" | "create" | "update" | "full";
  /** The URLs after the change (for `create` and `update`). */
  newUrls: string[];
}

/** The required webhooks, in {@link REQUIRED_WEBHOOKS} order, against `url`. */
export function planWebhooks(registered: RegisteredWebhooks, url: string): WebhookPlanItem[] {
  const wanted = normalizeUrl(url);
  return REQUIRED_WEBHOOKS.map((name): WebhookPlanItem => {
    const urls = registered[name] ?? [];
    if (urls.some((existing) => normalizeUrl(existing) === wanted)) {
      return { name, state: "ok", urls, action: "none", newUrls: urls };
    }
    if (urls.length === 0) return { name, state: "missing", urls, action: "create", newUrls: [url] };
    if (urls.length >= MAX_URLS_PER_WEBHOOK) return { name, state: "elsewhere", urls, action: "full", newUrls: urls };
    return { name, state: "elsewhere", urls, action: "update", newUrls: [...urls, url] };
  });
}

/** The required webhooks that do not send to `url` yet. */
export function problems(plan: WebhookPlanItem[]): WebhookPlanItem[] {
  return plan.filter((item) => item.state !== "ok");
}
