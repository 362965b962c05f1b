import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { sha256Blocks, sha256Finish, sha256InitialState } from "../src/encoding/sha256_blocks.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const sha256 = (bytes: Uint8Array) => hex(sha256Finish(sha256InitialState(), 0, bytes, bytes.byteLength));

Deno.test("FIPS 180-4's examples: abc, the two-block message, and the empty message", () => {
  const text = (value: string) => new TextEncoder().encode(value);
  assert.equal(sha256(text("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(
    sha256(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(sha256(new Uint8Array(0)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
});

Deno.test("SHA-256 equals node:crypto's for every length up to four blocks, and for any bytes", () => {
  for (let length = 0; length <= 256; length++) {
    const bytes = crypto.getRandomValues(new Uint8Array(length));
    assert.equal(sha256(bytes), createHash("sha256").update(bytes).digest("hex"), `${length} bytes`);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
      assert.equal(sha256(bytes), createHash("sha256").update(bytes).digest("hex"));
    }),
    { numRuns: 500 },
  );
});

Deno.test("resuming from a state after whole blocks gives the hash of the whole message; the state is kept", () => {
  const prefix = crypto.getRandomValues(new Uint8Array(128));
  const state = sha256InitialState();
  sha256Blocks(state, prefix);
  const saved = new Int32Array(state);
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 500]) {
    const rest = crypto.getRandomValues(new Uint8Array(length));
    assert.equal(
      hex(sha256Finish(state, prefix.byteLength, rest, length)),
      createHash("sha256").update(prefix).update(rest).digest("hex"),
    );
    assert.deepEqual(state, saved);
  }
});
