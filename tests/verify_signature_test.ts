import assert from "node:assert/strict";
import { SignatureError } from "../src/mailgun/mailgun_errors.ts";
import { signWebhook } from "../src/mailgun/sign_webhook.ts";
import { importSigningKeys, type SigningKey, verifySignature } from "../src/mailgun/verify_signature.ts";

const window = { maxAgeSeconds: 86_400, maxFutureSeconds: 300 };
const now = 1_770_000_000;

function reason(block: unknown, keys: SigningKey[], at = now): string {
  try {
    verifySignature(block, keys, window, at);
  } catch (error) {
    assert.ok(error instanceof SignatureError);
    return error.message;
  }
  assert.fail("expected the signature to be refused");
}

Deno.test("a known vector: hex(HMAC-SHA256(key, timestamp + token))", () => {
  // Computed independently: printf '%s' '1770000000abc' | openssl dgst -sha256 -hmac 'key-1'
  const block = signWebhook("key-1", "1770000000", "abc");
  assert.equal(block.signature, "12049382ca755ea493a9afa115558137ea90e5cf69db4d972e18b9ddda8eff07");
  const keys = importSigningKeys(["key-1"]);
  assert.deepEqual(verifySignature(block, keys, window, now), {
    timestamp: now,
    token: "abc",
    keyIndex: 0,
    parent: false,
  });
});

Deno.test("every configured key is tried; the match is named by position", () => {
  const keys = importSigningKeys(["new-key", "old-key"]);
  const old = signWebhook("old-key", String(now), "t".repeat(50));
  assert.equal((verifySignature(old, keys, window, now)).keyIndex, 1);
  const fresh = signWebhook("new-key", String(now), "u".repeat(50));
  assert.equal((verifySignature(fresh, keys, window, now)).keyIndex, 0);
  assert.match(reason(signWebhook("other", String(now), "v"), keys), /does not match any/);
});

Deno.test("uppercase hex is accepted; the timestamp may be a number", () => {
  const keys = importSigningKeys(["k"]);
  const block = signWebhook("k", String(now), "tok");
  verifySignature({ ...block, signature: block.signature.toUpperCase() }, keys, window, now);
  verifySignature({ ...block, timestamp: now }, keys, window, now);
});

Deno.test("precise reasons for malformed blocks", () => {
  const keys = importSigningKeys(["k"]);
  const good = signWebhook("k", String(now), "tok");
  assert.match(reason(undefined, keys), /block is missing/);
  assert.match(reason([good], keys), /block is missing/);
  assert.match(reason({ ...good, timestamp: "abc" }, keys), /timestamp/);
  assert.match(reason({ ...good, timestamp: 1.5 }, keys), /timestamp/);
  assert.match(reason({ ...good, token: "" }, keys), /token/);
  assert.match(reason({ ...good, token: "a b" }, keys), /token/);
  assert.match(reason({ ...good, token: "x".repeat(257) }, keys), /token/);
  assert.match(reason({ ...good, signature: "00" }, keys), /64 hex/);
  assert.match(reason({ ...good, signature: 5 }, keys), /64 hex/);
});

Deno.test("the window: 24 h back, 5 min ahead, inclusive", () => {
  const keys = importSigningKeys(["k"]);
  const at = (offset: number) => signWebhook("k", String(now + offset), `tok${offset}`);
  verifySignature(at(-86_400), keys, window, now);
  verifySignature(at(300), keys, window, now);
  assert.match(reason(at(-86_401), keys), /more than 86400 s old/);
  assert.match(reason(at(301), keys), /more than 300 s in the future/);
});

Deno.test("parent-signature inside the block: tried against the parent keys only when the own signature fails", () => {
  const keys = importSigningKeys(["own"]);
  const parentKeys = importSigningKeys(["parent-a", "parent-b"]);
  const block = signWebhook("someone-else", String(now), "tok");
  const parent = signWebhook("parent-b", String(now), "tok").signature;
  const verified = verifySignature({ ...block, "parent-signature": parent }, keys, window, now, parentKeys);
  assert.deepEqual(verified, { timestamp: now, token: "tok", keyIndex: 1, parent: true });
  // Not without parent keys, and not with a parent-signature over another token.
  assert.match(reason({ ...block, "parent-signature": parent }, keys), /does not match any/);
  const otherToken = signWebhook("parent-b", String(now), "tok2").signature;
  assert.throws(
    () => verifySignature({ ...block, "parent-signature": otherToken }, keys, window, now, parentKeys),
    /Neither signature nor parent-signature/,
  );
});
