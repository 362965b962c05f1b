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

Deno.test({
  name:
    "an instance that is behind sheds new webhooks with 503 once a whole batch waits and the oldest has waited too long",
  // Holding a row lock needs a second session; the embedded database has one.
  ignore: !Deno.env.get("DATABASE_URL"),
  fn: async () => {
    const svc = await startTestService({
      BATCH_QUEUE_WAIT_MAX_MS: "50",
      BATCH_IN_FLIGHT: "1",
      BATCH_MAX: "1",
      DB_LOCK_TIMEOUT_MS: "3000",
    });
    try {
      const ids = [newMessageId(), newMessageId(), newMessageId()];
      const docs: number[] = [];
      for (const id of ids) docs.push(await insertRow(svc.sql, "documents", id));
      const [held, queued, late] = ids.map((id) => signedBody(svc.key, eventData("delivered", id)).body);
      let release!: () => void;
      const released = new Promise<void>((resolve) => release = resolve);
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => locked = resolve);
      const holder = svc.sql.begin(async (tx) => {
        await tx`select id from documents where id = ${docs[0]} for update`;
        locked();
        await released;
      });
      await isLocked;
      const first = post(svc.url, held); // its statement waits for the lock
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = post(svc.url, queued); // waits behind that statement
      await new Promise((resolve) => setTimeout(resolve, 200));
      const third = await post(svc.url, late); // a whole batch (one) waits, and has waited 200 ms > 50 ms
      assert.equal(third.status, 503);
      release();
      await holder;
      assert.equal((await first).status, 200);
      assert.equal((await second).status, 200);
      // Mailgun's retry of the shed one is applied once the instance has caught up.
      assert.deepEqual((await post(svc.url, late)).json, { ok: true, outcome: "applied" });
    } finally {
      await svc.close();
    }
  },
});
