import { UnauthorizedError } from "../http/errors.ts";
import { fromHex } from "./hex.ts";

/** Mailgun's webhook tokens are 50 characters; anything far longer is not one. */
export const MAX_TOKEN_LENGTH = 256;
/** hex(HMAC-SHA256) is 64 characters. */
const SIGNATURE_PATTERN = /^[0-9a-fA-F]{64}$/;
/** Printable ASCII only: tokens are stored, and must be safe to store. */
const TOKEN_PATTERN = /^[\x21-\x7e]+$/;
/** Unix seconds, sent as a string (the docs say int; accept both). */
const TIMESTAMP_PATTERN = /^\d{1,12}$/;

/** How far a signature timestamp may be from our clock. */
export interface SignatureWindow {
  maxAgeSeconds: number;
  maxFutureSeconds: number;
}

/** A signature block that verified. */
export interface VerifiedSignature {
  timestamp: number;
  token: string;
  /** Which configured key matched, by position (never its value). */
  keyIndex: number;
}

const encoder = new TextEncoder();

/** Imports signing keys once, for `crypto.subtle.verify` (constant-time). */
export function importSigningKeys(keys: string[]): Promise<CryptoKey[]> {
  return Promise.all(
    keys.map((key) =>
      crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["verify"])
    ),
  );
}

/**
 * Checks a Mailgun signature block: shape, timestamp window, then
 * `hex(HMAC-SHA256(key, timestamp + token))` against every key in turn.
 * Throws an {@link UnauthorizedError} with the precise reason.
 */
export async function verifySignature(
  block: unknown,
  keys: CryptoKey[],
  window: SignatureWindow,
  nowSeconds: number = Date.now() / 1000,
): Promise<VerifiedSignature> {
  if (typeof block !== "object" || block === null || Array.isArray(block)) {
    throw new UnauthorizedError("Signature block is missing.");
  }
  const { timestamp, token, signature } = block as Record<string, unknown>;
  const timestampText = typeof timestamp === "number" && Number.isSafeInteger(timestamp)
    ? String(timestamp)
    : timestamp;
  if (typeof timestampText !== "string" || !TIMESTAMP_PATTERN.test(timestampText)) {
    throw new UnauthorizedError("Signature timestamp is missing or not Unix seconds.");
  }
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) {
    throw new UnauthorizedError("Signature token is missing or malformed.");
  }
  if (typeof signature !== "string" || !SIGNATURE_PATTERN.test(signature)) {
    throw new UnauthorizedError("Signature is missing or not 64 hex characters.");
  }
  const signedAt = Number(timestampText);
  if (signedAt < nowSeconds - window.maxAgeSeconds) {
    throw new UnauthorizedError(`Signature timestamp is more than ${window.maxAgeSeconds} s old.`);
  }
  if (signedAt > nowSeconds + window.maxFutureSeconds) {
    throw new UnauthorizedError(`Signature timestamp is more than ${window.maxFutureSeconds} s in the future.`);
  }
  const signatureBytes = fromHex(signature);
  const signedData = encoder.encode(timestampText + token);
  for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
    if (await crypto.subtle.verify("HMAC", keys[keyIndex], signatureBytes, signedData)) {
      return { timestamp: signedAt, token, keyIndex };
    }
  }
  throw new UnauthorizedError("Signature does not match any configured signing key.");
}
