import type { Sql } from "postgres";
import { connectPostgres } from "../../src/db/connect_postgres.ts";
import { migrate, MIGRATIONS_DIR } from "../../src/db/migrate.ts";
import { createTestDatabase, type TestDatabase } from "./test_database.ts";

/**
 * Runs `fn` on a fresh database migrated with only the migrations whose
 * file names `keep` accepts, as a database deployed before the others has
 * them; `migrate(sql)` then applies the rest. Drops it afterwards.
 */
export async function withPartlyMigratedDatabase(
  keep: (name: string) => boolean,
  fn: (sql: Sql, db: TestDatabase) => Promise<void>,
): Promise<void> {
  const db = await createTestDatabase();
  const sql = connectPostgres(db.url, { max: db.poolMax, connectTimeoutMs: 5000, prepare: true });
  const dir = await Deno.makeTempDir({ prefix: "mgwh-migrations-" });
  try {
    for await (const entry of Deno.readDir(MIGRATIONS_DIR)) {
      if (entry.name.endsWith(".sql") && keep(entry.name)) {
        await Deno.copyFile(new URL(entry.name, MIGRATIONS_DIR), `${dir}/${entry.name}`);
      }
    }
    await migrate(sql, new URL(`file://${dir}/`));
    await fn(sql, db);
  } finally {
    await sql.end();
    await Deno.remove(dir, { recursive: true });
    await db.drop();
  }
}
