import { loadDatabaseSettings } from "../config/database_settings.ts";
import { z } from "zod";
import { textVariable } from "../config/env_variables.ts";
import { ConfigError, readEnv } from "../config/read_env.ts";
import { connectTool, TOOL_STATEMENT_TIMEOUT_MS } from "../db/connect_tool.ts";
import { assertHostSchemaAccepts } from "../db/host_schema_monitor.ts";
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
  // Deno Deploy sets DENO_TIMELINE for the pre-deploy command, which runs once per timeline (docs/deploy.md).
  let timeline;
  try {
    settings = loadDatabaseSettings();
    timeline = readEnv(z.object({ DENO_TIMELINE: textVariable() })).DENO_TIMELINE;
    if (settings.databaseUrl === undefined) {
      throw new ConfigError(
        timeline === undefined
          ? "DATABASE_URL is required for deno task migrate."
          : `DATABASE_URL did not reach the pre-deploy command of timeline ${timeline}: set it in the app's ` +
            `${timeline === "production" ? "Production" : "Development"} context (docs/deploy.md).`,
      );
    }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    Deno.exit(1);
  }
  // The build log then names the database each timeline's pre-deploy migrated (never the password).
  const target = new URL(settings.databaseUrl);
  console.log(
    `Migrating ${target.hostname}${target.port ? `:${target.port}` : ""}${target.pathname}` +
      (timeline === undefined ? "" : ` (Deno Deploy timeline ${timeline})`),
  );
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
    await assertHostSchemaAccepts(db.sql, console.warn);
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
