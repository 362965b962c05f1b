/** From release f0e3176's schema (objects in the API's schema) to the namespace, rows and all. */
import assert from "node:assert/strict";
import postgres, { type Sql } from "postgres";
import { migrate } from "../../src/db/migrate.ts";
import { buildLegacyDatabase } from "../helpers/legacy_database.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { serviceCatalog } from "../helpers/schema_catalog.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/test_database.ts";
import { newMessageId, startTestService } from "../helpers/test_service.ts";

const NEW_MIGRATIONS = [...Deno.readDirSync(new URL("../../migrations/", import.meta.url))]
  .map((entry) => entry.name).filter((name) => name.endsWith(".sql")).sort();

async function withDatabase(work: (sql: Sql, db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await work(sql, db);
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}

/** What the rows say, to compare before and after: the API's rows, the trail, the tokens. */
async function rows(sql: Sql, tokens: string) {
  const all = async (query: Promise<{ row: unknown }[]>) => (await query).map((r) => r.row);
  return {
    documents: await all(sql`select to_jsonb(d) as row from documents d order by id`),
    tenants: await all(sql`select to_jsonb(t) as row from tenants t order by id`),
    // feed_txid (0016) is new: entries written before it keep NULL, checked apart.
    trail: await all(sql`select to_jsonb(e) - 'feed_txid' as row from email_events e order by id`),
    tokens: await all(sql.unsafe(
      `select jsonb_build_object('token', token, 'hash', encode(body_hash, 'hex'), 'signed_at', signed_at,
         'consumed_at', consumed_at, 'slot', slot) as row from ${tokens} order by token`,
    )),
  };
}

/** Objects of ours the earlier release left in the API's schema: none may remain but the trail's. */
async function legacyLeftovers(sql: Sql): Promise<string[]> {
  const found = await sql`
    select c.relname::text as name from pg_class c
    where c.relnamespace = current_schema()::regnamespace
      and (c.relname like 'webhook\\_tokens%' or c.relname = 'schema_migrations'
           or c.relname in ('documents_unsettled_idx', 'tenants_unsettled_idx'))
    union all
    select p.proname::text from pg_proc p
    where p.pronamespace = current_schema()::regnamespace
      and (p.proname like 'email\\_events\\_%' or p.proname like 'webhook\\_%'
           or p.proname in ('email_status_rank', 'prune_webhook_token_slots'))
    union all
    select t.tgname::text from pg_trigger t where t.tgrelid = 'email_events'::regclass and not t.tgisinternal
      and not exists (
        select 1 from pg_proc p where p.oid = t.tgfoid and p.pronamespace = 'mailgun_webhook'::regnamespace)
    order by 1`;
  return found.map((row) => row.name as string);
}

Deno.test("an f0e3176 database moves into the namespace: rows kept, public left clean, as a fresh install", async () => {
  const key = `legacy-key-${crypto.randomUUID()}`;
  const fresh = await createTestDatabase();
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const freshSql = postgres(fresh.url, { max: 1, onnotice: () => {} });
    let expected;
    try {
      await migrate(freshSql);
      expected = await serviceCatalog(freshSql);
    } finally {
      await freshSql.end({ timeout: 5 });
    }

    await buildLegacyDatabase(sql);
    // Rows as f0e3176's service left them: statuses, a trail, tokens of today.
    const messageId = newMessageId();
    const data = eventData("delivered", messageId);
    const signed = signedBody(key, data);
    await sql`insert into documents (email_message_id, email_status, email_status_at) values
      (${messageId}, 'DELIVERED', to_timestamp(${data.timestamp as number})),
      ('<b@mg.example.com>', 'SENT', null), ('c@mg.example.com', 'PENDING', null), (null, null, null)`;
    await sql`insert into tenants (email_message_id, email_status, email_status_at) values
      ('<t@mg.example.com>', 'FAILED', '2026-01-02T03:04:05Z'), ('<u@mg.example.com>', 'SENT', null)`;
    await sql`insert into email_events (document_id, type, mailgun_event_id, event_timestamp, recipient, event_data)
      values (1, 'EMAIL_DELIVERED', ${data.id as string}, to_timestamp(${data.timestamp as number}),
              'alice@example.com', ${sql.json(data as postgres.JSONValue)})`;
    await sql`insert into email_events (tenant_id, type, mailgun_event_id, event_timestamp, recipient, severity, reason,
                                        event_data)
      values (1, 'EMAIL_FAILED', 'ev-t', '2026-01-02T03:04:05Z', 'bob@example.com', 'permanent', 'bounce',
              '{"event": "failed", "recipient": "bob@example.com"}')`;
    await sql`insert into webhook_tokens (token, body_hash, signed_at, slot)
      values (${signed.signature.token}, webhook_body_hash(${sql.json(data as postgres.JSONValue)}),
              to_timestamp(${Number(signed.signature.timestamp)}), webhook_token_slot(to_timestamp(${
      Number(signed.signature.timestamp)
    })))`;
    await sql`insert into webhook_tokens (token, body_hash, signed_at, slot)
      values ('other-token', '\\x00', now() - interval '1 day', webhook_token_slot(now() - interval '1 day'))`;
    const before = await rows(sql, "webhook_tokens");
    const legacyRecord = await sql`select name, checksum from schema_migrations order by name`;

    assert.deepEqual(await migrate(sql), NEW_MIGRATIONS);

    assert.deepEqual(await rows(sql, "mailgun_webhook.tokens"), before);
    // The trail's entries from before the feed stay out of it (0016 adds feed_txid without rewriting them).
    assert.equal((await sql`select id from email_events where feed_txid is not null`).length, 0);
    const adopted = await sql`
      select name, checksum from mailgun_webhook.schema_migrations where name < '0008' order by name`;
    assert.deepEqual(adopted.map((row) => ({ ...row })), legacyRecord.map((row) => ({ ...row })));
    assert.deepEqual(await legacyLeftovers(sql), []);
    // 0001 made documents and tenants (no API table was there): they are recorded as stand-ins.
    const standIns = await sql`select table_name from mailgun_webhook.stand_in_tables order by 1`;
    assert.deepEqual(standIns.map((row) => row.table_name), ["documents", "tenants"]);
    // The earlier message-id indexes stay (such a name may be the API's own); ours are built beside them.
    const kept = await sql`select relname::text as name from pg_class where relname like '%email\\_message\\_id\\_idx'
                           order by 1`;
    assert.deepEqual(kept.map((row) => row.name), ["documents_email_message_id_idx", "tenants_email_message_id_idx"]);

    assert.deepEqual(await serviceCatalog(sql), expected);

    // The moved tokens still bind their signatures to their bodies, through the service.
    const svc = await startTestService({ MAILGUN_WEBHOOK_SIGNING_KEY: key }, db);
    try {
      const forged = signedBody(key, eventData("complained", messageId), signed.signature);
      const replay = await post(svc.url, forged.body);
      assert.equal(replay.status, 401);
      assert.equal(svc.logs.at(-1)!.outcome, "replayed");
      const again = await post(svc.url, signed.body);
      assert.equal(again.status, 200);
      assert.equal(again.json.duplicate, true);
      assert.deepEqual(await rows(sql, "mailgun_webhook.tokens"), before);
      const [doc] = await sql`select email_status from documents where id = 1`;
      assert.equal(doc.email_status, "DELIVERED");
      // A new event is applied to a moved row, beside its old trail.
      const later = signedBody(key, eventData("complained", messageId));
      assert.equal((await post(svc.url, later.body)).status, 200);
      const trail = await sql`select type from email_events where document_id = 1 order by id`;
      assert.deepEqual(trail.map((row) => row.type), ["EMAIL_DELIVERED", "EMAIL_COMPLAINED"]);
    } finally {
      await svc.close();
    }
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
    await fresh.drop();
  }
});

