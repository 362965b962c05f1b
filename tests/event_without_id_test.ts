/**
 * Events that carry no `id`, or `"id": null` (trimmed captures, forwarded
 * payloads): still applied, keyed in the database by the hash of their
 * event-data's jsonb form (what the token is bound to), so that key order and
 * spacing cannot make one event two; recorded once.
 */
import assert from "node:assert/strict";
import { signWebhook } from "../src/mailgun/sign_webhook.ts";
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
  assert.match(state.events[0].mailgun_event_id, /^sha256:[0-9a-f]{64}$/);
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

/** The same event-data with its keys in reverse order, at every level. */
function reordered(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).reverse().map(([key, inner]) => [key, reordered(inner)]));
}

Deno.test("an event without an id re-sent with its keys in another order and other spacing is applied once", async () => {
  const messageId = newMessageId();
  const id = await insertRow(svc.sql, "documents", messageId);
  const data = withoutId(eventData("complained", messageId));
  const first = await post(svc.url, signedBody(svc.key, data).body);
  assert.equal(first.status, 200, JSON.stringify(first.json));
  assert.equal(first.json.outcome, "applied");
  // Mailgun's retry under a fresh signature, serialised otherwise.
  const again = JSON.stringify({ signature: signWebhook(svc.key), "event-data": reordered(data) }, null, 2);
  const second = await post(svc.url, again);
  assert.equal(second.status, 200, JSON.stringify(second.json));
  assert.equal(second.json.outcome, "duplicate");
  const state = await rowState(svc.sql, "documents", id);
  assert.equal(state.status, "COMPLAINED");
  assert.equal(state.events.length, 1);
  // The key is the hash the token is bound to.
  const [row] = await svc.sql`
    select 'sha256:' || encode(mailgun_webhook.body_hash(${JSON.stringify(data)}::text::jsonb), 'hex') as key`;
  assert.equal(state.events[0].mailgun_event_id, row.key);
});

Deno.test("two copies of an event without an id, in one batch: one entry, one applied, one duplicate", async () => {
  const messageId = newMessageId();
  const id = await insertRow(svc.sql, "tenants", messageId);
  const data = withoutId(eventData("delivered", messageId));
  const answers = await Promise.all([
    post(svc.url, signedBody(svc.key, data).body),
    post(svc.url, signedBody(svc.key, reordered(data)).body),
  ]);
  assert.deepEqual(answers.map((answer) => answer.status), [200, 200]);
  assert.deepEqual(answers.map((answer) => answer.json.outcome).sort(), ["applied", "duplicate"]);
  const state = await rowState(svc.sql, "tenants", id);
  assert.equal(state.status, "DELIVERED");
  assert.equal(state.events.length, 1);
});

Deno.test('"id": null is an event without an id: applied (not 406), keyed by its jsonb hash, once', async () => {
  const messageId = newMessageId();
  const id = await insertRow(svc.sql, "documents", messageId);
  const data = withoutId(eventData("permanent", messageId));
  const withNull = await post(svc.url, signedBody(svc.key, { ...data, id: null }).body);
  assert.equal(withNull.status, 200, JSON.stringify(withNull.json));
  assert.equal(withNull.json.outcome, "applied");
  // `"id": null` is part of the event-data, so its hash differs from the same event without the key:
  // each is recorded once, under its own derived id.
  const resent = await post(svc.url, signedBody(svc.key, reordered({ ...data, id: null })).body);
  assert.equal(resent.json.outcome, "duplicate");
  const state = await rowState(svc.sql, "documents", id);
  assert.equal(state.status, "FAILED");
  assert.equal(state.events.length, 1);
  assert.match(state.events[0].mailgun_event_id, /^sha256:[0-9a-f]{64}$/);
});
