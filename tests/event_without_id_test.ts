/**
 * Events that carry no `id` (trimmed captures, forwarded payloads): still
 * applied, keyed by the hash of their event-data (derived by the database),
 * and an event re-sent with the same body is recorded once.
 */
import assert from "node:assert/strict";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "./helpers/test_service.ts";

let svc: TestService;

Deno.test.beforeAll(async () => {
  svc = await startTestService();
});

Deno.test.afterAll(async () => {
  await svc.close();
});

function withoutId(data: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, ...rest } = data;
  return rest;
}

Deno.test("a failed event without an id climbs the status once, under any signature", async () => {
  const messageId = newMessageId();
  const id = await insertRow(svc.sql, "documents", messageId);
  const data = withoutId(eventData("permanent", messageId));
  for (let delivery = 0; delivery < 2; delivery++) {
    const response = await post(svc.url, signedBody(svc.key, data).body);
    assert.equal(response.status, 200, JSON.stringify(response.json));
  }
  const state = await rowState(svc.sql, "documents", id);
  assert.equal(state.status, "FAILED");
  assert.equal(state.events.length, 1);
  assert.equal(state.events[0].type, "EMAIL_FAILED");
});

Deno.test("two different events without an id are two entries", async () => {
  const messageId = newMessageId();
  const id = await insertRow(svc.sql, "documents", messageId);
  for (const kind of ["temporary", "delivered"] as const) {
    const response = await post(svc.url, signedBody(svc.key, withoutId(eventData(kind, messageId))).body);
    assert.equal(response.status, 200, JSON.stringify(response.json));
  }
  const state = await rowState(svc.sql, "documents", id);
  assert.equal(state.status, "DELIVERED");
  assert.deepEqual(state.events.map((e) => e.type).sort(), ["EMAIL_DELIVERED", "EMAIL_TEMP_FAILED"]);
});

Deno.test("an ignored event without an id is answered 200 and writes only its token", async () => {
  const [before] = await svc.sql`select count(*)::int as n from email_events`;
  const data = withoutId(eventData("opened", newMessageId()));
  const response = await post(svc.url, signedBody(svc.key, data).body);
  assert.equal(response.status, 200, JSON.stringify(response.json));
  const [after] = await svc.sql`select count(*)::int as n from email_events`;
  assert.equal(after.n, before.n);
});
