import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { prepareHmacSha256Key } from "../src/encoding/hmac_sha256.ts";

Deno.test("prepared HMAC-SHA256 equals node:crypto's createHmac for keys of every length around the block size", () => {
  for (const length of [0, 1, 16, 32, 50, 63, 64, 65, 100, 128, 129, 1000]) {
    const key = crypto.getRandomValues(new Uint8Array(length));
    const prepared = prepareHmacSha256Key(key);
    for (const data of ["", "1700000000abc", "é".repeat(200), "é".repeat(256), "x".repeat(5000)]) {
      assert.equal(
        Buffer.from(prepared.digest(data)).toString("hex"),
        createHmac("sha256", key).update(data).digest("hex"),
        `key of ${length} bytes, data of ${data.length} characters`,
      );
    }
  }
});

Deno.test("a prepared key gives the same HMAC every time (its pad states are copied, never consumed)", () => {
  const prepared = prepareHmacSha256Key(new TextEncoder().encode("key-1"));
  const first = prepared.digest("1700000000token");
  assert.deepEqual(prepared.digest("other"), new Uint8Array(createHmac("sha256", "key-1").update("other").digest()));
  assert.deepEqual(prepared.digest("1700000000token"), first);
});

Deno.test("RFC 4231 test case 2 (a short key)", () => {
  const prepared = prepareHmacSha256Key(new TextEncoder().encode("Jefe"));
  assert.equal(
    Buffer.from(prepared.digest("what do ya want for nothing?")).toString("hex"),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});

Deno.test("prepared HMAC-SHA256 equals node:crypto's for any key and data (every length across block edges)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 400 }), (key, data) => {
      assert.equal(
        Buffer.from(prepareHmacSha256Key(key).digest(data)).toString("hex"),
        createHmac("sha256", key).update(data).digest("hex"),
      );
    }),
    { numRuns: 2000 },
  );
  // Every data length around the one and two block tails (55/56 and 119/120 bytes with 64 already done).
  const key = prepareHmacSha256Key(new TextEncoder().encode("edge-key"));
  for (let length = 0; length <= 300; length++) {
    const data = "a".repeat(length);
    assert.equal(
      Buffer.from(key.digest(data)).toString("hex"),
      createHmac("sha256", "edge-key").update(data).digest("hex"),
    );
  }
});
