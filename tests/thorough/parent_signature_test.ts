/**
 * Subaccounts, in Mailgun's shape: `parent-signature` is a hex string inside
 * the `signature` block, the same HMAC over the same timestamp and token made
 * with the parent account's key. With MAILGUN_PARENT_WEBHOOK_SIGNING_KEY set,
 * a block whose own signature fails but whose parent-signature verifies is
 * accepted; its one token is spent either way, under the same replay rules.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { signWebhook } from "../../src/mailgun/sign_webhook.ts";
import { eventData, post } from "../helpers/mailgun.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "../helpers/test_service.ts";

const PARENT_KEY = `parent-key-${crypto.randomUUID()}`;

/** A subaccount's block: its own signature made with `ownKey`, and `parent-signature` with `parentKey`. */
function subaccountBlock(ownKey: string, parentKey: string, timestamp?: string) {
  const block = signWebhook(ownKey, timestamp);
  const parent = createHmac("sha256", parentKey).update(block.timestamp + block.token).digest("hex");
  return { ...block, "parent-signature": parent };
}

function body(data: unknown, signature: unknown): string {
  return JSON.stringify({ signature, "event-data": data });
}

async function withService(env: Record<string, string>, fn: (svc: TestService) => Promise<void>): Promise<void> {
  const svc = await startTestService(env);
  try {
    await fn(svc);
  } finally {
    await svc.close();
  }
}

Deno.test("a subaccount event whose parent-signature verifies is applied; its token is used once", async () => {
  await withService({ MAILGUN_PARENT_WEBHOOK_SIGNING_KEY: `other-parent-signing-key,${PARENT_KEY}` }, async (svc) => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    // The subaccount's own key is one we do not have: only the parent-signature can verify.
    const block = subaccountBlock("the-subaccount-key-we-do-not-have", PARENT_KEY);

    const response = await post(svc.url, body(eventData("delivered", messageId), block));
    assert.equal(response.status, 200);
    assert.deepEqual(response.json, { ok: true, outcome: "applied" });
    assert.equal((await rowState(svc.sql, "documents", id)).status, "DELIVERED");
    const line = svc.logs.at(-1)!;
    assert.equal(line.outcome, "applied");
    assert.equal(line.parent_key, true);
    assert.equal(line.signing_key_index, 1);

    // The same token cannot carry another body, whichever of its signatures verifies.
    const forged = await post(svc.url, body(eventData("complained", messageId), block));
    assert.equal(forged.status, 401);
    assert.equal(svc.logs.at(-1)!.outcome, "replayed");
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "DELIVERED");
    assert.equal(state.events.length, 1);
  });
});

Deno.test("own signature and parent-signature: either verifies; a wrong one, a stale one or the old shape does not", async () => {
  await withService({ MAILGUN_PARENT_WEBHOOK_SIGNING_KEY: PARENT_KEY }, async (svc) => {
    // Both valid (a subaccount whose own key we hold too): the own key is named.
    const both = subaccountBlock(svc.key, PARENT_KEY);
    assert.equal((await post(svc.url, body(eventData("delivered", newMessageId()), both))).status, 200);
    assert.equal(svc.logs.at(-1)!.parent_key, undefined);

    // Only a parent-signature, no own signature at all.
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const { signature: _, ...parentOnly } = subaccountBlock("unused", PARENT_KEY);
    assert.equal((await post(svc.url, body(eventData("complained", messageId), parentOnly))).status, 200);
    assert.equal((await rowState(svc.sql, "documents", id)).status, "COMPLAINED");

    // A parent-signature made with another key, or over a stale timestamp, is refused.
    const wrong = subaccountBlock("not-ours", "not-the-parent-key");
    assert.equal((await post(svc.url, body(eventData("delivered", newMessageId()), wrong))).status, 401);
    assert.equal(svc.logs.at(-1)!.outcome, "unauthorized");
    const stale = subaccountBlock("not-ours", PARENT_KEY, String(Math.floor(Date.now() / 1000) - 2 * 86_400));
    assert.equal((await post(svc.url, body(eventData("delivered", newMessageId()), stale))).status, 401);

    // The shape this service once invented, a top-level parent-signature object, is not Mailgun's: refused.
    const old = JSON.stringify({
      signature: signWebhook("not-ours"),
      "parent-signature": signWebhook(PARENT_KEY),
      "event-data": eventData("delivered", messageId),
    });
    assert.equal((await post(svc.url, old)).status, 401);
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 1);
  });
});

Deno.test("without MAILGUN_PARENT_WEBHOOK_SIGNING_KEY a parent-signature alone is refused", async () => {
  await withService({}, async (svc) => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const response = await post(svc.url, body(eventData("delivered", messageId), subaccountBlock("wrong", PARENT_KEY)));
    assert.equal(response.status, 401);
    assert.equal(svc.logs.at(-1)!.outcome, "unauthorized");
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 0);
  });
});
