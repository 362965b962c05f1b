import { timingSafeEqual } from "node:crypto";
import { type HmacSha256Key, prepareHmacSha256Key } from "../encoding/hmac_sha256.ts";
import { SignatureError } from "./mailgun_errors.ts";

/** Mailgun's webhook tokens are 50 characters; anything far longer is not one. */
const MAX_TOKEN_LENGTH = 256;
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
  /** True when it was the subaccount's `parent-signature` that matched a parent key. */
  parent: boolean;
}

/** A signing key, imported once. */
export type SigningKey = HmacSha256Key;

/**
 * Imports signing keys once, as HMAC keys.
 * The HMAC is synchronous (node:crypto): `crypto.subtle.verify` hands each
 * call to a thread pool and costs 30-70 µs under load. The comparison stays
 * constant-time with `timingSafeEqual`.
 */
export function importSigningKeys(keys: string[]): SigningKey[] {
  const encoder = new TextEncoder();
  return keys.map((key) => prepareHmacSha256Key(encoder.encode(key)));
}

/**
 * Checks a Mailgun signature block: shape, timestamp window, then
 * `hex(HMAC-SHA256(key, timestamp + token))` against every key in turn.
 * Subaccount events carry, inside the same block, `parent-signature`: the same
 * HMAC over the same timestamp and token made with the parent account's key;
 * it is tried against `parentKeys` when the block's own signature matches none
 * of `keys`. Throws a {@link SignatureError} with the precise reason.
 */
export function verifySignature(
  block: unknown,
  keys: SigningKey[],
  window: SignatureWindow,
  nowSeconds: number = Date.now() / 1000,
  parentKeys: SigningKey[] = [],
): VerifiedSignature {
  if (typeof block !== "object" || block === null || Array.isArray(block)) {
    throw new SignatureError("Signature block is missing.");
  }
  const { timestamp, token, signature, "parent-signature": parentSignature } = block as Record<string, unknown>;
  const timestampText = typeof timestamp === "number" && Number.isSafeInteger(timestamp)
    ? String(timestamp)
    : timestamp;
  if (typeof timestampText !== "string" || !TIMESTAMP_PATTERN.test(timestampText)) {
    throw new SignatureError("Signature timestamp is missing or not Unix seconds.");
  }
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) {
    throw new SignatureError("Signature token is missing or malformed.");
  }
  const ownValid = typeof signature === "string" && SIGNATURE_PATTERN.test(signature);
  // A parent-signature only counts where parent keys are configured; otherwise it is ignored.
  const parentValid = parentKeys.length > 0 && typeof parentSignature === "string" &&
    SIGNATURE_PATTERN.test(parentSignature);
  if (!ownValid && !parentValid) {
    throw new SignatureError("Signature is missing or not 64 hex characters.");
  }
  const signedAt = Number(timestampText);
  if (signedAt < nowSeconds - window.maxAgeSeconds) {
    throw new SignatureError(`Signature timestamp is more than ${window.maxAgeSeconds} s old.`);
  }
  if (signedAt > nowSeconds + window.maxFutureSeconds) {
    throw new SignatureError(`Signature timestamp is more than ${window.maxFutureSeconds} s in the future.`);
  }
  const signedData = timestampText + token;
  if (ownValid) {
    const keyIndex = matchingKey(Uint8Array.fromHex(signature as string), keys, signedData);
    if (keyIndex >= 0) return { timestamp: signedAt, token, keyIndex, parent: false };
  }
  if (parentValid) {
    const keyIndex = matchingKey(Uint8Array.fromHex(parentSignature as string), parentKeys, signedData);
    if (keyIndex >= 0) return { timestamp: signedAt, token, keyIndex, parent: true };
  }
  throw new SignatureError(
    parentKeys.length > 0
      ? "Neither signature nor parent-signature matches any configured signing key."
      : "Signature does not match any configured signing key.",
  );
}

/** The position of the key whose HMAC of `signedData` equals `signature` (constant-time compare), or -1. */
function matchingKey(signature: Uint8Array, keys: SigningKey[], signedData: string): number {
  for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
    const expected = keys[keyIndex].digest(signedData);
    if (timingSafeEqual(expected, signature)) return keyIndex;
  }
  return -1;
}
