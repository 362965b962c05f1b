/** `deno task migrate` on the API's own tables: they keep their columns, values and rows. */
import assert from "node:assert/strict";
import postgres from "postgres";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { run } from "./helpers/subprocess.ts";
import { createTestDatabase } from "./helpers/test_database.ts";
import { newMessageId, startTestService } from "./helpers/test_service.ts";

/** Tables as the API might have made them: more columns, NOT NULL ones with defaults, statuses of its own. */
const API_TABLES = `
  create table tenants (
    id bigserial primary key,
    name text not null default 'unnamed',
    plan text not null default 'free' check (plan in ('free', 'pro')),
    email_message_id varchar(255),
    email_status varchar(32),
    created_at timestamptz not null default '2026-01-01T00:00:00Z'
  );
  create table documents (
    id bigint generated always as identity primary key,
    tenant_id bigint not null references tenants (id),
    number text not null,
    total numeric(12, 2) not null default 0,
    email_message_id text,
    email_status text not null default 'PENDING',
    metadata jsonb
  );
  create index documents_tenant_id_idx on documents (tenant_id);
  insert into tenants (name, plan, email_message_id, email_status) values
    ('Acme', 'pro', '<t1@mg.example.com>', 'PENDING'),
    ('Beta', 'free', null, null),
    ('Gamma', 'free', 't3@mg.example.com', 'delivered');
  insert into documents (tenant_id, number, total, email_message_id, email_status, metadata) values
    (1, 'F-1', 10.50, '<d1@mg.example.com>', 'PENDING', '{"a": 1}'),
    (1, 'F-2', 0, null, 'BOUNCED', null),
    (2, 'F-3', 99.99, 'd3@mg.example.com', 'sent', '[]'),
    (3, 'F-4', 1, '<d4@mg.example.com>', 'SENT', null);
`;

Deno.test("deno task migrate on the API's existing tables leaves their rows and values as they were", async () => {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(API_TABLES);
    const snapshot = async () => ({
      documents: (await sql`select to_jsonb(d) - 'email_status_at' as row from documents d order by id`)
        .map((r) => r.row),
      tenants: (await sql`select to_jsonb(t) - 'email_status_at' as row from tenants t order by id`).map((r) => r.row),
    });
    const before = await snapshot();
    const result = await run(["task", "migrate"], { env: { DATABASE_URL: db.url } });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await snapshot(), before);
    const [{ n }] = await sql`select count(*)::int as n from documents where email_status_at is not null`;
    assert.equal(n, 0);
    // The API goes on inserting its own values, and deleting its rows.
    await sql`insert into documents (tenant_id, number) values (2, 'F-5')`;
    await sql`insert into documents (tenant_id, number, email_status) values (2, 'F-6', 'whatever')`;
    await sql`insert into tenants (email_status) values ('PENDING')`;
    const [{ status }] = await sql`select email_status as status from documents where number = 'F-5'`;
    assert.equal(status, "PENDING");
    // The message-id index exists and is valid.
    const indexes = await sql`
      select c.relname as name, i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
      where c.relname in ('mailgun_webhook_documents_message_id_idx', 'mailgun_webhook_tenants_message_id_idx') order by 1`;
    assert.deepEqual(indexes.map((r) => ({ ...r })), [
      { name: "mailgun_webhook_documents_message_id_idx", valid: true },
      { name: "mailgun_webhook_tenants_message_id_idx", valid: true },
    ]);
  } finally {
    await sql.end();
    await db.drop();
  }
});

Deno.test("statuses outside the ladder (PENDING, BOUNCED, lowercase, NULL) rank below SENT and are climbed from", async () => {
  const db = await createTestDatabase();
  const setup = postgres(db.url, { max: 1, onnotice: () => {} });
  await setup.unsafe(API_TABLES);
  await setup.end();
  const svc = await startTestService({}, db);
  try {
    const cases: ["documents" | "tenants", string | null][] = [
      ["documents", "PENDING"],
      ["documents", "BOUNCED"],
      ["documents", "delivered"],
      ["tenants", null],
    ];
    for (const [table, initial] of cases) {
      const messageId = newMessageId();
      const [row] = table === "documents"
        ? await svc.sql`insert into documents (tenant_id, number, email_message_id, email_status)
                        values (1, 'X', ${messageId}, ${initial}) returning id`
        : await svc.sql`insert into tenants (email_message_id, email_status) values (${messageId}, ${initial})
                        returning id`;
      const response = await post(svc.url, signedBody(svc.key, eventData("delivered", messageId)).body);
      assert.equal(response.status, 200);
      const [after] = table === "documents"
        ? await svc.sql`select email_status from documents where id = ${row.id}`
        : await svc.sql`select email_status from tenants where id = ${row.id}`;
      assert.equal(after.email_status, "DELIVERED", `${table} from ${initial}`);
    }
  } finally {
    await svc.close();
    await db.drop();
  }
});
