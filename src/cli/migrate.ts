import { loadDatabaseSettings } from "../config/database_settings.ts";
import { ConfigError } from "../config/read_env.ts";
import { connectPostgres } from "../db/connect_postgres.ts";
import { assertHostSchemaAccepts } from "../db/host_schema_monitor.ts";
import { migrate } from "../db/migrate.ts";

/** `deno task migrate`: applies migrations/ to DATABASE_URL (the pre-deploy step). */
if (import.meta.main) {
  let settings;
  try {
    settings = loadDatabaseSettings();
    if (settings.databaseUrl === undefined) throw new ConfigError("DATABASE_URL is required for deno task migrate.");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    Deno.exit(1);
  }
  const sql = connectPostgres(settings.databaseUrl, {
    max: 1,
    connectTimeoutMs: 10_000,
    prepare: false,
    sslMode: settings.sslMode,
  });
  try {
    await assertHostSchemaAccepts(sql, console.warn);
    const applied = await migrate(sql);
    console.log(applied.length === 0 ? "Schema is up to date." : `Applied: ${applied.join(", ")}`);
  } catch (error) {
    console.error(`Migration failed: ${(error as Error).message}`);
    Deno.exitCode = 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
