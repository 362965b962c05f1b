import type { Sql } from "postgres";
import { splitStatements } from "../../src/db/split_statements.ts";
import { sha256Hex } from "../../src/encoding/sha256_hex.ts";

/** The migrations of release f0e3176, before the namespace, kept as they were. */
export const LEGACY_MIGRATIONS_DIR = new URL("../fixtures/legacy_migrations/", import.meta.url);

/**
 * Builds release f0e3176's schema on `sql` (a fresh database, or one holding
 * only the API's tables), the way f0e3176's runner did: its files in name
 * order, the ones whose first line is `-- migrate: no-transaction`
 * statement by statement, the others each in one transaction; and its
 * record, `schema_migrations (name, applied_at, checksum)` in the current
 * schema, a row per file with the SHA-256 of its text. `upTo` stops after
 * that file (a database deployed from an older release).
 */
export async function buildLegacyDatabase(sql: Sql, upTo = "0007_token_day_partitions.sql"): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(LEGACY_MIGRATIONS_DIR)) {
    if (entry.isFile && entry.name.endsWith(".sql") && entry.name <= upTo) names.push(entry.name);
  }
  names.sort();
  await sql`
    create table schema_migrations (
      name text primary key,
      applied_at timestamptz not null default now()
    )
  `;
  await sql`alter table schema_migrations add column if not exists checksum text`;
  const conn = await sql.reserve();
  try {
    for (const name of names) {
      const script = (await Deno.readTextFile(new URL(name, LEGACY_MIGRATIONS_DIR))).replaceAll("\r\n", "\n");
      if (script.split("\n", 1)[0].trim() === "-- migrate: no-transaction") {
        for (const statement of splitStatements(script)) await conn.unsafe(statement);
        await conn`insert into schema_migrations (name, checksum) values (${name}, ${sha256Hex(script)})`;
      } else {
        await conn`begin`;
        try {
          await conn.unsafe(script);
          await conn`insert into schema_migrations (name, checksum) values (${name}, ${sha256Hex(script)})`;
          await conn`commit`;
        } catch (error) {
          await conn`rollback`.catch(() => {});
          throw error;
        }
      }
    }
  } finally {
    conn.release();
  }
  return names;
}
