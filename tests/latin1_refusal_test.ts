/**
 * When the database refuses the event's data (SQLSTATE class 22 or 54; here a
 * character a LATIN1 database cannot hold), the answer is 406 and the token is
 * spent all the same, in every path: the same signature cannot then carry a
 * storable body, while a re-delivery of the same event gets 406 again. The
 * LATIN1 test needs real PostgreSQL (PGlite is always UTF8).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import type { TestDatabase } from "./helpers/test_database.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "./helpers/test_service.ts";

const adminUrl = Deno.env.get("DATABASE_URL");

async function createLatin1Database(): Promise<TestDatabase> {
  const name = `mgwh_latin1_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(adminUrl!, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name} encoding 'LATIN1' lc_collate 'C' lc_ctype 'C' template template0`);
  await admin.end();
  const url = new URL(adminUrl!);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    kind: "postgres",
    poolMax: 8,
    async drop() {
      const admin = postgres(adminUrl!, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

async function tokenCount(svc: TestService, token: string): Promise<number> {
  const [row] = await svc.sql`select count(*)::int as n from mailgun_webhook.tokens where token = ${token}`;
  return row.n;
}

Deno.test({
  name: "LATIN1 database: an unencodable character gets 406, the token is spent, the same signature then gets 401",
  ignore: !adminUrl,
  async fn() {
    const db = await createLatin1Database();
    const svc = await startTestService({}, db);
    try {
      const unencodable = {
        "tracked, alone": (m: string) => eventData("delivered", m, { tags: ["recibo \u{1F9FE}"] }),
        "tracked, CJK subject": (m: string) => eventData("permanent", m, { subject: "\u8acb\u6c42\u66f8" }),
        "ignored event": (m: string) => eventData("opened", m, { tags: ["\u{1F440}"] }),
        "no message id": (_: string) =>
          eventData("delivered", "x@y", { message: { headers: {} }, tags: ["\u2603\u{1F600}"] }),
      };
      for (const [name, build] of Object.entries(unencodable)) {
        const messageId = newMessageId();
        const id = await insertRow(svc.sql, "documents", messageId);
        const { body, signature } = signedBody(svc.key, build(messageId));
        const refused = await post(svc.url, body);
        assert.equal(refused.status, 406, name);
        assert.equal(svc.logs.at(-1)!.outcome, "unacceptable", name);
        assert.equal(await tokenCount(svc, signature.token), 1, name);
        // Mailgun does not retry a 406, but a re-delivery of the same body gets the same answer.
        assert.equal((await post(svc.url, body)).status, 406, name);
        // The captured signature cannot carry a storable body.
        const forged = signedBody(svc.key, eventData("complained", messageId), signature);
        assert.equal((await post(svc.url, forged.body)).status, 401, name);
        assert.equal(svc.logs.at(-1)!.outcome, "replayed", name);
        const state = await rowState(svc.sql, "documents", id);
        assert.equal(state.status, "SENT", name);
        assert.equal(state.events.length, 0, name);
      }

      // In a batch with storable webhooks: they are written, the refused one's token is spent.
      const rows = await Promise.all(Array.from({ length: 4 }, async () => {
        const messageId = newMessageId();
        return { messageId, id: await insertRow(svc.sql, "documents", messageId) };
      }));
      const bad = signedBody(svc.key, eventData("complained", rows[0].messageId, { tags: ["\u{1F4A5}"] }));
      const goods = rows.slice(1).map(({ messageId }) => signedBody(svc.key, eventData("delivered", messageId)).body);
      const answers = await Promise.all([bad.body, ...goods].map((body) => post(svc.url, body)));
      assert.deepEqual(answers.map((answer) => answer.status), [406, 200, 200, 200]);
      for (const { id } of rows.slice(1)) assert.equal((await rowState(svc.sql, "documents", id)).status, "DELIVERED");
      const forged = signedBody(svc.key, eventData("complained", rows[0].messageId), bad.signature);
      assert.equal((await post(svc.url, forged.body)).status, 401);
      assert.equal((await rowState(svc.sql, "documents", rows[0].id)).status, "SENT");
    } finally {
      await svc.close();
      await db.drop();
    }
  },
});

Deno.test("an event the database refuses for its size (54000): 406, and a re-delivery however serialised gets 406 again", async () => {
  const svc = await startTestService();
  try {
    // The database refusing an event for its size (54000, program_limit_exceeded), after it could read it:
    // made to happen at will with a trigger on a marker, as a jsonb or index limit would.
    await svc.sql.unsafe(`
      create function test_refuse_marked() returns trigger language plpgsql as $$
      begin
        if new.event_data ? 'test-too-large' then
          raise exception 'event-data too large' using errcode = '54000';
        end if;
        return new;
      end
      $$;
      create trigger test_refuse_marked before insert on email_events
        for each row execute function test_refuse_marked();
    `);
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("complained", messageId, { "test-too-large": true });
    const { body, signature } = signedBody(svc.key, data);
    const refused = await post(svc.url, body);
    assert.equal(refused.status, 406, JSON.stringify(refused.json));
    assert.equal(await tokenCount(svc, signature.token), 1);
    // A genuine re-delivery: the same body, or the same event-data written otherwise, under the same signature.
    assert.equal((await post(svc.url, body)).status, 406);
    const respaced = JSON.stringify({ "event-data": data, signature }, null, 2);
    assert.equal((await post(svc.url, respaced)).status, 406);
    // The captured signature cannot carry another body.
    const forged = signedBody(svc.key, eventData("complained", messageId), signature);
    assert.equal((await post(svc.url, forged.body)).status, 401);
    assert.equal((await rowState(svc.sql, "documents", id)).status, "SENT");
  } finally {
    await svc.close();
  }
});
