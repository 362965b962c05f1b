import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { prepareHmacSha256Key } from "../src/encoding/hmac_sha256.ts";

Deno.test("prepared HMAC-SHA256 equals node:crypto's createHmac for keys of every length around the block size", () => {
  for (const length of [0, 1, 16, 32, 50, 63, 64, 65, 100, 128, 129, 1000]) {
    const key = crypto.getRandomValues(new Uint8Array(length));
    const prepared = prepareHmacSha256Key(key);
    for (const data of ["", "1700000000abc", "é".repeat(200), "x".repeat(5000)]) {
      assert.deepEqual(
        prepared.digest(data),
        createHmac("sha256", key).update(data).digest(),
        `key of ${length} bytes, data of ${data.length} characters`,
      );
    }
  }
});

Deno.test("a prepared key gives the same HMAC every time (its pad states are copied, never consumed)", () => {
  const prepared = prepareHmacSha256Key(new TextEncoder().encode("key-1"));
  const first = prepared.digest("1700000000token");
  assert.deepEqual(prepared.digest("other"), createHmac("sha256", "key-1").update("other").digest());
  assert.deepEqual(prepared.digest("1700000000token"), first);
});

Deno.test("RFC 4231 test case 2 (a short key)", () => {
  const prepared = prepareHmacSha256Key(new TextEncoder().encode("Jefe"));
  assert.equal(
    prepared.digest("what do ya want for nothing?").toString("hex"),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});
