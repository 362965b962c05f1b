import type { Sql } from "postgres";
import { MIGRATIONS_DIR } from "./migrate.ts";
import { withTimeout } from "./with_timeout.ts";

/** What the database says about the schema the service needs. */
type SchemaStatus =
  | { state: "current" }
  /** Answers, but some migrations the service ships are not applied (or none is). */
  | { state: "behind"; missing: string[] }
  | { state: "down"; error: unknown };

/** The names of the migrations the service ships (migrations/), in order. */
export async function shippedMigrations(dir: URL = MIGRATIONS_DIR): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".sql")) names.push(entry.name);
  }
  return names.sort();
}

/**
 * One cheap statement (it serves /healthz, which is polled): which of
 * `migrations` mailgun_webhook.schema_migrations lacks. None at all: behind.
 */
export async function schemaStatus(sql: Sql, migrations: string[], timeoutMs: number): Promise<SchemaStatus> {
  try {
    const rows = await withTimeout(
      sql`select name from mailgun_webhook.schema_migrations where name = any(${migrations})`,
      timeoutMs,
      () => Object.assign(new Error(`Database did not answer within ${timeoutMs} ms.`), { code: "TIMEOUT" }),
    );
    const applied = new Set(rows.map((row) => row.name as string));
    const missing = migrations.filter((name) => !applied.has(name));
    return missing.length === 0 ? { state: "current" } : { state: "behind", missing };
  } catch (error) {
    // undefined_table: the database answers, but was never migrated.
    if (["42P01", "3F000"].includes((error as { code?: string }).code ?? "")) {
      return { state: "behind", missing: migrations };
    }
    return { state: "down", error };
  }
}
