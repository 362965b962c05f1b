import { loadDatabaseSettings } from "../config/database_settings.ts";
import { ConfigError, readEnv } from "../config/read_env.ts";
import { connectTool, TOOL_STATEMENT_TIMEOUT_MS } from "../db/connect_tool.ts";
import { migrate, MIGRATIONS_DIR } from "../db/migrate.ts";

const USAGE = `Usage: deno task migrate

Applies the migrations in migrations/ not applied yet to the database of DATABASE_URL, in name order
(Deno Deploy runs it as the pre-deploy command). Safe to run twice, or twice at once: a second run
waits for the first and says so (once, then every 10 s, with the holder's pid). Gives up when the
database does not answer the connect within 10 s or a statement within 60 s, and when a table stays
locked by another session for 10 s (lock_timeout, naming the table). Concurrent index builds have no
time bound (a large table takes long): a line every 10 s says they still run, or what they wait for.`;

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
  let db;
  try {
    // Two connections: the migration's own, and one to ask pg_locks what it waits for.
    db = await connectTool(settings.databaseUrl, { max: 2, prepare: false, sslMode: settings.sslMode });
  } catch (error) {
    console.error(`Migration failed: ${(error as Error).message}`);
    Deno.exit(1);
  }
  let code = 0;
  try {
    const applied = await migrate(db.sql, MIGRATIONS_DIR, {
      statementTimeoutMs: TOOL_STATEMENT_TIMEOUT_MS,
      host: db.host,
      report: (line) => console.log(line),
    });
    console.log(applied.length === 0 ? "Schema is up to date." : `Applied: ${applied.join(", ")}`);
  } catch (error) {
    console.error(`Migration failed: ${(error as Error).message}`);
    code = 1;
  } finally {
    await db.close();
  }
  // At once: a socket still connecting to a silent database must not keep the process alive.
  Deno.exit(code);
}
