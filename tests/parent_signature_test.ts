/**
 * Subaccounts: with MAILGUN_PARENT_WEBHOOK_SIGNING_KEY set, an event whose
 * own signature fails but whose `parent-signature` verifies is accepted,
 * under the same replay rules as any other.
 */
import assert from "node:assert/strict";
import { signWebhook } from "../src/mailgun/sign_webhook.ts";
import { eventData, post } from "./helpers/mailgun.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "./helpers/test_service.ts";

const PARENT_KEY = `parent-key-${crypto.randomUUID()}`;

function body(data: unknown, signature: unknown, parentSignature: unknown): string {
  return JSON.stringify({ signature, "parent-signature": parentSignature, "event-data": data });
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
  await withService({ MAILGUN_PARENT_WEBHOOK_SIGNING_KEY: PARENT_KEY }, async (svc) => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const parent = await signWebhook(PARENT_KEY);
    const wrong = await signWebhook("the-subaccount-key-we-do-not-have");

    const response = await post(svc.url, body(eventData("delivered", messageId), wrong, parent));
    assert.equal(response.status, 200);
    assert.deepEqual(response.json, { ok: true, outcome: "applied" });
    assert.equal((await rowState(svc.sql, "documents", id)).status, "DELIVERED");
    const line = svc.logs.at(-1)!;
    assert.equal(line.outcome, "applied");
    assert.equal(line.parent_key, true);
    assert.equal(line.signing_key_index, 0);

    // Without any own signature at all, too.
    const other = newMessageId();
    const otherId = await insertRow(svc.sql, "documents", other);
    const alone = await post(svc.url, body(eventData("complained", other), undefined, await signWebhook(PARENT_KEY)));
    assert.equal(alone.status, 200);
    assert.equal((await rowState(svc.sql, "documents", otherId)).status, "COMPLAINED");

    // The parent signature's token is consumed like any other: it cannot carry another body.
    const forged = await post(svc.url, body(eventData("complained", messageId), wrong, parent));
    assert.equal(forged.status, 401);
    assert.equal(svc.logs.at(-1)!.outcome, "replayed");
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "DELIVERED");
    assert.equal(state.events.length, 1);

    // A parent-signature made with another key, or out of the window, is refused.
    const badParent = await signWebhook("not-the-parent-key");
    assert.equal((await post(svc.url, body(eventData("delivered", newMessageId()), wrong, badParent))).status, 401);
    const stale = await signWebhook(PARENT_KEY, String(Math.floor(Date.now() / 1000) - 2 * 86_400));
    assert.equal((await post(svc.url, body(eventData("delivered", newMessageId()), wrong, stale))).status, 401);
  });
});

Deno.test("without MAILGUN_PARENT_WEBHOOK_SIGNING_KEY a parent-signature alone is refused", async () => {
  await withService({}, async (svc) => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const response = await post(
      svc.url,
      body(eventData("delivered", messageId), await signWebhook("wrong"), await signWebhook(PARENT_KEY)),
    );
    assert.equal(response.status, 401);
    assert.equal(svc.logs.at(-1)!.outcome, "unauthorized");
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 0);
  });
});
