import assert from "node:assert/strict";
import postgres from "postgres";
import { run } from "./helpers/subprocess.ts";
import { createTestDatabase } from "./helpers/test_database.ts";

const MIGRATIONS = [...Deno.readDirSync(new URL("../migrations/", import.meta.url))]
  .filter((entry) => entry.name.endsWith(".sql")).length;

Deno.test("deno task migrate: applies, is safe twice and twice at the same moment", async () => {
  const db = await createTestDatabase();
  try {
    const migrate = () => run(["task", "migrate"], { env: { DATABASE_URL: db.url } });
    // PGlite has a single session, so two migrations at once can only be told apart on a real server.
    const first = db.kind === "postgres" ? await Promise.all([migrate(), migrate()]) : [await migrate()];
    for (const result of first) assert.equal(result.code, 0, result.stderr);
    assert.equal(first.filter((r) => r.stdout.includes("Applied: 0008_own_namespace.sql")).length, 1);
    const again = await migrate();
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Schema is up to date\./);
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql`select count(*)::int as n from mailgun_webhook.schema_migrations`;
      assert.equal(row.n, MIGRATIONS);
      // A row with only the two columns the API sets.
      await sql`insert into documents (email_message_id, email_status) values ('<a@b>', 'SENT')`;
      await sql`insert into tenants (email_message_id, email_status) values ('a@b', 'SENT')`;
      // The API's own statuses are its business: nothing rejects them.
      await sql`insert into documents (email_message_id, email_status) values ('x', 'PENDING')`;
    } finally {
      await sql.end();
    }
  } finally {
    await db.drop();
  }
});

Deno.test("the trail is append-only, each entry belongs to one row, and goes with it when the API deletes it", async () => {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    assert.equal((await run(["task", "migrate"], { env: { DATABASE_URL: db.url } })).code, 0);
    const [doc] = await sql`insert into documents (email_message_id, email_status) values ('m', 'SENT') returning id`;
    const [other] = await sql`insert into documents (email_message_id, email_status) values ('n', 'SENT') returning id`;
    const [tenant] = await sql`insert into tenants (email_message_id, email_status) values ('m', 'SENT') returning id`;
    const insert = (documentId: unknown, tenantId: unknown, eventId = "e") =>
      sql`insert into email_events (document_id, tenant_id, type, mailgun_event_id, event_timestamp, event_data)
          values (${documentId as number}, ${tenantId as number}, 'EMAIL_DELIVERED', ${eventId}, now(), '{}')`;
    await insert(doc.id, null);
    await insert(doc.id, null, "e2");
    await insert(other.id, null);
    await insert(null, tenant.id);
    await assert.rejects(insert(doc.id, tenant.id), /email_events_one_owner/);
    await assert.rejects(insert(null, null), /email_events_one_owner/);
    await assert.rejects(sql`update email_events set type = 'EMAIL_FAILED'`, /append-only/);
    await assert.rejects(sql`update email_events set recipient = null`, /append-only/);
    await assert.rejects(sql`delete from email_events`, /append-only/);
    await assert.rejects(sql`delete from email_events where document_id = ${doc.id}`, /append-only/);
    await assert.rejects(sql`truncate email_events`, /append-only/);
    // The API deletes a document and a tenant that have a trail: their entries go with them, and only theirs.
    await sql`delete from documents where id = ${doc.id}`;
    await sql`delete from tenants where id = ${tenant.id}`;
    const left = await sql`select document_id, tenant_id from email_events order by id`;
    assert.deepEqual(left.map((row) => ({ ...row })), [{ document_id: other.id, tenant_id: null }]);
    await assert.rejects(sql`delete from email_events`, /append-only/);
  } finally {
    await sql.end();
    await db.drop();
  }
});

Deno.test("deno task migrate without DATABASE_URL stops with a one-line message", async () => {
  const result = await run(["task", "migrate"]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /DATABASE_URL is required/);
});
