import postgres, { type Sql } from "postgres";
import { migrate } from "../src/db/migrate.ts";

const LEAN_TABLES_SQL = new URL("./lean_reference_tables.sql", import.meta.url).pathname;

/** A database of the bench's own, migrated and seeded, dropped when the bench ends. */
export interface BenchDatabase {
  url: string;
  sql: Sql;
  /** Puts every document (the lean reference's too) back to SENT, so that each drive does the same amount of climbing. */
  resetDocuments(): Promise<void>;
  /** Drops the database and closes the connections. */
  drop(): Promise<void>;
}

/** Creates a fresh database next to `adminUrl`'s, migrates it and seeds `documents` documents in SENT. */
export async function createBenchDatabase(adminUrl: string, documents: number): Promise<BenchDatabase> {
  const name = `mgwh_bench_${Date.now()}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    await migrate(sql);
    await seedDocuments(sql, 1, documents);
    await createLeanTables(sql);
  } catch (error) {
    await sql.end();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
    throw error;
  }
  return {
    url: url.toString(),
    sql,
    async resetDocuments() {
      await sql`update documents set email_status = 'SENT', email_status_at = null where email_status <> 'SENT'`;
      await sql`update lean.documents set status = 'SENT', status_at = null where status <> 'SENT'`;
      await sql`vacuum analyze documents`;
      await sql`vacuum analyze lean.documents`;
      await sql`checkpoint`;
    },
    async drop() {
      await sql.end();
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** Makes the lean reference's tables (bench/lean_reference_tables.sql), with the documents already seeded. */
async function createLeanTables(sql: Sql): Promise<void> {
  await sql.unsafe(await Deno.readTextFile(LEAN_TABLES_SQL)).simple();
  await sql`vacuum analyze lean.documents`;
}

/** Inserts documents `from`..`to` (message ids as {@link benchMessageId} spells them), in SENT. */
export async function seedDocuments(sql: Sql, from: number, to: number): Promise<void> {
  await sql`
    insert into documents (email_message_id, email_status)
    select '<bench-' || g || '@mg.bench.test>', 'SENT' from generate_series(${from}::int, ${to}::int) g
  `;
  await sql`vacuum analyze documents`;
}

/**
 * Inserts `count` consumed tokens signed over the `hours` before now (or
 * before `endHoursAgo` hours ago), evenly spread and in signing order (as a
 * day of traffic leaves them), each with a 32-byte body hash; `batch` keeps
 * the tokens of several seedings apart.
 */
export async function seedTokens(
  sql: Sql,
  count: number,
  hours: number,
  { endHoursAgo = 0, batch = 0 }: { endHoursAgo?: number; batch?: number } = {},
): Promise<void> {
  await sql`
    insert into mailgun_webhook.tokens (token, body_hash, signed_at, consumed_at, slot)
    select 'seed-' || ${batch}::int || '-' || lpad(g::text, 10, '0'), sha256(int4send(g)), t, t,
           mailgun_webhook.token_slot(t)
    from generate_series(1, ${count}::int) g,
         lateral (select now() - make_interval(secs => ${endHoursAgo * 3600}::float8
                                                     + ${hours * 3600}::float8 * (1 - g::float8 / ${count}::int))) s(t)
  `;
  await sql`vacuum analyze mailgun_webhook.tokens`;
}
