import assert from "node:assert/strict";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { insertRow, newMessageId, startTestService } from "../helpers/test_service.ts";

Deno.test("an overload sheds webhooks with 503 (retried by Mailgun) instead of queueing without bound", async () => {
  const svc = await startTestService({ BATCH_QUEUE_MAX: "2", BATCH_IN_FLIGHT: "1" });
  try {
    const messageIds = Array.from({ length: 40 }, () => newMessageId());
    for (const messageId of messageIds) await insertRow(svc.sql, "documents", messageId);
    const bodies = messageIds.map((messageId) => signedBody(svc.key, eventData("delivered", messageId)).body);
    const first = await Promise.all(bodies.map((body) => post(svc.url, body)));
    const statuses = first.map((response) => response.status);
    assert.ok(statuses.every((status) => status === 200 || status === 503), JSON.stringify(statuses));
    assert.ok(statuses.includes(503), "a burst of 40 with room for 2 waiting sheds some");
    // Mailgun's retries (the same signatures) are applied, and nothing twice.
    for (const [i, body] of bodies.entries()) {
      if (statuses[i] === 503) assert.deepEqual((await post(svc.url, body)).json, { ok: true, outcome: "applied" });
    }
    const [row] = await svc.sql`select count(*)::int as n from email_events`;
    assert.equal(row.n, messageIds.length);
  } finally {
    await svc.close();
  }
});
