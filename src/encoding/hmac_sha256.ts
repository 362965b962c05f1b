import { createHash } from "node:crypto";

/** SHA-256's block size: keys longer than this are hashed first (RFC 2104). */
const BLOCK_BYTES = 64;
const INNER_PAD = 0x36;
const OUTER_PAD = 0x5c;

/** An HMAC-SHA256 key whose padded inner and outer hash states are computed once. */
export interface HmacSha256Key {
  /** HMAC-SHA256 of `data` (UTF-8) with this key. */
  digest(data: string): Buffer;
}

/**
 * Prepares an HMAC-SHA256 key (RFC 2104) once: the hash states after the
 * key's inner and outer pads are kept, and each HMAC copies them instead of
 * hashing the pads again. In Deno's node:crypto this costs about a third of
 * `createHmac` with a KeyObject, the largest single cost of verifying a
 * webhook; the result is the same bytes (tests compare both).
 */
export function prepareHmacSha256Key(key: Uint8Array): HmacSha256Key {
  const block = new Uint8Array(BLOCK_BYTES);
  block.set(key.byteLength > BLOCK_BYTES ? createHash("sha256").update(key).digest() : key);
  const inner = createHash("sha256").update(block.map((byte) => byte ^ INNER_PAD));
  const outer = createHash("sha256").update(block.map((byte) => byte ^ OUTER_PAD));
  block.fill(0);
  return {
    digest(data: string): Buffer {
      return outer.copy().update(inner.copy().update(data).digest()).digest();
    },
  };
}
