import { signWebhook } from "../mailgun/sign_webhook.ts";
import { WEBHOOK_PATH } from "../config/routes.ts";

/** What the service answered to a simulated event. */
interface SimulatedResponse {
  /** The URL posted to. */
  url: string;
  status: number;
  /** The response body, as text. */
  body: string;
}

/**
 * Signs `eventData` like Mailgun does (a fresh token, the current time) with
 * `signingKey`, and posts it to the webhook of the service at `baseUrl`.
 */
export async function postSimulatedEvent(
  baseUrl: string,
  signingKey: string,
  eventData: unknown,
  timeoutMs = 15_000,
): Promise<SimulatedResponse> {
  const url = new URL(WEBHOOK_PATH, baseUrl).href;
  const signature = signWebhook(signingKey);
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "user-agent": "comprobify-simulate" },
    body: JSON.stringify({ signature, "event-data": eventData }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { url, status: response.status, body: await response.text() };
}
