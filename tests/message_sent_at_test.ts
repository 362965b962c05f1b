/** The send time a Mailgun Message-ID carries (src/reconcile/message_sent_at.ts). */
import assert from "node:assert/strict";
import { messageSentAt } from "../src/reconcile/message_sent_at.ts";

Deno.test("the send time is read from a Mailgun Message-ID, with or without brackets, and only from a real date", () => {
  const expected = new Date("2026-02-03T19:20:30Z");
  assert.deepEqual(messageSentAt("20260203192030.53383e583ab41f62@sample.mailgun.com"), expected);
  assert.deepEqual(messageSentAt("<20260203192030.53383e583ab41f62@sample.mailgun.com>"), expected);
  for (
    const undated of ["<1770146431.abc@mg.x>", "20260231120000.abc@mg.x", "20261301120000.x@y", "2026020319203.x@y"]
  ) {
    assert.equal(messageSentAt(undated), undefined, undated);
  }
  assert.equal(messageSentAt("20260203256030.x@y"), undefined);
});
