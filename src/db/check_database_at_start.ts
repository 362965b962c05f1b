import type { Sql } from "postgres";
import { log } from "../reporting/log.ts";
import { databaseHost } from "./database_host.ts";
import { explainTlsRefusal } from "./tls_refusal.ts";
import { schemaStatus } from "./schema_status.ts";
import { findStandInTables } from "./stand_in_tables_query.ts";

/**
 * Logs one line at start-up on the database: up to date, unmigrated, or
 * unreachable with the database's (or the driver's) own message and code,
 * its `host:port` and the bound, never the URL's password; and a warning
 * when the API's tables are stand-ins this service created (the wrong
 * database). Bounded by `timeoutMs` (the connect timeout), so
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
    let standIns: string[] | undefined;
    try {
      standIns = await findStandInTables(sql, timeoutMs);
    } catch {
      // Only the warning below is lost: the statement that just answered says the schema is there.
    }
    log("info", "database schema is up to date", {
      migrations: migrations.length,
      host_tables: standIns === undefined ? undefined : standIns.length === 0 ? "found" : "stand-in",
    });
    if (standIns !== undefined && standIns.length > 0) logStandIns(standIns, "postgres");
  } else if (status.state === "behind") {
    log("error", "database is not migrated: run deno task migrate", { missing_migrations: status.missing });
  } else {
    const error = status.error as { code?: unknown; message?: unknown };
    // The pool was closed meanwhile: the service is stopping, there is nothing to report.
    if (error?.code === "CONNECTION_ENDED") return;
    const host = databaseHost(databaseUrl);
    log("error", "database is unreachable: webhooks get 503 until it answers", {
      host,
      timeout_ms: timeoutMs,
      error_code: typeof error?.code === "string" ? error.code : undefined,
      error: withoutPassword(String(error?.message ?? error), databaseUrl),
      hint: await explainTlsRefusal(error, host),
    });
  }
}

/**
 * Says that `tables` were created by this service's migration, not found: a
 * warning on PostgreSQL (webhooks then match nothing and are answered
 * `unmatched`, which Mailgun never retries), plain information with the
 * embedded database, where there is no API and stand-ins are expected.
 */
export function logStandIns(tables: string[], database: "postgres" | "embedded"): void {
  const names = tables.join(" and ");
  const were = tables.length === 1 ? "was" : "were";
  if (database === "embedded") {
    log("info", `${names} ${were} created by this service's migration, as expected with the embedded database`, {
      stand_in_tables: tables,
    });
    return;
  }
  log("warn", `${names} ${were} created by this service's migration, not found: this is not the API's database`, {
    stand_in_tables: tables,
    hint: "Set DATABASE_URL to the API's own database (a database linked by Deno Deploy is a new, empty one); " +
      "every webhook is answered unmatched until then.",
  });
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
