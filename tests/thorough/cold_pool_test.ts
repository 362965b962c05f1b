import assert from "node:assert/strict";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import postgres from "postgres";
import { createTestDatabase } from "../helpers/test_database.ts";
import { insertRow, newMessageId, startTestService } from "../helpers/test_service.ts";

// Regression: postgres.js serialised array parameters as plain strings on a
// connection still fetching the server's array types, so webhooks that
// arrived while the pool was opening failed ("malformed array literal") and
// were answered 406: events lost. Every webhook of a cold burst must apply.
Deno.test("a burst on a cold pool: every webhook is applied", async () => {
  const db = await createTestDatabase();
  try {
    // The race needed a statement queued on a connection while it opened: several cold starts make it likely.
    for (let round = 0; round < 12; round++) {
      const svc = await startTestService({}, db);
      try {
        const messageIds = Array.from({ length: 48 }, () => newMessageId());
        const bodies = messageIds.map((messageId) => signedBody(svc.key, eventData("delivered", messageId)).body);
        const setup = postgres(db.url, { max: 1, onnotice: () => {} });
        for (const messageId of messageIds) await insertRow(setup, "documents", messageId);
        await setup.end();
        const responses = await Promise.all(bodies.map((body) => post(svc.url, body)));
        assert.deepEqual(responses.map((r) => r.status), bodies.map(() => 200), `round ${round}`);
      } finally {
        await svc.close();
      }
    }
  } finally {
    await db.drop();
  }
});
