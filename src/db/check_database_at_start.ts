import type { Sql } from "postgres";
import { log } from "../reporting/log.ts";
import { databaseHost } from "./database_host.ts";
import { schemaStatus } from "./schema_status.ts";

/**
 * Logs one line at start-up on the database: up to date, unmigrated, or
 * unreachable with the database's (or the driver's) own message and code,
 * its `host:port` and the bound, never the URL's password. Bounded by `timeoutMs` (the connect timeout), so
 * that a wrong DATABASE_URL is heard of at once, not at the first webhook.
 * Never throws: the service starts anyway, the database may come up later.
 */
export async function checkDatabaseAtStart(
  sql: Sql,
  migrations: string[],
  databaseUrl: string,
  timeoutMs: number,
): Promise<void> {
  const status = await schemaStatus(sql, migrations, timeoutMs);
  if (status.state === "current") {
    log("info", "database schema is up to date", { migrations: migrations.length });
  } else if (status.state === "behind") {
    log("error", "database is not migrated: run deno task migrate", { missing_migrations: status.missing });
  } else {
    const error = status.error as { code?: unknown; message?: unknown };
    // The pool was closed meanwhile: the service is stopping, there is nothing to report.
    if (error?.code === "CONNECTION_ENDED") return;
    log("error", "database is unreachable: webhooks get 503 until it answers", {
      host: databaseHost(databaseUrl),
      timeout_ms: timeoutMs,
      error_code: typeof error?.code === "string" ? error.code : undefined,
      error: withoutPassword(String(error?.message ?? error), databaseUrl),
    });
  }
}

function withoutPassword(message: string, databaseUrl: string): string {
  let password = "";
  try {
    password = new URL(databaseUrl).password;
  } catch {
    return message;
  }
  if (password === "") return message;
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // Not percent-encoded: the raw form is the one to hide.
  }
  return message.replaceAll(password, "***").replaceAll(decoded, "***");
}
