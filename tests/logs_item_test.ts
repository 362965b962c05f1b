/** A Logs API item as webhook event-data (src/reconcile/logs_item.ts). */
import assert from "node:assert/strict";
import { logsItemToEventData } from "../src/reconcile/logs_item.ts";
import { rfc2822 } from "../src/reconcile/mailgun_logs_client.ts";
import { parseEventData } from "../src/mailgun/parse_event_data.ts";

Deno.test("a Logs item gets the timestamp of its @timestamp, in seconds to the millisecond, and keeps the rest", () => {
  const item = {
    id: "JDhSWf9mT5OFxCkZfpDU5d",
    event: "failed",
    severity: "permanent",
    "@timestamp": "2024-07-08T16:30:18.530Z",
    domain: { name: "example.com" },
    recipient: "someone@example.com",
    message: { headers: { "message-id": "20240708163000.abc@example.com" } },
  };
  const data = logsItemToEventData(item);
  assert.equal(data.timestamp, 1720456218.53);
  assert.equal(data["@timestamp"], item["@timestamp"]);
  assert.deepEqual(data.domain, item.domain);
  const parsed = parseEventData(data);
  assert.deepEqual([parsed.id, parsed.messageId, parsed.timestamp], [
    item.id,
    "20240708163000.abc@example.com",
    1720456218.53,
  ]);
});

Deno.test("an item that already has a numeric timestamp is left alone; one whose @timestamp is no time gets none", () => {
  const withTimestamp = {
    id: "x",
    event: "delivered",
    timestamp: 1720456218.530123,
    "@timestamp": "2024-07-08T16:30:18.530Z",
  };
  assert.equal(logsItemToEventData(withTimestamp).timestamp, 1720456218.530123);
  assert.equal("timestamp" in logsItemToEventData({ id: "y", event: "delivered", "@timestamp": "soon" }), false);
});

Deno.test("the window's times go out in RFC 2822, as Mailgun's Logs API documents them", () => {
  assert.equal(rfc2822(new Date("2024-07-08T00:00:00Z")), "Mon, 08 Jul 2024 00:00:00 +0000");
});
