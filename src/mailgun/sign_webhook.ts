import { createHmac } from "node:crypto";
import { toHex } from "../encoding/hex.ts";

/** A Mailgun signature block. */
export interface SignatureBlock {
  timestamp: string;
  token: string;
  signature: string;
}

/** Signs like Mailgun: `hex(HMAC-SHA256(key, timestamp + token))`. For tests, tools and simulations. */
export function signWebhook(
  key: string,
  timestamp: string = String(Math.floor(Date.now() / 1000)),
  token: string = newToken(),
): SignatureBlock {
  return { timestamp, token, signature: createHmac("sha256", key).update(timestamp + token).digest("hex") };
}

/** A random 50-character token, like Mailgun's. */
export function newToken(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(25)));
}
