import { loadDatabaseSettings } from "../config/database_settings.ts";
import { ConfigError, readEnv } from "../config/read_env.ts";
import { connectPostgres } from "../db/connect_postgres.ts";
import { migrate } from "../db/migrate.ts";

const USAGE = `Usage: deno task migrate

Applies the migrations in migrations/ not applied yet to the database of DATABASE_URL, in name order
(Deno Deploy runs it as the pre-deploy command). Safe to run twice, or twice at once: a second run
waits for the first (and says so every 10 s). Gives up when the database does not answer the connect
within 10 s or a statement within 60 s; concurrent index builds have no bound and report every 30 s.`;

/** `deno task migrate`: applies migrations/ to DATABASE_URL (the pre-deploy step). */
if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (Deno.args.length > 0) {
    console.error(`Unknown argument ${Deno.args[0]}.\n\n${USAGE}`);
    Deno.exit(2);
  }
  let settings;
  try {
    settings = loadDatabaseSettings(readEnv());
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
    const applied = await migrate(sql);
    console.log(applied.length === 0 ? "Schema is up to date." : `Applied: ${applied.join(", ")}`);
  } catch (error) {
    console.error(`Migration failed: ${(error as Error).message}`);
    Deno.exitCode = 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
