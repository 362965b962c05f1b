import { SHA256_BLOCK_BYTES, sha256Blocks, sha256Finish, sha256InitialState } from "./sha256_blocks.ts";

const INNER_PAD = 0x36;
const OUTER_PAD = 0x5c;
/** Data up to this many characters is encoded into a buffer kept for it (UTF-8 takes at most 3 bytes a character). */
const SHORT_DATA_CHARS = 256;

const encoder = new TextEncoder();
const shortData = new Uint8Array(3 * SHORT_DATA_CHARS);

/** An HMAC-SHA256 key whose padded inner and outer hash states are computed once. */
export interface HmacSha256Key {
  /** HMAC-SHA256 of `data` (UTF-8) with this key. */
  digest(data: string): Uint8Array;
}

/**
 * Prepares an HMAC-SHA256 key (RFC 2104) once: the hash states after the
 * key's inner and outer pads are kept, and each HMAC resumes from them: two
 * compressions for Mailgun's timestamp and token, one for the outer hash
 * (src/encoding/sha256_blocks.ts, plain JavaScript: about a third of
 * node:crypto's hash objects alone, and no native objects left for the
 * collector). The result is the same bytes as node:crypto's `createHmac`
 * (tests compare both).
 */
export function prepareHmacSha256Key(key: Uint8Array): HmacSha256Key {
  const block = new Uint8Array(SHA256_BLOCK_BYTES);
  block.set(key.byteLength > SHA256_BLOCK_BYTES ? sha256Finish(sha256InitialState(), 0, key, key.byteLength) : key);
  const inner = sha256InitialState();
  const outer = sha256InitialState();
  sha256Blocks(inner, block.map((byte) => byte ^ INNER_PAD));
  sha256Blocks(outer, block.map((byte) => byte ^ OUTER_PAD));
  block.fill(0);
  return {
    digest(data: string): Uint8Array {
      let bytes: Uint8Array;
      let length: number;
      if (data.length <= SHORT_DATA_CHARS) {
        bytes = shortData;
        length = encoder.encodeInto(data, shortData).written;
      } else {
        bytes = encoder.encode(data);
        length = bytes.byteLength;
      }
      const innerHash = sha256Finish(inner, SHA256_BLOCK_BYTES, bytes, length);
      return sha256Finish(outer, SHA256_BLOCK_BYTES, innerHash, innerHash.byteLength);
    },
  };
}
