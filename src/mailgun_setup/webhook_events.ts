import { WEBHOOK_PATH } from "../config/routes.ts";

/**
 * The domain webhooks this service needs, by the names Mailgun's Webhooks
 * API gives them: `failed` events come through two of them, by severity.
 * Other webhooks (`opened`, `clicked`, ...) are answered 200 and ignored, so
 * they are neither registered nor checked.
 */
export const REQUIRED_WEBHOOKS = ["delivered", "permanent_fail", "temporary_fail", "complained"] as const;

/** One of {@link REQUIRED_WEBHOOKS}. */
export type RequiredWebhook = typeof REQUIRED_WEBHOOKS[number];

/** Mailgun's documented maximum of URLs on one webhook of a domain. */
export const MAX_URLS_PER_WEBHOOK = 3;

/**
 * The URL Mailgun must post to for a deployment reachable at `base` (e.g.
 * `https://app.example.com`): the base with the webhook's route appended,
 * or `base` itself when it already ends with the route. Returns undefined
 * for anything that is not an https URL without query, fragment or
 * credentials (Mailgun would send personal data to it).
 */
export function webhookUrlFor(base: string): string | undefined {
  let url: URL;
  try {
    url = new URL(base.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    return undefined;
  }
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith(WEBHOOK_PATH) ? path : `${path}${WEBHOOK_PATH}`;
  return url.href;
}

/**
 * A registered URL in the form {@link webhookUrlFor} gives, so that
 * `https://App.example.com:443/v1/mailgun/webhook` counts as this
 * deployment's URL; a URL that does not parse is kept as it is.
 */
export function normalizeUrl(url: string): string {
  try {
    return new URL(url.trim()).href;
  } catch {
    return url;
  }
}
