import { connectPostgres } from "../db/connect_postgres.ts";
import { migrate } from "../db/migrate.ts";

/** `deno task migrate`: applies migrations/ to DATABASE_URL (the pre-deploy step). */
if (import.meta.main) {
  const url = Deno.env.get("DATABASE_URL")?.trim();
  if (!url) {
    console.error("Configuration error: DATABASE_URL is required for deno task migrate.");
    Deno.exit(1);
  }
  const sql = connectPostgres(url, { max: 1, connectTimeoutMs: 10_000, prepare: false });
  try {
    const applied = await migrate(sql);
    console.log(applied.length === 0 ? "Schema is up to date." : `Applied: ${applied.join(", ")}`);
  } catch (error) {
    console.error(`Migration failed: ${(error as Error).message}`);
    Deno.exitCode = 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
