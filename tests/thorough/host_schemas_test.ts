/**
 * The API's tables as ORMs and migration tools leave them (Rails, an ORM
 * with uuid keys, dbmate): `migrate` keeps their own migration table, their
 * CHECKs and keys as they are, references their keys whatever their type,
 * and a webhook reaches their rows.
 */
import assert from "node:assert/strict";
import postgres, { type Sql } from "postgres";
import { migrate } from "../../src/db/migrate.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/test_database.ts";
import { newMessageId, startTestService } from "../helpers/test_service.ts";

/** Rails: its schema_migrations(version) and ar_internal_metadata, integer ids, varchar statuses with inline CHECKs. */
const RAILS = `
  create table schema_migrations (version character varying not null primary key);
  create table ar_internal_metadata (key character varying not null primary key, value character varying,
    created_at timestamp(6) not null, updated_at timestamp(6) not null);
  insert into schema_migrations values ('20240105120000'), ('20240312093015'), ('20250101000000');
  insert into ar_internal_metadata values ('environment', 'production', '2024-01-05', '2024-01-05');
  create table tenants (id serial primary key, name character varying,
    email_message_id character varying, email_status character varying
      check (email_status in ('SENT', 'DELIVERED', 'FAILED', 'COMPLAINED', 'PENDING')));
  create table documents (id serial primary key, tenant_id integer references tenants (id),
    email_message_id character varying, email_status character varying
      check (email_status in ('SENT', 'DELIVERED', 'FAILED', 'COMPLAINED', 'PENDING')),
    created_at timestamp(6) not null default now());
`;

/** An ORM with uuid keys (Prisma's names: its _prisma_migrations, its default index names). */
const UUID_ORM = `
  create table _prisma_migrations (id varchar(36) primary key, checksum varchar(64) not null,
    finished_at timestamptz, migration_name varchar(255) not null, logs text, rolled_back_at timestamptz,
    started_at timestamptz not null default now(), applied_steps_count integer not null default 0);
  insert into _prisma_migrations (id, checksum, migration_name, finished_at)
    values ('8a2b6a7e-0000-4000-8000-000000000001', 'abc', '20240101000000_init', '2024-01-01');
  create table tenants (id uuid primary key default gen_random_uuid(), name text,
    email_message_id text, email_status text);
  create table documents (id uuid primary key default gen_random_uuid(), tenant_id uuid references tenants (id),
    email_message_id text, email_status text default 'PENDING');
  create index documents_email_message_id_idx on documents (email_message_id);
`;

/** dbmate: its schema_migrations(version varchar(128)), bigint keys. */
const DBMATE = `
  create table schema_migrations (version character varying(128) primary key);
  insert into schema_migrations values ('20240101000000'), ('20240202000000');
  create table tenants (id bigserial primary key, email_message_id text, email_status text);
  create table documents (id bigint generated always as identity primary key, email_message_id text,
    email_status text check (email_status <> ''));
`;

