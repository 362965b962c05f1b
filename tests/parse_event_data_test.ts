import assert from "node:assert/strict";
import { UnusableEventError } from "../src/mailgun/mailgun_errors.ts";
import { NotStorableError, storableJson } from "../src/encoding/storable_json.ts";
import { mapEvent } from "../src/mailgun/map_event.ts";
import { bareMessageId, parseEventData } from "../src/mailgun/parse_event_data.ts";
import { loadPayload } from "./helpers/mailgun.ts";

Deno.test("Mailgun's example payloads parse to the right effect", () => {
  const cases = [
    ["delivered", "EMAIL_DELIVERED", "DELIVERED", "20260203192030.53383e583ab41f62@sample.mailgun.com"],
    ["failed-permanent", "EMAIL_FAILED", "FAILED", "20260212174255.58bbb7ce85a423e5@mailgun.com"],
    ["failed-temporary", "EMAIL_TEMP_FAILED", null, "20260212180106.5c8f35804ae3fd54@sample.mailgun.com"],
    ["complained", "EMAIL_COMPLAINED", "COMPLAINED", "20260212182531.0d5ed3254c319957@sample.mailgun.com"],
  ] as const;
  for (const [name, type, status, messageId] of cases) {
    const payload = loadPayload(name);
    const parsed = parseEventData(payload);
    assert.deepEqual(parsed.effect, { type, status }, name);
    assert.equal(parsed.messageId, messageId);
    assert.equal(parsed.id, payload.id);
    assert.equal(parsed.timestamp, payload.timestamp);
    assert.deepEqual(JSON.parse(parsed.json), payload);
  }
  const failed = parseEventData(loadPayload("failed-permanent"));
  assert.equal(failed.severity, "permanent");
  assert.equal(failed.reason, "bounce");
  assert.equal(failed.recipient, "badrecipient@sample.mailgun.com");
});

Deno.test("event mapping: failed needs a known severity; other events are ignored", () => {
  assert.deepEqual(mapEvent("failed", "temporary"), { type: "EMAIL_TEMP_FAILED", status: null });
  assert.throws(() => mapEvent("failed", undefined), RangeError);
  assert.throws(() => mapEvent("failed", "Permanent"), RangeError);
  for (const event of ["opened", "clicked", "unsubscribed", "accepted", "stored", "rejected", "Delivered"]) {
    assert.equal(mapEvent(event, undefined), null, event);
  }
});

Deno.test("ignored events need only an event name; an id missing or null is no id (null)", () => {
  const parsed = parseEventData({ event: "opened", id: "x" });
  assert.equal(parsed.effect, null);
  assert.equal(parsed.id, "x");
  assert.equal(parseEventData({ event: "opened" }).id, null);
  assert.throws(() => parseEventData({ id: "x" }), UnusableEventError);
  const { id: _id, ...withoutId } = loadPayload("failed-permanent");
  for (const data of [withoutId, { ...withoutId, id: null }]) {
    const parsed = parseEventData(data);
    assert.equal(parsed.id, null, JSON.stringify(data.id));
    assert.equal(parsed.effect?.status, "FAILED");
    // Kept as sent: `"id": null` stays in the stored JSON, an absent id stays absent.
    assert.deepEqual(JSON.parse(parsed.json), data);
  }
});

Deno.test("payload quirks are accepted", () => {
  const base = loadPayload("failed-permanent");
  for (
    const quirk of [
      { "user-variables": [] },
      { "user-variables": { a: 1 } },
      { "delivery-status": null },
      { description: "" },
      { description: null },
      { recipient: null },
      { reason: "old" },
      { flags: { "is-delayed-bounce": true } },
      { timestamp: "1770918175.5923693" },
      { "user-variables": '{"invoice":"A-1"}' },
      { "user-variables": null },
      { "delivery-status": { code: "5.1.1", message: "x" } },
      { "delivery-status": { code: 550 } },
      { "delivery-status": {} },
      { message: { headers: {} } },
      { "a-future-field": { nested: [1, 2, 3] } },
    ]
  ) {
    assert.ok(parseEventData({ ...base, ...quirk }).effect, JSON.stringify(quirk));
  }
});

Deno.test("a timestamp sent as a decimal string is read as the same number", () => {
  const base = loadPayload("delivered");
  const asNumber = parseEventData(base);
  const asText = parseEventData({ ...base, timestamp: String(base.timestamp) });
  assert.equal(typeof asText.timestamp, "number");
  assert.equal(asText.timestamp, asNumber.timestamp);
  assert.equal(parseEventData({ ...base, timestamp: "1770918175" }).timestamp, 1770918175);
  // Kept as sent: the stored event-data still holds the text.
  assert.equal(JSON.parse(asText.json).timestamp, String(base.timestamp));
});

Deno.test("message ids: angle brackets and spaces are stripped", () => {
  assert.equal(bareMessageId("<a@b>"), "a@b");
  assert.equal(bareMessageId(" a@b "), "a@b");
  assert.equal(bareMessageId("< a@b >"), "a@b");
  const payload = loadPayload("delivered");
  (payload.message as { headers: Record<string, string> }).headers["message-id"] = "<x@y>";
  assert.equal(parseEventData(payload).messageId, "x@y");
});

