import { toHex } from "./hex.ts";

const encoder = new TextEncoder();

/** A Mailgun signature block. */
export interface SignatureBlock {
  timestamp: string;
  token: string;
  signature: string;
}

/** Signs like Mailgun: `hex(HMAC-SHA256(key, timestamp + token))`. For tests, tools and simulations. */
export async function signWebhook(
  key: string,
  timestamp: string = String(Math.floor(Date.now() / 1000)),
  token: string = newToken(),
): Promise<SignatureBlock> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    encoder.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(timestamp + token)));
  return { timestamp, token, signature: toHex(mac) };
}

/** A random 50-character token, like Mailgun's. */
export function newToken(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(25)));
}
