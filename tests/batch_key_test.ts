/**
 * The batch keeps one event (by id) out of a statement that holds it already.
 * Keyed once by id and JavaScript-rounded microseconds, two deliveries of one
 * event whose timestamps JavaScript and PostgreSQL round differently (Mailgun's
 * own `complained` sample: …268415 in JavaScript, …268414 in PostgreSQL) shared
 * a statement, and both reported a trail entry appended.
 */
import assert from "node:assert/strict";
import { createBatchWriter } from "../src/batch_writer/batch_writer.ts";
import type { BatchRow } from "../src/db/write_batch_query.ts";
import { newToken } from "../src/mailgun/sign_webhook.ts";
import { insertRow, newMessageId, rowState, startTestService } from "./helpers/test_service.ts";

Deno.test("two deliveries of one event in the same tick: one appended, one duplicate, whatever the rounding", async () => {
  const svc = await startTestService();
  try {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const writer = createBatchWriter(svc.sql, {
      maxBatch: 16,
      maxInFlight: 1,
      queryTimeoutMs: 5_000,
      lockTimeoutMs: 1_000,
      deadlineMs: 6_000,
      maxQueued: 100,
    });
    // 1770920772.2684145 * 1e6 rounds up in JavaScript and down in PostgreSQL: one stored microsecond.
    const row = (timestamp: number): BatchRow => ({
      kind: "event",
      token: newToken(),
      signedAt: Math.floor(Date.now() / 1000),
      event: {
        type: "EMAIL_COMPLAINED",
        status: "COMPLAINED",
        eventId: "batch-key-event",
        eventTimestamp: timestamp,
        messageId: messageId.slice(1, -1),
        recipient: null,
        severity: null,
        reason: null,
        eventData: JSON.stringify({ event: "complained", id: "batch-key-event", timestamp }),
      },
    });
    assert.notEqual(Math.round(1770920772.2684145 * 1e6), Math.round(1770920772.268414 * 1e6));
    // Queued in the same tick: they would share one statement if their keys differed.
    const results = await Promise.all([writer.write(row(1770920772.2684145)), writer.write(row(1770920772.268414))]);
    await writer.drain();
    assert.deepEqual(results.map((result) => result.appended).sort(), [0, 1]);
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 1);
  } finally {
    await svc.close();
  }
});