Deno.test("storable JSON: what jsonb cannot hold is refused, the rest passes as is", () => {
  assert.equal(storableJson({ b: 1, a: [1.5, "x", null] }), '{"b":1,"a":[1.5,"x",null]}');
  assert.equal(storableJson({ n: Infinity, m: NaN }), '{"n":null,"m":null}');
  // A valid surrogate pair, a backslash followed by "u0000", a line separator and a quote are fine.
  for (const ok of ["ok\ud83d\ude00", "\\u0000", 'é\u2028"']) {
    assert.doesNotThrow(() => storableJson({ s: ok }), JSON.stringify(ok));
  }
  // NUL, lone surrogates, and a NUL after a backslash are not.
  for (const bad of ["a\u0000b", "\ud800", "\udc00x", "\\\u0000"]) {
    assert.throws(() => storableJson({ s: bad }), NotStorableError, JSON.stringify(bad));
  }
  assert.throws(() => storableJson(JSON.parse("[".repeat(40) + "]".repeat(40))), NotStorableError);
  assert.doesNotThrow(() => storableJson(JSON.parse("[".repeat(20) + "]".repeat(20))));
});

Deno.test("a tracked event without a message id parses with messageId null; without a timestamp it is refused", () => {
  const base = loadPayload("failed-permanent");
  for (
    const message of [undefined, null, {}, { headers: {} }, { headers: null }, { headers: { "message-id": " <> " } }]
  ) {
    const parsed = parseEventData({ ...base, message, envelope: {} });
    assert.equal(parsed.effect?.status, "FAILED", JSON.stringify(message));
    assert.equal(parsed.messageId, null, JSON.stringify(message));
  }
  const { timestamp: _, ...noTimestamp } = base;
  assert.throws(() => parseEventData(noTimestamp), UnusableEventError);
  assert.throws(() => parseEventData({ ...base, message: { headers: { "message-id": 7 } } }), UnusableEventError);
});

Deno.test("a refusal is zod's issue path and what was expected, never a value from the payload", () => {
  const base = { ...loadPayload("failed-permanent"), recipient: "private.person@example.com" };
  const ts = "expected Unix seconds \\(a number or a decimal string\\) from 0 to 253402300799\\.";
  const cases: [unknown, RegExp][] = [
    [undefined, /^event-data: expected an object, got undefined\.$/],
    [["private.person@example.com"], /^event-data: expected an object, got an array\.$/],
    ["private.person@example.com", /^event-data: expected an object, got a string\.$/],
    [{ ...base, event: 7 }, /^event-data\.event: expected a string, got number\.$/],
    [{ ...base, event: "" }, /^event-data\.event: expected at least 1 character/],
    [{ ...base, id: 42 }, /^event-data\.id: expected a string, got number\.$/],
    [{ ...base, id: "" }, /^event-data\.id: expected at least 1 character/],
    [{ ...base, id: "x".repeat(257) }, /^event-data\.id: expected at most 256 characters\.$/],
    [{ ...base, severity: "private.person@example.com" }, /^event-data\.severity: expected permanent or temporary/],
    [{ ...base, timestamp: undefined }, new RegExp(`^event-data\\.timestamp: ${ts}$`)],
    [{ ...base, timestamp: "soon" }, new RegExp(`^event-data\\.timestamp: ${ts}$`)],
    [{ ...base, timestamp: "1e3" }, new RegExp(`^event-data\\.timestamp: ${ts}$`)],
    [{ ...base, timestamp: true }, new RegExp(`^event-data\\.timestamp: ${ts}$`)],
    [{ ...base, timestamp: -1 }, new RegExp(`^event-data\\.timestamp: ${ts}$`)],
    [{ ...base, timestamp: 1e300 }, new RegExp(`^event-data\\.timestamp: ${ts}$`)],
    [{ ...base, timestamp: "9".repeat(400) }, new RegExp(`^event-data\\.timestamp: ${ts}$`)],
    [
      { ...base, recipient: ["private.person@example.com"] },
      /^event-data\.recipient: expected a string, got an array\.$/,
    ],
    [{ ...base, reason: "r".repeat(2049) }, /^event-data\.reason: expected at most 2048 characters\.$/],
    [{ ...base, message: "m" }, /^event-data\.message: expected an object, got a string\.$/],
    [{ ...base, message: { headers: [] } }, /^event-data\.message\.headers: expected an object, got an array\.$/],
    [
      { ...base, message: { headers: { "message-id": 7 } } },
      /^event-data\.message\.headers\.message-id: expected a string, got number\.$/,
    ],
    [{ ...base, "delivery-status": "private.person@example.com" }, /^event-data\.delivery-status: expected an object/],
    [
      { ...base, "delivery-status": { code: true } },
      /^event-data\.delivery-status\.code: expected a number or a string/,
    ],
    [{ ...base, "user-variables": 5 }, /^event-data\.user-variables: expected an object, an array or JSON text\.$/],
  ];
  for (const [eventData, expected] of cases) {
    assert.throws(() => parseEventData(eventData), (error) => {
      assert.ok(error instanceof UnusableEventError);
      assert.match(error.message, expected);
      assert.ok(!error.message.includes("private.person"), error.message);
      return true;
    }, JSON.stringify(eventData)?.slice(0, 80));
  }
});

Deno.test("ignored events are not held to the tracked fields' shape", () => {
  const parsed = parseEventData({ event: "opened", timestamp: "soon", "user-variables": 5, message: "m" });
  assert.equal(parsed.effect, null);
});