async function withApiDatabase(ddl: string, work: (sql: Sql, db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(ddl);
    await work(sql, db);
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}

/** A table as it stands: its columns and every row, to compare byte for byte. */
async function tableState(sql: Sql, table: string) {
  const columns = await sql`
    select attname::text, format_type(atttypid, atttypmod) as type, attnotnull from pg_attribute
    where attrelid = ${table}::regclass and attnum > 0 and not attisdropped order by attnum`;
  const rows = await sql`select to_jsonb(t)::text as row from ${sql(table)} t order by 1`;
  return { columns: columns.map((row) => ({ ...row })), rows: rows.map((row) => row.row) };
}

async function trailKeyTypes(sql: Sql): Promise<string[]> {
  const rows = await sql`
    select format_type(atttypid, atttypmod) as type from pg_attribute
    where attrelid = 'email_events'::regclass and attname in ('document_id', 'tenant_id') order by attname`;
  return rows.map((row) => row.type as string);
}

/** A delivered webhook for a new row of each table, through the service: status and trail written. */
async function webhookReachesRows(db: TestDatabase, insertRows: (sql: Sql, messageId: string) => Promise<void>) {
  const svc = await startTestService({}, db);
  try {
    const messageId = newMessageId();
    await insertRows(svc.sql, messageId);
    const response = await post(svc.url, signedBody(svc.key, eventData("delivered", messageId)).body);
    assert.equal(response.status, 200, JSON.stringify(response.json));
    const statuses = await svc.sql`
      select email_status from documents where email_message_id = ${messageId}
      union all select email_status from tenants where email_message_id = ${messageId}`;
    assert.deepEqual(statuses.map((row) => row.email_status), ["DELIVERED", "DELIVERED"]);
    const [{ entries }] = await svc.sql`
      select count(*)::int as entries from email_events e
      where e.document_id in (select id from documents where email_message_id = ${messageId})
         or e.tenant_id in (select id from tenants where email_message_id = ${messageId})`;
    assert.equal(entries, 2);
  } finally {
    await svc.close();
  }
}

Deno.test("Rails tables: their schema_migrations and CHECKs stay, integer keys are referenced", async () => {
  await withApiDatabase(RAILS, async (sql, db) => {
    const before = await tableState(sql, "schema_migrations");
    const metadata = await tableState(sql, "ar_internal_metadata");
    await migrate(sql);
    assert.deepEqual(await tableState(sql, "schema_migrations"), before);
    assert.deepEqual(await tableState(sql, "ar_internal_metadata"), metadata);
    await assert.rejects(sql`insert into documents (email_status) values ('BOGUS')`, /documents_email_status_check/);
    await assert.rejects(sql`insert into tenants (email_status) values ('BOGUS')`, /tenants_email_status_check/);
    assert.deepEqual(await trailKeyTypes(sql), ["integer", "integer"]);
    // Ours lives in our namespace; the API's record is not ours to read.
    const [{ ours }] = await sql`select count(*)::int as ours from mailgun_webhook.schema_migrations`;
    assert.ok(ours > 0);
    await webhookReachesRows(db, async (svcSql, messageId) => {
      const [tenant] = await svcSql`insert into tenants (email_message_id, email_status)
                                    values (${messageId}, 'PENDING') returning id`;
      await svcSql`insert into documents (tenant_id, email_message_id, email_status)
                   values (${tenant.id}, ${messageId}, 'SENT')`;
    });
    assert.deepEqual(await tableState(sql, "schema_migrations"), before);
  });
});

Deno.test("an ORM's uuid keys: referenced as uuid, its own tables and index left as they are", async () => {
  await withApiDatabase(UUID_ORM, async (sql, db) => {
    const prisma = await tableState(sql, "_prisma_migrations");
    await migrate(sql);
    assert.deepEqual(await tableState(sql, "_prisma_migrations"), prisma);
    assert.deepEqual(await trailKeyTypes(sql), ["uuid", "uuid"]);
    // The API's index of the name an earlier release used is the API's: kept, ours built beside it.
    const indexes = await sql`
      select relname::text as name from pg_class where relname like '%documents\\_%message\\_id\\_idx' order by 1`;
    assert.deepEqual(indexes.map((row) => row.name), [
      "documents_email_message_id_idx",
      "mailgun_webhook_documents_message_id_idx",
    ]);
    await webhookReachesRows(db, async (svcSql, messageId) => {
      const [tenant] = await svcSql`insert into tenants (email_message_id) values (${messageId}) returning id`;
      await svcSql`insert into documents (tenant_id, email_message_id) values (${tenant.id}, ${messageId})`;
    });
  });
});

Deno.test("dbmate tables: its schema_migrations stays byte-identical, its CHECK still refuses", async () => {
  await withApiDatabase(DBMATE, async (sql, db) => {
    const before = await tableState(sql, "schema_migrations");
    await migrate(sql);
    assert.deepEqual(await tableState(sql, "schema_migrations"), before);
    await assert.rejects(sql`insert into documents (email_status) values ('')`, /documents_email_status_check/);
    assert.deepEqual(await trailKeyTypes(sql), ["bigint", "bigint"]);
    await webhookReachesRows(db, async (svcSql, messageId) => {
      await svcSql`insert into tenants (email_message_id, email_status) values (${messageId}, 'SENT')`;
      await svcSql`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
    });
  });
});

Deno.test("a key type the trail cannot reference (text ids) is refused up front, saying what is supported", async () => {
  await withApiDatabase(
    `create table documents (id text primary key, email_message_id text, email_status text);
     create table tenants (id bigint primary key, email_message_id text, email_status text);`,
    async (sql) => {
      await assert.rejects(
        migrate(sql),
        /0008_own_namespace\.sql failed: The API's table documents has an id of type text: the trail supports bigint, integer and uuid keys\./,
      );
      const [{ none }] = await sql`select to_regclass('email_events') is null as none`;
      assert.equal(none, true);
      const columns = await sql`select count(*)::int as n from pg_attribute
                                where attrelid = 'documents'::regclass and attname = 'email_status_at'`;
      assert.equal(columns[0].n, 0);
    },
  );
});

Deno.test("the API's own webhook_tokens is left alone; its own email_events is refused, naming the clash", async () => {
  const tables = `
    create table tenants (id bigserial primary key, email_message_id text, email_status text);
    create table documents (id bigserial primary key, email_message_id text, email_status text);`;
  await withApiDatabase(
    `${tables}
     create table webhook_tokens (id serial primary key, provider text, secret text);
     insert into webhook_tokens (provider, secret) values ('stripe', 's1'), ('github', 's2');`,
    async (sql) => {
      const before = await tableState(sql, "webhook_tokens");
      await migrate(sql);
      assert.deepEqual(await tableState(sql, "webhook_tokens"), before);
      const [{ tokens }] = await sql`select to_regclass('mailgun_webhook.tokens') is not null as tokens`;
      assert.equal(tokens, true);
    },
  );
  await withApiDatabase(
    `${tables}
     create table email_events (id serial primary key, kind text);`,
    async (sql) => {
      await assert.rejects(migrate(sql), /The API already has a table email_events/);
    },
  );
});
