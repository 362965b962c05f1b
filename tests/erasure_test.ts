/** An erasure request: one person's data leaves the trail; to everything else the trail stays append-only. */
import assert from "node:assert/strict";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { run } from "./helpers/subprocess.ts";
import { insertRow, newMessageId, startTestService } from "./helpers/test_service.ts";

const ADDRESS = "alice.o'hara+invoices@example.org";

Deno.test("deno task erase <address> erases one person's data from the trail, and nobody else's", async () => {
  const svc = await startTestService();
  try {
    const send = async (data: Record<string, unknown>) =>
      assert.equal((await post(svc.url, signedBody(svc.key, data).body)).status, 200);
    const aliceDoc = newMessageId();
    const bobDoc = newMessageId();
    await insertRow(svc.sql, "documents", aliceDoc);
    await insertRow(svc.sql, "documents", bobDoc);
    const failed = eventData("permanent", aliceDoc, {
      recipient: ADDRESS.toUpperCase(),
      envelope: { sender: "invoices@mg.example.com", targets: ADDRESS, transport: "smtp" },
      "delivery-status": { code: 550, message: `5.1.1 <${ADDRESS}>: Recipient address rejected` },
      "user-variables": { customer: { email: ADDRESS, plan: "pro" } },
      tags: ["invoice", ADDRESS],
    });
    const headers = (failed.message as { headers: Record<string, string> }).headers;
    headers.to = `Alice O'Hara <${ADDRESS}>`;
    await send(failed);
    await send(eventData("delivered", aliceDoc, { recipient: ADDRESS }));
    await send(eventData("delivered", bobDoc, { recipient: "bob@example.org" }));
    const trail = async () =>
      (await svc.sql`select id, document_id, type, mailgun_event_id, event_timestamp, severity, reason, received_at,
                              recipient, event_data from email_events order by id`).map((row) => ({ ...row }));
    const before = await trail();
    assert.equal(before.length, 3);

    const erase = () =>
      run(["task", "erase", ADDRESS.replace("alice", "Alice")], { env: { DATABASE_URL: svc.db.url } });
    const result = await erase();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Erased the address from 2 trail entries/);
    assert.ok(!result.stdout.toLowerCase().includes(ADDRESS), "the address was echoed");

    const after = await trail();
    for (const [i, row] of after.entries()) {
      const { recipient: _r, event_data: _e, ...kept } = row;
      const { recipient: _br, event_data: _be, ...keptBefore } = before[i];
      assert.deepEqual(kept, keptBefore, "only recipient and event_data change");
    }
    assert.deepEqual(after[2], before[2], "another person's entry is untouched");
    for (const row of after.slice(0, 2)) {
      const data = row.event_data as Record<string, unknown>;
      assert.equal(row.recipient, null);
      assert.ok(!JSON.stringify(data).toLowerCase().includes(ADDRESS), JSON.stringify(data));
      assert.equal(data.recipient, undefined);
      assert.equal(data.storage, undefined);
      assert.deepEqual((data.message as Record<string, unknown>).headers, { "message-id": aliceDoc });
    }
    const data = after[0].event_data as Record<string, Record<string, unknown>>;
    assert.deepEqual(data.envelope, { transport: "smtp" });
    assert.equal(data["delivery-status"].message, "5.1.1 <[erased]>: Recipient address rejected");
    assert.deepEqual(data["user-variables"], { customer: { email: "[erased]", plan: "pro" } });
    assert.deepEqual(data.tags, ["invoice", "[erased]"]);
    assert.equal(after[0].type, "EMAIL_FAILED");

    // Mailgun re-delivering an erased event brings nothing back (the trail's key is the event, not its data).
    await send(failed);
    assert.deepEqual(await trail(), after);
    const again = await erase();
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Erased the address from 0 trail entries/);
  } finally {
    await svc.close();
  }
});

Deno.test("outside the erasure function, the trail stays append-only", async () => {
  const svc = await startTestService();
  try {
    const messageId = newMessageId();
    await insertRow(svc.sql, "documents", messageId);
    assert.equal((await post(svc.url, signedBody(svc.key, eventData("delivered", messageId)).body)).status, 200);
    await assert.rejects(svc.sql`update email_events set recipient = null`, /append-only: erase a person's data/);
    await assert.rejects(svc.sql`update email_events set event_data = '{}'`, /append-only/);
    // Even with the function's own setting, an update may change only recipient and event_data.
    await assert.rejects(
      svc.sql.begin(async (tx) => {
        await tx`select set_config('email_events.erasing', 'on', true)`;
        await tx`update email_events set type = 'EMAIL_FAILED'`;
      }),
      /an erasure changes only recipient and event_data/,
    );
    // The setting does not outlive the function inside the caller's transaction.
    await assert.rejects(
      svc.sql.begin(async (tx) => {
        await tx`select mailgun_webhook.erase_recipient('nobody@example.org')`;
        await tx`update email_events set recipient = 'x'`;
      }),
      /append-only/,
    );
    await assert.rejects(
      svc.sql`select mailgun_webhook.erase_recipient('  ')`,
      /An email address to erase is required/,
    );
    const result = await run(["task", "erase", "not-an-address"], { env: { DATABASE_URL: svc.db.url } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Usage: deno task erase/);
  } finally {
    await svc.close();
  }
});
