import { loadDatabaseSettings } from "../config/database_settings.ts";
import { z } from "zod";
import { textVariable } from "../config/env_variables.ts";
import { ConfigError, readEnv } from "../config/read_env.ts";
import { connectPostgres } from "../db/connect_postgres.ts";
import { assertHostSchemaAccepts } from "../db/host_schema_monitor.ts";
import { migrate } from "../db/migrate.ts";

/** `deno task migrate`: applies migrations/ to DATABASE_URL (the pre-deploy step). */
if (import.meta.main) {
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
  const sql = connectPostgres(settings.databaseUrl, {
    max: 1,
    connectTimeoutMs: 10_000,
    prepare: false,
    sslMode: settings.sslMode,
  });
  // The build log then names the database each timeline's pre-deploy migrated (never the password).
  const target = new URL(settings.databaseUrl);
  console.log(
    `Migrating ${target.hostname}${target.port ? `:${target.port}` : ""}${target.pathname}` +
      (timeline === undefined ? "" : ` (Deno Deploy timeline ${timeline})`),
  );
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
