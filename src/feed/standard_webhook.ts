/**
 * Standard Webhooks (standardwebhooks.com) requests, as `deno task follow
 * --forward` sends them: `webhook-id`, `webhook-timestamp` (Unix seconds)
 * and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
 * `<id>.<timestamp>.<body>` under the secret's bytes).
 */
import { prepareHmacSha256Key } from "../encoding/hmac_sha256.ts";

/** The headers of one delivery attempt of `body` under `id`, signed with `secret` at `timestamp`. */
export function standardWebhookHeaders(
  secret: Uint8Array,
  id: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${signStandardWebhook(secret, id, timestamp, body)}`,
  };
}

/** The base64 HMAC-SHA256 of `<id>.<timestamp>.<body>` under `secret`. */
export function signStandardWebhook(secret: Uint8Array, id: string, timestamp: number, body: string): string {
  return prepareHmacSha256Key(secret).digest(`${id}.${timestamp}.${body}`).toString("base64");
}