Deno.test("an earlier release's database short of its last migration is refused before anything is applied", async () => {
  await withDatabase(async (sql) => {
    await buildLegacyDatabase(sql, "0005_trail_day_key.sql");
    await assert.rejects(
      migrate(sql),
      /earlier release of the service, but not to its last migration .*lacks 0006_unsettled_indexes\.sql, 0007_token_day_partitions\.sql.*f0e3176/,
    );
    const [{ none }] = await sql`select to_regnamespace('mailgun_webhook') is null as none`;
    assert.equal(none, true);
    const [{ record }] = await sql`select count(*)::int as record from schema_migrations`;
    assert.equal(record, 5);
  });
});

Deno.test("the API's tables under a 0001 legacy: their own columns mean they are not stand-ins", async () => {
  await withDatabase(async (sql) => {
    await sql`create table documents (id bigint generated by default as identity primary key, number text not null,
                                      email_message_id text, email_status text)`;
    await sql`create table tenants (id bigint generated by default as identity primary key, name text,
                                    email_message_id text, email_status text)`;
    await buildLegacyDatabase(sql);
    // The API's own index of the same name, on another column: not ours (its predicate does not call our rank).
    await sql`drop index tenants_unsettled_idx`;
    await sql`create index tenants_unsettled_idx on tenants (name) where email_status is null`;
    await migrate(sql);
    const [{ n }] = await sql`select count(*)::int as n from mailgun_webhook.stand_in_tables`;
    assert.equal(n, 0);
    const indexes = await sql`
      select relname::text as name from pg_class where relname like '%unsettled\\_idx' order by 1`;
    assert.deepEqual(indexes.map((row) => row.name), [
      "mailgun_webhook_documents_unsettled_idx",
      "mailgun_webhook_tenants_unsettled_idx",
      "tenants_unsettled_idx",
    ]);
    const [api] = await sql`select pg_get_indexdef('tenants_unsettled_idx'::regclass) as def`;
    assert.match(api.def, /\(name\) WHERE \(email_status IS NULL\)/);
  });
});

Deno.test("a record table of our shape holding rows of others: ours are adopted, theirs and the table stay", async () => {
  await withDatabase(async (sql) => {
    await buildLegacyDatabase(sql);
    await sql`insert into schema_migrations (name, checksum) values ('20240101_api_thing.sql', 'abc')`;
    await migrate(sql);
    const left = await sql`select name from schema_migrations order by name`;
    assert.deepEqual(left.map((row) => row.name).slice(-1), ["20240101_api_thing.sql"]);
    assert.equal(left.length, 8);
    const [{ n }] = await sql`select count(*)::int as n from mailgun_webhook.schema_migrations where name < '0008'`;
    assert.equal(n, 7);
    // Running again adopts nothing twice and applies nothing.
    assert.deepEqual(await migrate(sql), []);
  });
});
