import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto";
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

/** A signing key, imported once. */
export type SigningKey = KeyObject;

/**
 * Imports signing keys once. Deno's built-in node:crypto computes an HMAC
 * synchronously in about 5 µs; `crypto.subtle.verify` hands each call to a
 * thread pool and costs 30-70 µs under load, the largest single cost of a
 * webhook. The comparison stays constant-time with `timingSafeEqual`.
 */
export function importSigningKeys(keys: string[]): SigningKey[] {
  return keys.map((key) => createSecretKey(new TextEncoder().encode(key)));
}

/**
 * Checks a Mailgun signature block: shape, timestamp window, then
 * `hex(HMAC-SHA256(key, timestamp + token))` against every key in turn.
 * Throws an {@link UnauthorizedError} with the precise reason.
 */
export function verifySignature(
  block: unknown,
  keys: SigningKey[],
  window: SignatureWindow,
  nowSeconds: number = Date.now() / 1000,
): VerifiedSignature {
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
  const signedData = timestampText + token;
  for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
    const expected = createHmac("sha256", keys[keyIndex]).update(signedData).digest();
    if (timingSafeEqual(expected, signatureBytes)) return { timestamp: signedAt, token, keyIndex };
  }
  throw new UnauthorizedError("Signature does not match any configured signing key.");
}
