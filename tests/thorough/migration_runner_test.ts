/** The migration runner: files outside a transaction, INVALID leftovers, checksums. */
import assert from "node:assert/strict";
import postgres, { type Sql } from "postgres";
import { migrate } from "../../src/db/migrate.ts";
import { sha256Hex } from "../../src/encoding/sha256_hex.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/test_database.ts";

const INDEX_MIGRATION = "0010_host_indexes.sql";

async function withDatabase(work: (sql: Sql, db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: db.kind === "embedded" ? 1 : 4, onnotice: () => {} });
  try {
    await work(sql, db);
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}

async function migrationsDir(files: Record<string, string>): Promise<{ url: URL; path: string }> {
  const path = await Deno.makeTempDir({ prefix: "migrations_" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${path}/${name}`, text);
  return { url: new URL(`file://${path}/`), path };
}

async function indexState(sql: Sql, name: string) {
  const rows = await sql`
    select i.indisvalid as valid, i.indisunique as unique from pg_index i join pg_class c on c.oid = i.indexrelid
    where c.relname = ${name}`;
  return rows.map((row) => ({ ...row }));
}

Deno.test("a '-- migrate: no-transaction' file runs statement by statement outside a transaction", async () => {
  await withDatabase(async (sql) => {
    const dir = await migrationsDir({
      "0001_table.sql": "create table t (id int, x text);\ninsert into t values (1, 'a;b');",
      "0002_index.sql": "-- migrate: no-transaction\n-- a comment; with a semicolon\n" +
        "create index concurrently if not exists t_x_idx on t (x);\n" +
        "create index concurrently if not exists t_id_idx on t (id);\n",
    });
    try {
      assert.deepEqual(await migrate(sql, dir.url), ["0001_table.sql", "0002_index.sql"]);
      assert.deepEqual(await indexState(sql, "t_x_idx"), [{ valid: true, unique: false }]);
      assert.deepEqual(await indexState(sql, "t_id_idx"), [{ valid: true, unique: false }]);
      // Without the marker, the same statement is refused: it would have run inside the file's transaction.
      await Deno.writeTextFile(`${dir.path}/0003_no_marker.sql`, "create index concurrently t_x2_idx on t (x);");
      await assert.rejects(migrate(sql, dir.url), /0003_no_marker\.sql failed: .*transaction block/);
      const [{ n }] =
        await sql`select count(*)::int as n from mailgun_webhook.schema_migrations where name = '0003_no_marker.sql'`;
      assert.equal(n, 0);
    } finally {
      await Deno.remove(dir.path, { recursive: true });
    }
  });
});

Deno.test("an INVALID index left by a failed concurrent build is dropped and built again", async () => {
  await withDatabase(async (sql) => {
    await migrate(sql);
    // As if the concurrent build had failed half-way: the index is there, INVALID, and the file unrecorded.
    await sql`drop index mailgun_webhook_documents_message_id_idx`;
    await sql`delete from mailgun_webhook.schema_migrations where name = ${INDEX_MIGRATION}`;
    await sql`insert into documents (email_message_id, email_status) values ('dup', 'SENT'), ('dup', 'SENT')`;
    await assert.rejects(
      sql`create unique index concurrently mailgun_webhook_documents_message_id_idx on documents (email_message_id)`,
    );
    assert.deepEqual(await indexState(sql, "mailgun_webhook_documents_message_id_idx"), [{
      valid: false,
      unique: true,
    }]);
    assert.deepEqual(await migrate(sql), [INDEX_MIGRATION]);
    assert.deepEqual(await indexState(sql, "mailgun_webhook_documents_message_id_idx"), [{
      valid: true,
      unique: false,
    }]);
  });
});

Deno.test({
  name: "the message-id index is built while another connection writes to documents",
  ignore: !Deno.env.get("DATABASE_URL"),
  async fn() {
    await withDatabase(async (sql, db) => {
      await migrate(sql);
      await sql`drop index mailgun_webhook_documents_message_id_idx`;
      await sql`delete from mailgun_webhook.schema_migrations where name = ${INDEX_MIGRATION}`;
      // An API transaction in flight: a concurrent build waits for it, without locking out other writers meanwhile.
      const open = await sql.reserve();
      const writer = postgres(db.url, { max: 1, onnotice: () => {}, connection: { lock_timeout: 5000 } });
      try {
        await open`begin`;
        await open`insert into documents (email_message_id, email_status) values ('held', 'SENT')`;
        const migrating = migrate(sql);
        migrating.catch(() => {});
        let waiting = false;
        for (let i = 0; i < 100 && !waiting; i++) {
          const [row] = await sql`
            select count(*)::int as n from pg_stat_activity
            where query ilike '%mailgun_webhook_documents_message_id_idx%' and wait_event_type = 'Lock'
              and pid <> pg_backend_pid()`;
          waiting = row.n > 0;
          if (!waiting) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.ok(waiting, "the index build never waited for the open transaction");
        // A plain CREATE INDEX would hold this insert behind it until lock_timeout.
        await writer`insert into documents (email_message_id, email_status) values ('during', 'SENT')`;
        await open`commit`;
        assert.deepEqual(await migrating, [INDEX_MIGRATION]);
        assert.deepEqual(await indexState(sql, "mailgun_webhook_documents_message_id_idx"), [{
          valid: true,
          unique: false,
        }]);
      } finally {
        // Ends the API's transaction on failure too, or the build would wait for it forever.
        await open`rollback`.catch(() => {});
        open.release();
        await writer.end();
      }
    });
  },
});

Deno.test("checksums: recorded per file, and a changed file stops the runner", async () => {
  await withDatabase(async (sql) => {
    const first = "create table a (id int);\n";
    const dir = await migrationsDir({ "0001_a.sql": first });
    try {
      assert.deepEqual(await migrate(sql, dir.url), ["0001_a.sql"]);
      const checksum = async () =>
        (await sql`select checksum from mailgun_webhook.schema_migrations where name = '0001_a.sql'`)[0];
      assert.equal((await checksum()).checksum, sha256Hex(first));
      // CRLF line endings (a Windows checkout) are the same file.
      await Deno.writeTextFile(`${dir.path}/0001_a.sql`, first.replace("\n", "\r\n"));
      assert.deepEqual(await migrate(sql, dir.url), []);
      // An applied file edited: refused before anything new is applied.
      await Deno.writeTextFile(`${dir.path}/0001_a.sql`, "create table a (id bigint);\n");
      await Deno.writeTextFile(`${dir.path}/0002_b.sql`, "create table b (id int);\n");
      await assert.rejects(migrate(sql, dir.url), /Migration 0001_a\.sql has changed since it was applied/);
      const [{ n }] = await sql`select count(*)::int as n from pg_tables where tablename = 'b'`;
      assert.equal(n, 0);
    } finally {
      await Deno.remove(dir.path, { recursive: true });
    }
  });
});
